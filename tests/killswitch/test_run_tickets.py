"""Run tickets: minted and verified with a key derived from the ledger's, bound to one flow
and its exact arguments, short-lived, single-use."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from killswitch.ledger_key import derived_key
from killswitch.run_tickets import (
    MAX_TTL_S,
    Nonces,
    UnverifiedRunError,
    arguments,
    claimed_actor,
    mint,
    verify,
)
from killswitch.settings import Settings
from tests.conftest import InventoryAt

KEY = b"k" * 32
ARGS = {"dry_run": True, "actor": "bob", "trigger": "cli", "agents": ["a-1"]}


def sweep_like(
    dry_run: bool | None = None,
    actor: str = "schedule",
    trigger: str = "schedule",
    agents: list[str] | None = None,
    ticket: str | None = None,
) -> None:
    """A flow function's signature, for `arguments`."""


def ticket_for(args: dict[str, object] = ARGS, **kw: object) -> str:
    return mint(KEY, flow="zombie-sweep", args=args, actor="bob", trigger="cli", **kw)  # type: ignore[arg-type]


def test_a_ticket_verifies_for_its_flow_and_arguments_only() -> None:
    ticket = verify(KEY, ticket_for(), flow="zombie-sweep", args=ARGS)
    assert (ticket.actor, ticket.trigger, ticket.flow) == ("bob", "cli", "zombie-sweep")
    with pytest.raises(UnverifiedRunError, match="for the 'zombie-sweep' flow"):
        verify(KEY, ticket_for(), flow="contain", args=ARGS)
    with pytest.raises(UnverifiedRunError, match="parameters are not the ones"):
        verify(KEY, ticket_for(), flow="zombie-sweep", args={**ARGS, "dry_run": False})
    with pytest.raises(UnverifiedRunError, match="signature"):
        verify(b"x" * 32, ticket_for(), flow="zombie-sweep", args=ARGS)


def test_a_forged_payload_or_mac_is_refused() -> None:
    version, payload, mac = ticket_for().split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=="))
    data["actor"] = "mallory"
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    with pytest.raises(UnverifiedRunError, match="signature"):
        verify(KEY, f"{version}.{forged}.{mac}", flow="zombie-sweep", args=ARGS)
    assert claimed_actor(f"{version}.{forged}.{mac}") == "mallory"  # for the refusal's line
    for junk in ("", "v1", "v2.a.b", "v1.!!.b", f"{version}.{payload}.", "v1.bnVsbA.x"):
        with pytest.raises(UnverifiedRunError):
            verify(KEY, junk, flow="zombie-sweep", args=ARGS)
        claimed_actor(junk)  # never raises


def test_a_ticket_expires_and_cannot_claim_a_long_life() -> None:
    now = time.time()
    old = ticket_for(now=now - 400, ttl_s=300)
    with pytest.raises(UnverifiedRunError, match="expired"):
        verify(KEY, old, flow="zombie-sweep", args=ARGS, now=now)
    future = ticket_for(now=now + 600)
    with pytest.raises(UnverifiedRunError, match="impossible"):
        verify(KEY, future, flow="zombie-sweep", args=ARGS, now=now)
    with pytest.raises(ValueError):
        ticket_for(ttl_s=MAX_TTL_S + 1)


def test_arguments_apply_the_flow_defaults_and_leave_the_ticket_out() -> None:
    args = arguments(sweep_like, {"actor": "bob", "ticket": "v1.x.y"})
    assert args == {"dry_run": None, "actor": "bob", "trigger": "schedule", "agents": None}


def test_a_nonce_is_used_once(inventory_at: InventoryAt) -> None:
    nonces = Nonces(inventory_at("a"))
    assert nonces.first_time("n-1", "zombie-sweep", time.time() + 60)
    assert not nonces.first_time("n-1", "zombie-sweep", time.time() + 60)
    again = Nonces(inventory_at("b"))  # another process or host, same database
    assert not again.first_time("n-1", "zombie-sweep", time.time() + 60)


def test_the_ticket_key_is_derived_not_the_ledger_key(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, ledger_key="00" * 32)  # type: ignore[arg-type]
    key = derived_key(settings, "run-ticket")
    assert key != bytes(32) and len(key) == 32
    assert key != derived_key(settings, "other-purpose")
    assert derived_key(settings, "run-ticket") == key
    from_file = Settings(home=tmp_path)
    made = derived_key(from_file, "run-ticket")  # a brand-new ledger: its key is made once
    assert (tmp_path / "ledger.db.key").exists() and derived_key(from_file, "run-ticket") == made
