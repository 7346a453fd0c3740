"""`killswitch contain --agents … | --agents-from | --owner | --credential` without a scaled-out
stack: the guards refuse before anything is planned, a dry run shows the blast radius, the
confirmation guard holds, a flow-mode fleet with no worker says so, break-glass contains the
fleet in one process and reports every credential."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from killswitch.inventory import Inventory
from tests.conftest import SeedAgent, run_cli

pytestmark = pytest.mark.integration
SMALL = {"aws": {"users": (("runtime", 1),), "role": False}}
ONLY = ("aws", "slack")


def fleet(home: Path, *args: str, **env: str) -> tuple[int, dict[str, Any], str]:
    done = run_cli(
        home, "contain", "--reason", "test: a shared secret leaked", "--json", *args, **env
    )
    return done.returncode, json.loads(done.stdout or "{}"), done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--agents", "a-1,agent-*"),  # a wildcard among the ids
        ("--agents", "no-such-agent-x1"),  # unknown
        ("--agents", "breakglass"),  # protected
        ("--owner", "*"),
    ],
)
def test_a_bad_fleet_is_refused_before_anything_is_planned(
    sandbox_home: Path, sandbox: dict[str, Any], args: tuple[str, ...]
) -> None:
    code, answer, stderr = fleet(sandbox_home, *args)
    assert code == 2, stderr
    assert answer["ok"] is False and answer["error"]["code"]
    assert "blast radius" not in stderr


def test_one_agent_and_a_fleet_together_is_refused(
    sandbox_home: Path, sandbox: dict[str, Any]
) -> None:
    code, answer, _ = fleet(sandbox_home, "support-bot", "--agents", "support-bot")
    assert code == 2 and answer["error"]["code"] == "refused"


def test_a_dry_run_plans_the_fleet_once_and_shows_its_blast_radius(
    sandbox_home: Path, seed_agent: SeedAgent, tmp_path: Path
) -> None:
    agents = [seed_agent("dry", only=ONLY, **SMALL) for _ in range(3)]
    listed = tmp_path / "fleet.txt"
    listed.write_text(f"# the leak's agents\n{agents[0]}\n\n{agents[1]}  # second\n")
    code, answer, stderr = fleet(
        sandbox_home, "--agents-from", str(listed), "--agents", agents[2], "--dry-run"
    )
    assert code == 0, stderr
    assert answer["dry_run"] and answer["agents"] == [agents[2], agents[0], agents[1]]
    radius = {b["provider"]: b for b in answer["blast_radius"]}
    assert radius["aws"]["agents"] == 3 and radius["aws"]["credentials"] == 3
    assert radius["slack"]["credentials"] == 3
    assert "blast radius: 3 agents" in stderr and stderr.count("discovering ") == 1


def test_owner_and_credential_select_the_agents_that_hold_it(
    sandbox_home: Path, inventory: Inventory, seed_agent: SeedAgent
) -> None:
    agent_id = seed_agent("own", only=ONLY, **SMALL)
    [ref] = [r for r in inventory.declared(agent_id) if r.kind == "aws.access-key"]
    code, answer, stderr = fleet(sandbox_home, "--credential", ref.ref, "--dry-run")
    assert code == 0, stderr
    assert answer["agents"] == [agent_id]
    code, answer, stderr = fleet(sandbox_home, "--owner", "test-owner", "--dry-run")
    assert code == 0, stderr
    assert agent_id in answer["agents"]


def test_above_the_guard_a_fleet_needs_yes(sandbox_home: Path, seed_agent: SeedAgent) -> None:
    agents = [seed_agent("guard", only=ONLY, **SMALL) for _ in range(2)]
    code, answer, stderr = fleet(
        sandbox_home, "--agents", ",".join(agents), KILLSWITCH_SCALE__CONFIRM_OVER_AGENTS="1"
    )
    assert code == 2, stderr
    assert answer["error"]["code"] == "confirmation-required"
    assert "--yes" in answer["error"]["remediation"]


def test_a_flow_fleet_without_workers_says_so(sandbox_home: Path, seed_agent: SeedAgent) -> None:
    agent_id = seed_agent("noworker", only=ONLY, **SMALL)
    code, answer, stderr = fleet(sandbox_home, "--agents", agent_id)
    assert code == 3, stderr
    assert "scale up" in answer["error"]["remediation"]


def test_break_glass_contains_the_fleet_in_one_process(
    sandbox_home: Path, seed_agent: SeedAgent
) -> None:
    agents = [seed_agent("bg", only=ONLY, **SMALL) for _ in range(3)]
    code, report, stderr = fleet(sandbox_home, "--agents", ",".join(agents), "--break-glass")
    assert code == 0, stderr
    assert report["ok"] and report["mode"] == "break-glass" and report["ledger_verified"]
    assert [a["agent"] for a in report["agents"]] == agents
    rows = [c for a in report["agents"] for c in a["credentials"]]
    assert len(rows) == 6 and {r["verdict"] for r in rows} == {"dead"}
    for agent_id in agents:
        assert f"{agent_id}: PROVEN" in stderr
