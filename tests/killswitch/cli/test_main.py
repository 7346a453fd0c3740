"""The `killswitch` command as a user runs it: JSON shapes, exit codes, refusals, break-glass."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from killswitch.inventory import Inventory
from killswitch.sandbox import fleet
from killswitch.sandbox.aws import fleet as aws_fleet
from killswitch.secrets import KeyringFile
from tests.conftest import SeedAgent, keyring_material, prefect_headers, run_cli, seeded_counts
from tests.revokers.test_aws import snapshot

pytestmark = pytest.mark.integration
DEAD_PREFECT = "http://127.0.0.1:9/api"


def contain_json(
    home: Path, agent_id: str, *args: str, **env: str
) -> tuple[int, dict[str, Any], str]:
    done = run_cli(
        home, "contain", agent_id, "--reason", "test: leaked key", "--json", *args, **env
    )
    return done.returncode, json.loads(done.stdout), done.stderr


def test_contain_runs_the_flow_and_prints_the_documented_json(
    sandbox_home: Path, sandbox: dict[str, Any], seed_agent: SeedAgent
) -> None:
    agent_id = seed_agent()
    code, report, stderr = contain_json(sandbox_home, agent_id)
    assert code == 0, stderr
    assert report["agent"] == agent_id and report["mode"] == "flow" and report["ok"]
    assert report["target"] == "sandbox" and report["actor"] == "test-suite"
    credentials, grants = seeded_counts(sandbox)
    assert len(report["credentials"]) == credentials
    assert {c["provider"] for c in report["credentials"]} == {
        "aws",
        "vault",
        "gcp",
        "azure",
        "slack",
        "github",
        "openai",
        "anthropic",
    }
    for credential in report["credentials"]:
        assert {"provider", "kind", "ref", "actions", "verdict", "evidence"} <= set(credential)
        assert credential["verdict"] == "dead" and credential["actions"]
    assert len(report["grants_detached"]) == grants
    assert report["untouched_agents_checked"] == []
    assert report["ledger_verified"] is True
    assert set(report["timings"]) == {
        "plan_s",
        "contain_s",
        "verify_s",
        "total_s",
        "proven_s",
        "providers",
    }
    assert 0 < report["timings"]["proven_s"] <= report["timings"]["total_s"]
    assert len(report["timings"]["providers"]) == 8
    assert "aws: done: 4/4 dead" in stderr  # progress goes to stderr, JSON to stdout


def test_dry_run_prints_the_plan_and_changes_nothing(
    sandbox_home: Path, seed_agent: SeedAgent, admin: aws_fleet.Admin
) -> None:
    agent_id = seed_agent()
    before = snapshot(admin)
    code, report, _ = contain_json(sandbox_home, agent_id, "--dry-run")
    assert code == 0 and report["dry_run"] and report["credentials"] == []
    assert len(report["plan"]["actions"]) == 37  # GCP 8; Azure: the principal, 2 assignments
    # Vault leases, the Slack token, two GitHub tokens, the OpenAI key: gone for good.
    assert report["plan"]["irreversible_actions"] == 5
    assert snapshot(admin) == before
    human = run_cli(sandbox_home, "contain", agent_id, "--reason", "look", "--dry-run")
    assert "dry run: nothing was changed" in human.stdout and "deactivate-key" in human.stdout


@pytest.mark.parametrize(
    ("agent_id", "code"),
    [
        ("*", "invalid-agent-id"),
        ("no-such-agent", "unknown-agent"),
        ("breakglass", "protected-identity"),
    ],
)
def test_refusals_exit_2_change_nothing_and_are_ledgered(
    sandbox_home: Path, admin: aws_fleet.Admin, agent_id: str, code: str
) -> None:
    before = snapshot(admin)
    done = run_cli(sandbox_home, "contain", agent_id, "--reason", "x", "--json")
    assert done.returncode == 2
    error = json.loads(done.stdout)["error"]
    assert error["code"] == code and error["remediation"]
    assert f"error[{code}]" in done.stderr
    assert "Traceback" not in done.stderr
    assert snapshot(admin) == before
    shown = run_cli(sandbox_home, "audit", "show", "--json", "--agent", agent_id)
    refusals = [r for r in json.loads(shown.stdout) if r["outcome"] == "refused"]
    assert refusals and refusals[-1]["actor"] == "test-suite"
    assert refusals[-1]["detail"]["code"] == code


def test_orchestrator_down_fails_fast_and_break_glass_still_contains(
    sandbox_home: Path, seed_agent: SeedAgent, admin: aws_fleet.Admin
) -> None:
    agent_id = seed_agent()
    before = snapshot(admin)
    down = run_cli(
        sandbox_home,
        "contain",
        agent_id,
        "--reason",
        "x",
        "--json",
        KILLSWITCH_PREFECT_API_URL=DEAD_PREFECT,
    )
    assert down.returncode == 3
    assert "--break-glass" in json.loads(down.stdout)["error"]["remediation"]
    assert snapshot(admin) == before
    code, report, stderr = contain_json(
        sandbox_home, agent_id, "--break-glass", KILLSWITCH_PREFECT_API_URL=DEAD_PREFECT
    )
    assert code == 0, stderr
    assert report["mode"] == "break-glass" and report["ok"] and report["ledger_verified"]


def test_a_credential_that_stays_alive_fails_the_run_loudly(
    sandbox_home: Path,
    seed_agent: SeedAgent,
    sandbox: dict[str, Any],
    keyring: KeyringFile,
    inventory: Inventory,
) -> None:
    agent_id = seed_agent(aws={"users": (("runtime", 1),), "role": False})
    bystander = seed_agent(aws={"users": (("runtime", 1),), "role": False})
    [victim_key] = [r for r in inventory.declared(agent_id) if r.kind == "aws.access-key"]
    [bystander_key] = [r for r in inventory.declared(bystander) if r.kind == "aws.access-key"]
    # Wrong probe material: another agent's live key filed under the victim's key id.
    material = keyring_material(keyring, "aws.access-key", bystander_key.ref)
    keyring.add("aws.access-key", victim_key.ref, material)
    keyring_only = {"KILLSWITCH_SECRET_SOURCES": '["keyring"]'}
    code, report, _ = contain_json(
        sandbox_home, agent_id, KILLSWITCH_PROBE_DEADLINE_S="1.5", **keyring_only
    )
    assert code == 1 and not report["ok"]
    verdict = {c["ref"]: c for c in report["credentials"]}[victim_key.ref]
    assert verdict["verdict"] == "alive" and "still authenticates" in verdict["evidence"]
    human = run_cli(
        sandbox_home,
        "contain",
        agent_id,
        "--reason",
        "again",
        KILLSWITCH_PROBE_DEADLINE_S="0.5",
        **keyring_only,
    )
    assert human.returncode == 1 and "NOT PROVEN" in human.stdout
    api = sandbox["prefect"]["api_url"]
    runs = httpx.post(
        f"{api}/flow_runs/filter",
        json={"flow_runs": {"name": {"any_": [f"contain-{agent_id}"]}}},
        headers=prefect_headers(sandbox),
    ).json()
    assert runs and {r["state_type"] for r in runs} == {"FAILED"}


def test_restore_through_the_cli_then_nothing_left_to_restore(
    sandbox_home: Path, seed_agent: SeedAgent
) -> None:
    agent_id = seed_agent()
    assert contain_json(sandbox_home, agent_id)[0] == 0
    done = run_cli(sandbox_home, "restore", agent_id, "--reason", "false positive", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] and report["agent_status"] == "active"
    assert report["checks"] and {c["verdict"] for c in report["checks"]} == {"alive"}
    again = run_cli(sandbox_home, "restore", agent_id, "--reason", "again")
    assert again.returncode == 2 and "nothing-to-restore" in again.stderr


def test_inventory_list_and_permissions(sandbox_home: Path, sandbox: dict[str, Any]) -> None:
    listed = json.loads(run_cli(sandbox_home, "inventory", "list", "--json").stdout)
    assert {"breakglass", fleet.DEMO_AGENT} <= {a["id"] for a in listed["agents"]}
    assert [a["protected"] for a in listed["agents"] if a["id"] == "breakglass"] == [True]
    perms = run_cli(sandbox_home, "permissions", "aws")
    assert perms.returncode == 0
    assert "iam:UpdateAccessKey" in json.loads(perms.stdout)["policy"]["Statement"][0]["Action"]
    unknown = run_cli(sandbox_home, "permissions", "nope")
    assert unknown.returncode == 3 and "unknown provider" in unknown.stderr


def test_help_is_helpful(sandbox_home: Path) -> None:
    done = run_cli(sandbox_home, "contain", "--help")
    assert done.returncode == 0
    for flag in ("--reason", "--dry-run", "--break-glass", "--json"):
        assert flag in done.stdout


def test_decommission_needs_yes_shows_its_plan_and_cannot_be_restored(
    sandbox_home: Path, seed_agent: SeedAgent, admin: aws_fleet.Admin
) -> None:
    agent_id = seed_agent()
    before = snapshot(admin)
    unconfirmed = run_cli(sandbox_home, "decommission", agent_id, "--reason", "retired", "--json")
    assert unconfirmed.returncode == 2
    assert json.loads(unconfirmed.stdout)["error"]["code"] == "confirmation-required"
    planned = run_cli(
        sandbox_home, "decommission", agent_id, "--reason", "r", "--dry-run", "--json"
    )
    plan = json.loads(planned.stdout)["plan"]
    destroy = [a for a in plan["actions"] if a["verb"] == "destroy"]
    assert destroy and plan["irreversible_actions"] >= len(destroy)
    assert {"delete-user", "delete-role", "delete-entity", "revoke-token"} <= {
        a["operation"] for a in destroy
    }
    assert snapshot(admin) == before

    done = run_cli(sandbox_home, "decommission", agent_id, "--reason", "retired", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["workflow"] == "decommission" and report["agent_status"] == "decommissioned"
    assert {c["verdict"] for c in report["credentials"]} == {"dead"}
    again = run_cli(sandbox_home, "restore", agent_id, "--reason", "oops", "--json")
    assert again.returncode == 2
    assert json.loads(again.stdout)["error"]["code"] == "decommissioned"
