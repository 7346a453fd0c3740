"""A re-run after a killed containment proves what the killed run revoked (issue 17, kill -9):
the killed run's ledgered baseline is carried over (killswitch/carried.py), never past a
restore, and never for a credential whose baseline did not authenticate."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from killswitch import pipeline
from killswitch.models import ContainmentReport, VerdictStatus
from killswitch.request import Mode, Request, Workflow
from killswitch.runtime import Runtime
from killswitch.sandbox.aws import fleet as aws_fleet
from killswitch.secrets import KeyringFile
from killswitch.settings import Settings
from revokers.aws.policies import DENY_ALL, QUARANTINE_POLICY
from tests.conftest import KILLSWITCH, SeedAgent, cli_env, run_cli

pytestmark = pytest.mark.integration
CARRIED = "baseline carried from run"
ALREADY = "baseline already rejected before containment"


def only(provider: str) -> dict[str, str]:
    return {"KILLSWITCH_PROVIDERS": json.dumps([provider])}


def contain(settings: Settings, agent_id: str) -> ContainmentReport:
    """A break-glass containment of the agent's AWS credentials, in this process."""
    runtime = Runtime.open(settings, providers=["aws"])
    try:
        request = Request(agent_id, "test: re-run", "test", mode=Mode.BREAK_GLASS)
        return pipeline.contain(runtime, request)
    finally:
        runtime.close()


def restore(settings: Settings, agent_id: str) -> None:
    runtime = Runtime.open(settings, providers=["aws"])
    try:
        request = Request(
            agent_id, "false positive", "test", mode=Mode.BREAK_GLASS, workflow=Workflow.RESTORE
        )
        assert pipeline.restore(runtime, request).ok
    finally:
        runtime.close()


def baseline_of(settings: Settings, agent_id: str, run_id: str) -> dict[str, Any]:
    """The run's one `baseline` ledger entry."""
    runtime = Runtime.open(settings, providers=[])
    try:
        rows = list(runtime.ledger.rows(agent=agent_id, run_id=run_id))
    finally:
        runtime.close()
    [baseline] = [r for r in rows if r["action"] == "baseline"]
    changes = [
        r["seq"]
        for r in rows
        if r["detail"].get("verb") and r["detail"].get("detail") != "already in place at discovery"
    ]
    assert baseline["seq"] < min(changes, default=baseline["seq"] + 1)
    assert baseline["outcome"] == "taken" and baseline["provider"]
    return baseline


def killed_after_its_first_change(
    home: Path,
    settings: Settings,
    agent_id: str,
    provider: str = "anthropic",
    at: str = "action NOT IN ('plan', 'contain', 'probe', 'baseline')",
) -> str:
    """Start a containment and SIGKILL it as soon as the ledger shows its first change:
    its other changes are under way. Its run id."""
    Runtime.open(settings, providers=[]).close()  # the ledger exists before the run writes
    ledger = sqlite3.connect(settings.ledger_file)
    [start] = ledger.execute("SELECT COALESCE(MAX(seq), 0) FROM entries").fetchone()
    proc = subprocess.Popen(  # noqa: S603
        [KILLSWITCH, "contain", agent_id, "--reason", "chaos: kill -9", "--json", "--break-glass"],
        env=cli_env(home, **only(provider)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        run_id = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None and not run_id:
            row = ledger.execute(
                f"SELECT run_id FROM entries WHERE seq > ? AND agent = ? AND {at} "  # noqa: S608
                "ORDER BY seq LIMIT 1",
                (start, agent_id),
            ).fetchone()
            run_id = str(row[0]) if row else ""
            if not run_id:
                time.sleep(0.002)
        assert proc.poll() is None, "the containment ended before its first change was seen"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        ledger.close()
    assert run_id
    return run_id


def deny_behind_our_back(admin: aws_fleet.Admin, user: str) -> None:
    """Kill a user's keys outside killswitch (by hand, in the console): the deny-all that
    killswitch itself would put (moto ignores an Inactive key)."""
    admin.iam().put_user_policy(
        UserName=user, PolicyName=QUARANTINE_POLICY, PolicyDocument=json.dumps(DENY_ALL)
    )


def test_a_rerun_after_a_kill_proves_every_credential_the_killed_run_revoked(
    sandbox_home: Path, settings: Settings, seed_agent: SeedAgent, keyring: KeyringFile
) -> None:
    agent_id = seed_agent("carried", only=("anthropic",), anthropic={"mints": [{}, {}, {}]})
    killed = killed_after_its_first_change(sandbox_home, settings, agent_id)

    baseline = baseline_of(settings, agent_id, killed)
    answers = baseline["detail"]["controls"]
    assert len(answers) == 3 and set(answers.values()) == {"accepted"}
    entries = json.loads(keyring.path.read_text())["entries"]
    for key in answers:  # keys and answers only: no secret material in the ledger
        for material in entries[key]:
            assert not any(str(v) in json.dumps(baseline) for v in material.values())

    done = run_cli(
        sandbox_home,
        "contain",
        agent_id,
        "--reason",
        "test: re-run",
        "--json",
        "--break-glass",
        KILLSWITCH_PROVIDERS=json.dumps(["anthropic"]),
    )

    assert "Traceback" not in done.stderr, done.stderr
    rerun = json.loads(done.stdout)
    assert done.returncode == 0, rerun["summary"]
    credentials = rerun["credentials"]
    assert len(credentials) == 3
    assert {c["verdict"] for c in credentials} == {"dead"}, [c["evidence"] for c in credentials]
    own = baseline_of(settings, agent_id, rerun["run_id"])["detail"]["controls"]
    rejected = {key for key, answer in own.items() if answer == "rejected"}
    assert rejected, "the killed run had revoked nothing the re-run could see"
    for c in credentials:
        carried = f"{CARRIED} {killed[:12]} (killed or earlier)" in c["evidence"]
        assert carried is (f"{c['kind']}:{c['ref']}" in rejected), c["evidence"]
        assert ALREADY not in c["evidence"]


def test_a_restore_in_between_ends_the_carried_baseline(
    settings: Settings, seed_agent: SeedAgent, admin: aws_fleet.Admin
) -> None:
    agent_id = seed_agent(
        "restored", only=("aws",), aws={"users": (("runtime", 1),), "role": False}
    )
    first = contain(settings, agent_id)
    assert [c.verdict.status for c in first.credentials] == [VerdictStatus.DEAD]
    # Without a restore, a second run stands on the first one's baseline...
    [again] = contain(settings, agent_id).credentials
    assert again.verdict.status is VerdictStatus.DEAD
    assert f"{CARRIED} {first.run_id[:12]}" in again.verdict.evidence

    restore(settings, agent_id)
    deny_behind_our_back(admin, f"{agent_id}-runtime")  # then killed again, by someone else

    # ...after one, it does not: the rejection may be anybody's.
    [rerun] = contain(settings, agent_id).credentials
    assert rerun.verdict.status is VerdictStatus.UNVERIFIED, rerun.verdict.evidence
    assert ALREADY in rerun.verdict.evidence and CARRIED not in rerun.verdict.evidence


def test_a_credential_never_baselined_as_accepted_stays_unverified(
    settings: Settings, seed_agent: SeedAgent, admin: aws_fleet.Admin
) -> None:
    agent_id = seed_agent("never", only=("aws",), aws={"users": (("runtime", 1),), "role": False})
    deny_behind_our_back(admin, f"{agent_id}-runtime")  # rejected before any run of ours
    first = contain(settings, agent_id)
    answers = baseline_of(settings, agent_id, first.run_id)["detail"]["controls"]
    assert set(answers.values()) == {"rejected"}
    for report in (first, contain(settings, agent_id)):
        [credential] = report.credentials
        assert credential.verdict.status is VerdictStatus.UNVERIFIED, credential.verdict.evidence
        assert ALREADY in credential.verdict.evidence
        assert CARRIED not in credential.verdict.evidence


def test_a_credential_gone_from_the_listings_is_named_and_proven_again(
    sandbox_home: Path, settings: Settings, seed_agent: SeedAgent
) -> None:
    """Vault lists a revoked lease (or token) no more: once killed, discovery does not find
    it. A run killed after its revocations and before its probes: the re-run names those
    again, from the killed run's plan, and proves them dead on its baseline — no credential
    is left proven by nobody."""
    agent_id = seed_agent("gone", only=("vault",))
    planned = run_cli(
        sandbox_home, "contain", agent_id, "--reason", "t", "--dry-run", "--json", **only("vault")
    )
    keys = {f"{c['kind']}:{c['ref']}" for c in json.loads(planned.stdout)["plan"]["credentials"]}
    killed = killed_after_its_first_change(
        sandbox_home, settings, agent_id, provider="vault", at="action = 'probe'"
    )
    runtime = Runtime.open(settings, providers=["vault"])
    try:
        request = Request(agent_id, "test: re-run", "test", mode=Mode.BREAK_GLASS)
        again = pipeline.contain(runtime, request)
    finally:
        runtime.close()
    assert {c.credential.key for c in again.credentials} == keys
    for c in again.credentials:
        assert c.verdict.status is VerdictStatus.DEAD, c.verdict.evidence
    assert any(f"{CARRIED} {killed[:12]}" in c.verdict.evidence for c in again.credentials)
