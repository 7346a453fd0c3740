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


ALIAS_BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
agents:
  - id: *h
    owner: *h
"""


def refused(tmp_path: Path, text: str | bytes, *, protected: tuple[str, ...] = ()) -> str:
    path = tmp_path / "agents.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(fleet_file.FleetFileError) as raised:
        fleet_file.load(path, KINDS, protected=protected)
    return raised.value.message


def test_an_alias_bomb_is_refused_without_expanding_it(tmp_path: Path) -> None:
    message = refused(tmp_path, ALIAS_BOMB)
    assert "alias" in message and len(message) < 500
    assert "lol" not in message


def test_a_file_over_the_size_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    message = refused(tmp_path, "agents: []\n" + "#" * (fleet_file.MAX_BYTES + 1))
    assert "MiB" in message and "larger" in message


def test_dev_zero_and_non_utf8_are_refused_with_a_message(tmp_path: Path) -> None:
    with pytest.raises(fleet_file.FleetFileError, match="larger"):
        fleet_file.load(Path("/dev/zero"), KINDS)
    message = refused(tmp_path, b"agents:\n  - id: caf\xe9\n    owner: x\n")
    assert "agents.yaml:2" in message and "UTF-8" in message
    home = tmp_path / "home"
    for target in ("/dev/zero", str(tmp_path / "agents.yaml")):
        done = run_cli(home, "inventory", "import", target, "--dry-run")
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr


def test_deep_nesting_is_refused_not_a_traceback(tmp_path: Path) -> None:
    message = refused(tmp_path, "agents: " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert "agents.yaml" in message


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("agents:\n  - id: a\n    owner: x\n    owner: y\n", 4),
        ("agents: []\nagents:\n  - id: a\n    owner: x\n", 2),
    ],
)
def test_a_duplicate_key_is_an_error_with_its_line(tmp_path: Path, text: str, line: int) -> None:
    message = refused(tmp_path, text)
    assert f"agents.yaml:{line}:" in message and "duplicate key" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ref", " sk-proj-abcdefghijklmnop1234"),
        ("ref", "XOXB-1234567890-abcdefghijkl"),
        ("ref", "token: ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
        ("ref", "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDexampleexampleexample"),
        ("ref", "abc8Q~Zx9.Yk_Lm-Np4Qr7St2Uv5Wx8Yz1Ab3Cd6"),
        ("owner", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz"),
        ("purpose", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ],
)
def test_secret_material_is_found_in_any_field_and_never_echoed(
    tmp_path: Path, field: str, value: str
) -> None:
    agent = {"id": "leaky", "owner": "team", "purpose": "p"}
    agent[field] = value
    credential = {"provider": "aws", "kind": "aws.access-key", "ref": "AKIAEXAMPLEKEY000001"}
    if field == "ref":
        credential["ref"] = value
    ref = json.dumps(credential["ref"])
    lines = [
        "agents:",
        f"  - id: {agent['id']}",
        f"    owner: {json.dumps(agent['owner'])}",
        f"    purpose: {json.dumps(agent['purpose'])}",
        "    credentials:",
        f"      - {{provider: aws, kind: aws.access-key, ref: {ref}}}",
    ]
    text = "\n".join(lines) + "\n"
    message = refused(tmp_path, text)
    line = {"owner": 3, "purpose": 4, "ref": 6}[field]
    assert f"agents.yaml:{line}:" in message and field in message
    assert "looks like secret material" in message
    assert value.strip() not in message and value.strip()[:12] not in message


def test_unknown_values_are_not_echoed(tmp_path: Path) -> None:
    message = refused(
        tmp_path,
        "agents:\n  - id: a\n    owner: x\n    credentials:\n"
        "      - {provider: 'SECRETVALUE_with spaces', kind: aws.user, ref: x}\n",
    )
    assert "SECRETVALUE" not in message and "agents.yaml:5" in message


def test_a_protected_agent_is_refused(tmp_path: Path) -> None:
    message = refused(
        tmp_path, "agents:\n  - id: breakglass\n    owner: mallory\n", protected=("breakglass",)
    )
    assert "agents.yaml:2:" in message and "protected" in message


def test_an_import_without_status_never_changes_a_lifecycle_state(tmp_path: Path) -> None:
    from killswitch.models import Agent, AgentStatus

    inventory = Inventory(tmp_path / "inventory.db")
    inventory.upsert_agent(Agent("held", "team", AgentStatus.CONTAINED, purpose="p"))
    inventory.upsert_agent(Agent("gone", "team", AgentStatus.DECOMMISSIONED))
    path = tmp_path / "agents.yaml"
    path.write_text(
        "agents:\n  - id: held\n    owner: team\n  - id: gone\n    owner: new-team\n"
        "  - id: fresh\n    owner: team\n"
    )
    entries = fleet_file.load(path, KINDS)
    changes = {c.agent: c for c in fleet_file.plan(inventory, entries)}
    assert changes["held"].change == "unchanged"
    assert changes["gone"].change == "changed"
    assert changes["gone"].fields == (("owner", "team", "new-team"),)
    assert changes["fresh"].change == "created"
    fleet_file.apply(inventory, entries)
    assert inventory.get_agent("held").status is AgentStatus.CONTAINED  # type: ignore[union-attr]
    assert inventory.get_agent("held").purpose == "p"  # type: ignore[union-attr]
    gone = inventory.get_agent("gone")
    assert gone is not None and gone.status is AgentStatus.DECOMMISSIONED
    assert gone.owner == "new-team"
    fresh = inventory.get_agent("fresh")
    assert fresh is not None and fresh.status is AgentStatus.ACTIVE


def test_the_cli_refuses_a_protected_agent_and_dry_run_shows_the_diff(tmp_path: Path) -> None:
    home = tmp_path / "home"
    profile = tmp_path / "profile.json"
    profile.write_text("{}")
    path = tmp_path / "agents.yaml"
    path.write_text("agents:\n  - id: breakglass\n    owner: mallory\n")
    done = run_cli(home, "inventory", "import", str(path), KILLSWITCH_PROFILE=str(profile))
    assert done.returncode == 2 and "protected" in done.stderr, done.stderr
    path.write_text(GOOD)
    run_cli(home, "inventory", "import", str(path), KILLSWITCH_PROFILE=str(profile))
    path.write_text(GOOD.replace("owner: platform", "owner: new-team"))
    done = run_cli(
        home,
        "inventory",
        "import",
        str(path),
        "--dry-run",
        "--json",
        KILLSWITCH_PROFILE=str(profile),
    )
    assert done.returncode == 0, done.stderr
    changes = {c["agent"]: c for c in json.loads(done.stdout)["changes"]}
    assert changes["report-writer"]["change"] == "unchanged"
    assert changes["old-bot"]["fields"] == {"owner": {"old": "platform", "new": "new-team"}}
    shown = run_cli(
        home, "inventory", "import", str(path), "--dry-run", KILLSWITCH_PROFILE=str(profile)
    )
    assert "old-bot: changed owner 'platform' → 'new-team'" in shown.stdout, shown.stdout
