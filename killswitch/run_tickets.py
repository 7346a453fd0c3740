"""Run tickets: a flow run started through the orchestrator's API proves who asked for what,
and when, with a compact request signed by the kill switch's own key.

A flow run's parameters are not an identity: anyone who can reach the Prefect API can
create a run with any `actor`. A ticket is `v1.<payload>.<mac>`: the payload (base64url
JSON) names the flow, a digest of every argument the run will receive, the actor and
trigger, when it was issued and until when it holds, and a single-use nonce; the MAC is
HMAC-SHA256 under a key derived from the ledger's HMAC key for this one purpose
(`ledger_key.derived_key(settings, "run-ticket")`), so whoever cannot forge the ledger's
chain cannot forge a ticket either. Seen nonces are kept in the inventory's database until
their ticket expires: a ticket starts one run, once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from killswitch.errors import RefusedError
from killswitch.inventory import Inventory

PURPOSE = "run-ticket"
VERSION = "v1"
DEFAULT_TTL_S = 300.0
MAX_TTL_S = 3600.0
CLOCK_SKEW_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS run_ticket_nonces (
    nonce TEXT PRIMARY KEY,
    flow TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""


class UnverifiedRunError(RefusedError):
    code = "unverified-run"
    remediation = (
        "Start flows through the kill switch (`killswitch contain`, `killswitch sweep`, "
        "`killswitch serve`); a run created through the Prefect API needs a ticket "
        "(`killswitch sweep --via-deployment`). Nothing was changed."
    )


@dataclass(frozen=True, slots=True)
class Ticket:
    """What a ticket says (its MAC checked): which flow, with which arguments, for whom."""

    flow: str
    digest: str
    actor: str
    trigger: str
    issued_at: float
    expires_at: float
    nonce: str


def arguments(fn: Callable[..., Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """Every argument `fn` (a flow's function) receives for `given`, defaults applied, the
    ticket itself left out: what a ticket's digest covers."""
    bound = inspect.signature(fn).bind_partial(**given)
    bound.apply_defaults()
    return {k: v for k, v in bound.arguments.items() if k != "ticket"}


def digest(args: Mapping[str, Any]) -> str:
    """SHA-256 of the arguments as canonical JSON (sorted keys, tuples as lists)."""
    text = json.dumps(dict(args), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str) -> bytes:
    return hmac.new(key, f"{VERSION}.{payload}".encode(), hashlib.sha256).digest()


def mint(
    key: bytes,
    *,
    flow: str,
    args: Mapping[str, Any],
    actor: str,
    trigger: str,
    ttl_s: float = DEFAULT_TTL_S,
    now: float | None = None,
) -> str:
    """A ticket for one run of `flow` with exactly `args` (see `arguments`), for `actor`."""
    if not 0 < ttl_s <= MAX_TTL_S:
        raise ValueError(f"a ticket holds for at most {MAX_TTL_S:.0f}s")
    issued = time.time() if now is None else now
    ticket = Ticket(
        flow=flow,
        digest=digest(args),
        actor=actor,
        trigger=trigger,
        issued_at=round(issued, 3),
        expires_at=round(issued + ttl_s, 3),
        nonce=secrets.token_hex(16),
    )
    payload = _b64(json.dumps(asdict(ticket), separators=(",", ":")).encode())
    return f"{VERSION}.{payload}.{_b64(_mac(key, payload))}"


def _payload(token: str) -> tuple[str, str, dict[str, Any]]:
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise UnverifiedRunError("malformed ticket")
    try:
        data = json.loads(_unb64(parts[1]))
    except ValueError:
        raise UnverifiedRunError("malformed ticket") from None
    if not isinstance(data, dict):
        raise UnverifiedRunError("malformed ticket")
    return parts[1], parts[2], data


def claimed_actor(token: str | None) -> str | None:
    """The actor a ticket claims, unverified (for the ledger line of its refusal), cut to
    size and printable; None when there is nothing readable."""
    if not token:
        return None
    try:
        actor = _payload(token)[2].get("actor")
    except (UnverifiedRunError, UnicodeDecodeError):
        return None
    return "".join(c for c in str(actor) if c.isprintable())[:64] if actor else None


def verify(
    key: bytes, token: str, *, flow: str, args: Mapping[str, Any], now: float | None = None
) -> Ticket:
    """The ticket, when its MAC is ours, it is for `flow` with exactly `args`, and it holds
    now; UnverifiedRunError otherwise (the nonce is checked by `Nonces.first_time`)."""
    payload, mac, data = _payload(token)
    try:
        genuine = hmac.compare_digest(_unb64(mac), _mac(key, payload))
    except ValueError:
        genuine = False
    if not genuine:
        raise UnverifiedRunError("the ticket's signature is not the kill switch's")
    try:
        ticket = Ticket(
            flow=str(data["flow"]),
            digest=str(data["digest"]),
            actor=str(data["actor"]),
            trigger=str(data["trigger"]),
            issued_at=float(data["issued_at"]),
            expires_at=float(data["expires_at"]),
            nonce=str(data["nonce"]),
        )
    except (KeyError, TypeError, ValueError):
        raise UnverifiedRunError("malformed ticket") from None
    if ticket.flow != flow:
        raise UnverifiedRunError(f"the ticket is for the {ticket.flow!r} flow, not {flow!r}")
    if not hmac.compare_digest(ticket.digest, digest(args)):
        raise UnverifiedRunError("the run's parameters are not the ones the ticket was issued for")
    at = time.time() if now is None else now
    if ticket.issued_at > at + CLOCK_SKEW_S or ticket.expires_at - ticket.issued_at > MAX_TTL_S:
        raise UnverifiedRunError("the ticket's validity is impossible (issued in the future?)")
    if at >= ticket.expires_at:
        raise UnverifiedRunError(f"the ticket expired {at - ticket.expires_at:.0f}s ago")
    return ticket


class Nonces:
    """Nonces (tickets, schedule slots) already used, beside the inventory: shared by every
    process that runs flows, kept until what they admitted can no longer be presented."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        with inventory.transaction() as db:
            db.executescript(_SCHEMA)

    def first_time(self, nonce: str, flow: str, expires_at: float) -> bool:
        """Record the nonce; False when it was recorded before (a replay)."""
        with self.inventory.transaction() as db:
            db.execute("DELETE FROM run_ticket_nonces WHERE expires_at < ?", (time.time(),))
            inserted = db.execute(
                "INSERT INTO run_ticket_nonces VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (nonce, flow, expires_at),
            ).rowcount
        return bool(inserted)
