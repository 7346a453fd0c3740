"""`agents.yaml`: every malformed entry is reported with its line, and nothing is written
unless the whole file is valid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from killswitch import fleet_file
from killswitch.inventory import Inventory
from tests.conftest import run_cli

KINDS = {"aws": ("aws.access-key", "aws.role", "aws.user"), "openai": ("openai.api-key",)}
GOOD = """\
agents:
  - id: report-writer
    owner: U0OWNER01
    purpose: weekly reports
    environment: prod
    expires: 2027-06-30
    credentials:
      - {provider: aws, kind: aws.access-key, ref: AKIAEXAMPLEKEY000001}
      - {provider: openai, kind: openai.api-key, ref: proj_x/key_abc}
  - id: old-bot
    owner: platform
    status: decommissioned
"""
BAD = """\
agents:
  - id: fine-agent
    owner: team
  - id: "bad*agent"
    owner: team
  - id: no-owner
  - id: wrong-kind
    owner: team
    credentials:
      - provider: aws
        kind: aws.password
        ref: x
  - id: leaks
    owner: team
    credentials:
      - provider: openai
        kind: openai.api-key
        ref: sk-proj-abcdefghijklmnop
  - id: fine-agent
    owner: twice
  - id: typo
    owner: team
    stauts: active
"""


def test_a_valid_file_is_imported(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(GOOD)
    inventory = Inventory(tmp_path / "inventory.db")
    result = fleet_file.apply(inventory, fleet_file.load(path, KINDS))
    assert (result.agents, result.credentials) == (2, 2)
    agent = inventory.get_agent("report-writer")
    assert agent is not None and agent.owner == "U0OWNER01"
    assert agent.expires_at is not None and agent.expires_at.year == 2027
    assert inventory.get_agent("old-bot").status.value == "decommissioned"  # type: ignore[union-attr]
    assert {c.ref for c in inventory.declared("report-writer")} == {
        "AKIAEXAMPLEKEY000001",
        "proj_x/key_abc",
    }


def test_every_problem_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(BAD)
    with pytest.raises(fleet_file.FleetFileError) as raised:
        fleet_file.load(path, KINDS)
    message = raised.value.message
    assert f"{path}:4: agent 'bad*agent': id:" in message and "wildcard" in message
    assert f"{path}:6: agent 'no-owner': owner: Field required" in message
    assert f"{path}:10:" in message and "no credential kind 'aws.password'" in message
    assert f"{path}:18:" in message and "looks like secret material" in message
    assert "sk-proj-abcdefghijklmnop" not in message  # the secret is never echoed
    assert f"{path}:19: agent 'fine-agent' is declared twice (first at line 2)" in message
    assert f"{path}:23: agent 'typo': stauts: Extra inputs are not permitted" in message
    assert "6 problem(s)" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("agents: [\n", "not valid YAML"),
        ("- id: a\n", "expected a mapping with one key, `agents:`"),
        ("agents: []\nextra: 1\n", "expected a mapping with one key"),
    ],
)
def test_a_file_of_the_wrong_shape_is_refused(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(text)
    with pytest.raises(fleet_file.FleetFileError, match=expected):
        fleet_file.load(path, KINDS)


def test_the_cli_refuses_a_bad_file_and_writes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    profile = tmp_path / "profile.json"
    profile.write_text("{}")  # no sandbox: a production-like profile of defaults
    path = tmp_path / "agents.yaml"
    path.write_text(BAD)
    done = run_cli(
        home, "inventory", "import", str(path), "--json", KILLSWITCH_PROFILE=str(profile)
    )
    assert done.returncode == 2, done.stderr
    assert json.loads(done.stdout)["error"]["code"] == "invalid-fleet-file"
    assert "agents.yaml:6" in done.stderr
    path.write_text(GOOD)
    done = run_cli(
        home, "inventory", "import", str(path), "--json", KILLSWITCH_PROFILE=str(profile)
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["new_agents"] == ["report-writer", "old-bot"]
    listed = run_cli(home, "inventory", "list", "--json", KILLSWITCH_PROFILE=str(profile))
    ids = [a["id"] for a in json.loads(listed.stdout)["agents"]]
    assert ids == ["old-bot", "report-writer"]
