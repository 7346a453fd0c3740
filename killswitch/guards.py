"""Guards every run passes before anything is touched: id format, protection, inventory."""

from __future__ import annotations

import re
from collections.abc import Iterable

from killswitch.errors import (
    InvalidAgentIdError,
    ProtectedIdentityError,
    RefusedError,
    UnknownAgentError,
)
from killswitch.inventory import Inventory
from killswitch.models import Agent

AGENT_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
WILDCARDS = frozenset("*?[]{}%")
MAX_REASON = 500


def validate_agent_id(raw: str) -> str:
    """One named agent, never a pattern: refuse wildcards and anything outside the id format."""
    if not raw or not raw.strip():
        raise InvalidAgentIdError("no agent id given")
    if any(ch in WILDCARDS for ch in raw):
        raise InvalidAgentIdError(
            f"{raw!r} contains a wildcard: the kill switch acts on one named agent at a time"
        )
    if not AGENT_ID.fullmatch(raw):
        raise InvalidAgentIdError(f"{raw!r} is not a valid agent id")
    return raw


def validate_reason(raw: str) -> str:
    reason = " ".join(raw.split())
    if not reason:
        raise RefusedError("a reason is required (it goes into the ledger)")
    if len(reason) > MAX_REASON:
        raise RefusedError(f"the reason is longer than {MAX_REASON} characters")
    return reason


def resolve_agent(inventory: Inventory, raw_id: str, protected: Iterable[str]) -> Agent:
    """The inventory's agent for a valid, unprotected id; refuse anything else."""
    agent_id = validate_agent_id(raw_id)
    if agent_id in set(protected):
        raise ProtectedIdentityError(
            f"agent {agent_id!r} is protected: the kill switch never touches it"
        )
    agent = inventory.get_agent(agent_id)
    if agent is None:
        raise UnknownAgentError(f"agent {agent_id!r} is not in the inventory")
    return agent
