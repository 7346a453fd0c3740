"""What a slash command names: one agent, or a fleet (a list, a team, a credential's holders)."""

from __future__ import annotations

import pytest

from killswitch.errors import InvalidAgentIdError
from killswitch.slack_app.command import Fleet, UsageError, parse


def test_one_agent_or_a_fleet() -> None:
    assert parse("contain agent-7 leaked key").fleet is None
    assert parse("contain a-1,a-2 shared key").fleet == Fleet(agents="a-1,a-2")
    assert parse("dry-run owner:finance-eng").fleet == Fleet(owner="finance-eng")
    assert parse("contain credential:aws.access-key:AKIA1 leak").fleet == Fleet(
        credential="aws.access-key:AKIA1"
    )
    assert parse("restore a-1 fp").fleet is None  # a fleet is contained, never restored whole
    assert parse("contain a-1,a-2,a-3,a-4 x").target == "4 agents"


@pytest.mark.parametrize("text", ["contain a-1,a-* x", "contain a-1,* x", "contain a-1,../x y"])
def test_one_bad_id_refuses_the_fleet_as_it_is_parsed(text: str) -> None:
    with pytest.raises(InvalidAgentIdError):
        parse(text)


def test_a_fleet_needs_a_reason_and_an_agent() -> None:
    with pytest.raises(UsageError):
        parse("contain a-1,a-2")
    with pytest.raises(UsageError):
        parse("contain , reason")


def test_what_slack_shows_of_a_team_or_credential_is_text() -> None:
    assert parse("contain owner:<!channel> x").target == "owner:&lt;!channel&gt;"
    assert parse("contain credential:a&b x").target == "credential:a&amp;b"
