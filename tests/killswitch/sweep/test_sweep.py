"""The zombie sweep against the sandbox: what it finds, the grace periods, the first dry
run, and the scheduled deployment that `killswitch serve` runs."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from killswitch import pipeline
from killswitch.execution import materials_for
from killswitch.inventory import Inventory
from killswitch.models import AgentStatus, Credential, VerdictStatus
from killswitch.runtime import Runtime
from killswitch.sandbox.aws import fleet
from killswitch.secrets import KeyringFile
from killswitch.settings import Settings
from killswitch.sweep import SweepRequest, run
from killswitch.sweep.report import sweep_to_dict
from killswitch.verdicts import check_alive
from tests.conftest import SeedAgent, run_cli

pytestmark = pytest.mark.integration


def sweep_json(home: Path, *args: str, **env: str) -> dict[str, Any]:
    done = run_cli(home, "sweep", "--json", "--quiet", *args, **env)
    assert done.returncode == 0, done.stderr + done.stdout
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def refs(report: dict[str, Any], category: str) -> set[str]:
    return {
        f["nhi"]["ref"]
        for f in report["findings"]
        if category in f["categories"] and not f["protected"]
    }


def messages_about(saas_url: str, needle: str) -> list[str]:
    sent = httpx.get(f"{saas_url}/_sandbox/slack/messages", timeout=10).json()
    return [m.get("text", "") for m in sent if needle in m.get("text", "")]


def test_the_sweep_finds_exactly_what_was_seeded_and_no_healthy_credential(
    sandbox: dict[str, Any],
    sandbox_home: Path,
    admin: fleet.Admin,
    inventory: Inventory,
    saas_url: str,
) -> None:
    seeded = sandbox["sweep_seeded"]
    zombie = seeded["zombie_agent"]
    # Created outside the seed, for the retired agent, just before the run.
    fresh = fleet.add_key(admin, KeyringFile(Path("/dev/null")), f"{zombie}-ci", remember=False)
    notices_before = len(httpx.get(f"{saas_url}/_sandbox/slack/messages", timeout=10).json())

    report = sweep_json(sandbox_home, "--dry-run")

    assert report["dry_run"] is True and report["ok"] is True
    assert {d["provider"] for d in report["discovered"]} == {
        "aws",
        "vault",
        "gcp",
        "azure",
        "openai",
        "anthropic",
    }
    zombies = refs(report, "zombie")
    assert fresh["access_key_id"] in zombies
    iam = admin.iam()
    for user in (f"{zombie}-runtime", f"{zombie}-ci"):
        keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
        assert {k["AccessKeyId"] for k in keys} <= zombies
    of_zombie = [f for f in report["findings"] if zombie in f["agents"]]
    assert {f["nhi"]["provider"] for f in of_zombie} == {
        "aws",
        "vault",
        "gcp",
        "azure",
        "openai",
        "anthropic",
        "slack",
        "github",
    }
    assert all(f["owasp"][0] == "NHI1:2025 Improper Offboarding" for f in of_zombie)
    retired = {a.id for a in inventory.list_agents() if a.status is AgentStatus.DECOMMISSIONED}
    for finding in report["findings"]:
        if "zombie" in finding["categories"]:
            assert set(finding["agents"]) & retired, finding

    assert refs(report, "orphan") == set(seeded["orphan"])
    assert refs(report, "stale") == set(seeded["stale"])
    assert refs(report, "long-lived") == set(seeded["long-lived"])
    assert refs(report, "expired") == set(seeded["expired"])
    assert refs(report, "reused") == set(seeded["reused"])
    # Nothing else: every unprotected finding is one of the seeded kinds of trouble.
    expected = set().union(
        *(set(seeded[c]) for c in ("orphan", "stale", "long-lived", "expired", "reused"))
    )
    for finding in report["findings"]:
        if not finding["protected"] and "zombie" not in finding["categories"]:
            assert finding["nhi"]["ref"] in expected, finding
    # The sandbox's root token is reported, protected, never acted on.
    assert any(
        f["protected"] and f["nhi"]["kind"] == "vault.token" and "root" in f["nhi"]["detail"]
        for f in report["findings"]
    )
    scores = [f["score"] for f in report["findings"]]
    assert scores == sorted(scores, reverse=True)
    # A dry run tells nobody and changes nothing.
    assert (
        len(httpx.get(f"{saas_url}/_sandbox/slack/messages", timeout=10).json()) == notices_before
    )
    assert {s["action"] for s in report["steps"]} <= {
        "notify",
        "protected",
        "wait",
        "contain",
        "destroy",
        "close",
    }
    assert all(
        "would" in s["detail"] or s["action"] == "protected"
        for s in report["steps"]
        if s["action"] in ("notify", "contain", "destroy")
    )


def aws_key_status(runtime: Runtime, keyring: KeyringFile, agent_id: str) -> VerdictStatus:
    ref = next(r for r in runtime.inventory.declared(agent_id) if r.kind == "aws.access-key")
    revoker = runtime.revokers["aws"]
    credential = Credential("aws", ref.kind, ref.ref, "", agent_id)
    materials = materials_for(revoker, keyring, credential)
    return check_alive(revoker, credential, materials, deadline_s=0.0, interval_s=0.0).status


def deadline_of(step: dict[str, Any]) -> datetime:
    """The grace deadline a notify/wait step names ("… contain after <ISO time>")."""
    return datetime.fromisoformat(step["detail"].rsplit(" after ", 1)[1])


def sleep_until(deadline: datetime) -> None:
    """Wall-clock wait until `deadline` has passed (normally nothing: sweeps take longer)."""
    time.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds() + 0.1))


def test_grace_periods_are_kept_then_containment_and_destruction_are_proven(
    sandbox_home: Path,
    seed_agent: SeedAgent,
    runtime: Runtime,
    keyring: KeyringFile,
    saas_url: str,
) -> None:
    agent_id = seed_agent("zombie", status=AgentStatus.DECOMMISSIONED)
    # Every stage runs as `killswitch sweep --apply` (the flow, as an operator runs it) on
    # the wall clock, with grace periods of a few seconds. The sweeps that must fall inside
    # a grace period run in this process as of one second after the stage that opened it
    # (the sweep's own clock, `SweepRequest.at`), so machine load cannot push them out.
    grace = timedelta(seconds=3)
    env = {
        "KILLSWITCH_SWEEP__NOTIFY_GRACE_S": str(int(grace.total_seconds())),
        "KILLSWITCH_SWEEP__DESTROY_GRACE_S": str(int(grace.total_seconds())),
    }

    def cases(report: dict[str, Any]) -> list[dict[str, Any]]:
        assert not report["dry_run"]
        return [s for s in report["steps"] if s["case"] == f"zombie:{agent_id}"]

    def sweep() -> tuple[list[dict[str, Any]], datetime]:
        report = sweep_json(sandbox_home, "--apply", "--agent", agent_id, **env)
        return cases(report), datetime.fromisoformat(report["started_at"])

    def sweep_as_of(at: datetime) -> list[dict[str, Any]]:
        request = SweepRequest(actor="test-suite", dry_run=False, agents=(agent_id,), at=at)
        report = pipeline.sweep(runtime, request, break_glass=True)
        assert report.ok and report.started_at == at
        return cases(sweep_to_dict(report))

    first, notified_at = sweep()
    assert [(s["action"], s["ok"]) for s in first] == [("notify", True)]
    contain_after = deadline_of(first[0])
    assert contain_after == notified_at + grace  # the grace period of the settings
    assert len(messages_about(saas_url, agent_id)) == 1
    assert aws_key_status(runtime, keyring, agent_id) is VerdictStatus.ALIVE

    # Inside the grace period: nothing contained, nobody told twice.
    again = sweep_as_of(notified_at + timedelta(seconds=1))
    assert [s["action"] for s in again] == ["wait"]
    assert "contain after" in again[0]["detail"] and deadline_of(again[0]) == contain_after
    assert len(messages_about(saas_url, agent_id)) == 1
    assert aws_key_status(runtime, keyring, agent_id) is VerdictStatus.ALIVE

    sleep_until(contain_after)
    contained, contained_at = sweep()
    assert [(s["action"], s["ok"]) for s in contained] == [("contain", True)], contained
    assert contained[0]["detail"].startswith("proven:") and contained[0]["containment_run"]
    assert aws_key_status(runtime, keyring, agent_id) is not VerdictStatus.ALIVE
    assert runtime.inventory.get_agent(agent_id).status is AgentStatus.DECOMMISSIONED  # type: ignore[union-attr]

    waiting = sweep_as_of(contained_at + timedelta(seconds=1))
    assert [s["action"] for s in waiting] == ["wait"] and "destroy after" in waiting[0]["detail"]
    destroy_after = deadline_of(waiting[0])
    assert destroy_after == contained_at + grace
    sleep_until(destroy_after)
    destroyed, _ = sweep()
    assert [(s["action"], s["ok"]) for s in destroyed] == [("destroy", True)], destroyed
    assert sweep()[0] == []  # the case is closed: nothing of the agent works any more
    assert len(messages_about(saas_url, agent_id)) == 1


def test_the_first_sweep_is_a_dry_run_and_notices_go_out_once(
    settings: Settings, tmp_path: Path, saas_url: str
) -> None:
    # A fresh inventory knows no agent: everything the providers hold is an orphan.
    # Its own ledger, with its own anchor stream: the sandbox's stream ends with checkpoints
    # of the sandbox's ledger whenever a containment ran earlier in the session.
    anchors = settings.ledger_anchors.model_copy(update={"stream_path": tmp_path / "anchors.jsonl"})
    fresh = settings.model_copy(
        update={
            "inventory_path": tmp_path / "inventory.db",
            "ledger_path": tmp_path / "ledger.db",
            "ledger_anchors": anchors,
        }
    )
    runtime = Runtime.open(fresh)

    def no_containment(request: object) -> Any:
        raise AssertionError("orphans are never contained")

    try:
        first = run(runtime, SweepRequest(actor="test"), no_containment)
        assert first.first_run and first.dry_run and first.ok
        assert first.findings and all(
            f.category.value == "orphan" for f in first.findings if not f.protected
        )
        second = run(runtime, SweepRequest(actor="test"), no_containment)
        assert not second.first_run and not second.dry_run and second.ok
        notices = [s for s in second.steps if s.action == "notify"]
        assert notices and all(s.ok for s in notices)
        third = run(runtime, SweepRequest(actor="test"), no_containment)
        assert [s for s in third.steps if s.action == "notify"] == []
        verified = runtime.ledger.verify()
        assert verified.ok, verified
    finally:
        runtime.close()
