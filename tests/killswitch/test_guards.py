"""Agent ids and reasons: one named agent, never a pattern; a reason always."""

from __future__ import annotations

import pytest

from killswitch.errors import InvalidAgentIdError, RefusedError
from killswitch.guards import validate_agent_id, validate_reason


@pytest.mark.parametrize("good", ["agent-7", "research-agent-7", "a", "svc.bot_2", "x" * 64])
def test_valid_ids_pass(good: str) -> None:
    assert validate_agent_id(good) == good


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("*", "wildcard"),
        ("agent-*", "wildcard"),
        ("agent?", "wildcard"),
        ("[ab]", "wildcard"),
        ("%", "wildcard"),
        ("Agent", "not a valid"),
        ("-lead", "not a valid"),
        ("a b", "not a valid"),
        ("x" * 65, "not a valid"),
        ("a/b", "not a valid"),
        ("", "no agent id"),
        ("  ", "no agent id"),
        ("agent\n7", "not a valid"),
    ],
)
def test_invalid_ids_are_refused_with_the_reason(bad: str, why: str) -> None:
    with pytest.raises(InvalidAgentIdError, match=why):
        validate_agent_id(bad)


def test_reason_is_required_and_bounded() -> None:
    assert validate_reason("  leaked\n key ") == "leaked key"
    with pytest.raises(RefusedError):
        validate_reason("   ")
    with pytest.raises(RefusedError):
        validate_reason("x" * 501)
