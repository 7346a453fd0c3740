"""Fleet containment on the scaled-out shape, for real: `killswitch scale up` (PostgreSQL from
the wheel, a Prefect server on it, the work pool and deployments, two process workers, the
provider limits), then `killswitch contain --agents …` through the `contain` deployment.

Checked from what the kill switch itself recorded: every credential proven dead, both workers
ran agents (the ledger's `contain started` entries name the worker), the ledger verifies, and
no provider ever had more calls in flight than its limit (the `provider-calls` entries: when
each call held the provider's global slot). Then the faults: a missing limit is an error that
changes nothing, and a worker killed mid-run is named in the report and finished by a re-run.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from killswitch.inventory import open_inventory
from killswitch.ledger_key import open_ledger
from killswitch.sandbox import control, fleet, seeding
from killswitch.sandbox.plugin import AgentSpec
from killswitch.sandbox.state import Paths
from killswitch.settings import Settings, load_settings
from tests.conftest import KILLSWITCH, cli_env, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]
LIMITS = {"aws": 2, "slack": 2}
PROVIDERS = tuple(LIMITS)
FLEET = 10


@pytest.fixture(scope="module")
def stack(sandbox: dict[str, Any], sandbox_home: Path) -> Iterator[dict[str, Any]]:
    """`killswitch scale up --workers 2` beside the session's sandbox; `down` afterwards,
    and nothing it started is left running. Not under pytest's basetemp: as root the stack's
    PostgreSQL runs as `pgserver`, which must traverse the parents, and any pytest session
    starting meanwhile resets pytest-of-root/ to 0700."""
    home = Path(tempfile.mkdtemp(prefix="killswitch-test-scale-"))
    limits = [f"--limit={p}={n}" for p, n in LIMITS.items()]
    up = run_cli(
        sandbox_home, "scale", "up", "--workers", "2", "--home", str(home), *limits, "--json",
        timeout=300,
    )  # fmt: skip
    status: dict[str, Any] = json.loads(up.stdout or "{}")
    try:
        assert up.returncode == 0, up.stderr[-4000:]
        assert status["running"] and len(status["workers"]) == 2
        status["home_dir"] = str(home)
        yield status
    finally:
        down = run_cli(sandbox_home, "scale", "down", "--home", str(home), timeout=120)
        assert down.returncode == 0, down.stderr
        for pid in [w["pid"] for w in status.get("workers", [])]:
            assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def stack_settings(stack: dict[str, Any]) -> Settings:
    """The stack's profile: the ledger, the inventory and the plans in its PostgreSQL."""
    settings = load_settings(profile=Path(stack["profile"]))
    assert settings.database is not None and settings.database.startswith("postgresql://")
    return settings


@pytest.fixture(scope="module")
def stack_seeding(
    sandbox: dict[str, Any], sandbox_home: Path, stack_settings: Settings
) -> seeding.Seeding:
    """Seeders writing the agents into the stack's inventory (PostgreSQL), where the fleet
    command and every worker look them up."""
    return seeding.attach(
        sandbox["stand_ins"],
        sandbox["providers"],
        Paths.under(sandbox_home),
        inventory=open_inventory(stack_settings),
    )


def profile_of(stack: dict[str, Any]) -> str:
    return str(stack["profile"])


def seed(seeding_: seeding.Seeding, n: int) -> list[str]:
    """`n` small agents: one AWS user with one access key, and a Slack bot token."""
    agents = [f"fleet-{uuid.uuid4().hex[:8]}" for _ in range(n)]
    skip = frozenset(seeding_.seeders) - set(PROVIDERS)
    for agent_id in agents:
        spec = AgentSpec(
            agent_id, "test-owner", "test agent",
            options={"aws": {"users": (("runtime", 1),), "role": False}}, skip=skip,
        )  # fmt: skip
        fleet.seed_agent(seeding_.sandbox, seeding_.seeders, spec)
    return agents


def fleet_contain(
    home: Path, stack: dict[str, Any], agents: list[str], *extra: str
) -> subprocess.CompletedProcess[str]:
    return run_cli(
        home,
        "contain",
        "--agents",
        ",".join(agents),
        "--reason",
        "a shared secret leaked (test)",
        "--yes",
        "--json",
        *extra,
        timeout=300,
        KILLSWITCH_PROFILE=profile_of(stack),
    )


def entries(settings: Settings, run_ids: set[str]) -> list[dict[str, Any]]:
    ledger = open_ledger(settings)
    try:
        return [e for e in ledger.rows() if e["run_id"] in run_ids]
    finally:
        ledger.close()


def assert_verified(home: Path, stack: dict[str, Any]) -> None:
    """`killswitch audit verify` with the stack's profile: the PostgreSQL ledger, whole."""
    done = run_cli(home, "audit", "verify", "--json", KILLSWITCH_PROFILE=profile_of(stack))
    assert done.returncode == 0, done.stdout + done.stderr
    verified = json.loads(done.stdout)
    assert verified["ok"] and verified["ledger"].startswith("postgresql://"), verified


def most_in_flight(held: list[list[float]]) -> int:
    """The largest number of intervals open at one instant (an end before a start at a tie)."""
    events = sorted([(s, 1) for s, _, _ in held] + [(e, -1) for _, e, _ in held])
    most = current = 0
    for _, step in events:
        current += step
        most = max(most, current)
    return most


def test_a_fleet_is_contained_over_two_workers_within_the_provider_limits(
    stack: dict[str, Any],
    stack_seeding: seeding.Seeding,
    sandbox_home: Path,
    stack_settings: Settings,
) -> None:
    agents = seed(stack_seeding, FLEET)
    done = fleet_contain(sandbox_home, stack, agents)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout)
    assert report["ok"] and report["ledger_verified"] and report["mode"] == "flow"
    assert [a["agent"] for a in report["agents"]] == agents
    rows = [c for a in report["agents"] for c in a["credentials"]]
    assert len(rows) == FLEET * 2  # an access key and a Slack token each
    assert {r["verdict"] for r in rows} == {"dead"}, [r for r in rows if r["verdict"] != "dead"]
    for agent_id in agents:  # progress per agent as each finished
        assert f"{agent_id}: PROVEN" in done.stderr
    # Planned once for the fleet: one discovery pass, not one per agent.
    assert done.stderr.count("discovering ") == 1
    # Both workers ran agents (the ledger's own record of where each run started).
    assert {a["worker"] for a in report["agents"]} == {"killswitch-worker-1", "killswitch-worker-2"}
    # One ledger for every process: the fleet's, in PostgreSQL, verified as a whole.
    assert_verified(sandbox_home, stack)

    # Every gated provider call held a slot of its provider's limit; never more at once.
    recorded = entries(stack_settings, {a["run_id"] for a in report["agents"]})
    held: dict[str, list[list[float]]] = {}
    for e in recorded:
        if e["action"] == "provider-calls":
            assert e["detail"]["limit"] == f"killswitch-provider-{e['provider']}"
            held.setdefault(e["provider"], []).extend(e["detail"]["held"])
    assert set(held) == set(PROVIDERS)
    for provider, intervals in held.items():
        assert most_in_flight(intervals) <= LIMITS[provider], provider
    contained = [e for e in recorded if e["provider"] == "aws" and e["detail"].get("verb")]
    assert len(held["aws"]) == len(contained) > 0  # each AWS action, one slot


def test_a_missing_provider_limit_is_an_error_and_changes_nothing(
    stack: dict[str, Any],
    stack_seeding: seeding.Seeding,
    sandbox_home: Path,
    stack_settings: Settings,
) -> None:
    agents = seed(stack_seeding, 1)
    env_lines = dict(
        line.removeprefix("export ").split("=", 1)
        for line in Path(stack["env_file"]).read_text().splitlines()
    )
    user, _, password = env_lines["PREFECT_API_AUTH_STRING"].partition(":")
    with httpx.Client(base_url=env_lines["PREFECT_API_URL"] + "/", auth=(user, password)) as client:
        assert client.delete("v2/concurrency_limits/killswitch-provider-slack").status_code < 300
        try:
            done = fleet_contain(sandbox_home, stack, agents)
        finally:
            again = run_cli(
                sandbox_home, "scale", "up", "--home", stack["home_dir"], timeout=180
            )  # recreates it (idempotent)
            assert again.returncode == 0, again.stderr[-2000:]
    assert done.returncode == 1, done.stderr[-4000:]
    report = json.loads(done.stdout)
    assert report["not_proven"] == agents
    recorded = entries(stack_settings, {report["agents"][0]["run_id"]})
    assert not any(e["detail"].get("verb") for e in recorded), "nothing may have been changed"
    assert not any(e["action"] == "contain" and e["outcome"] == "started" for e in recorded)


def test_a_worker_killed_mid_run_is_named_and_a_rerun_finishes_the_rest(
    stack: dict[str, Any],
    stack_seeding: seeding.Seeding,
    sandbox_home: Path,
    stack_settings: Settings,
) -> None:
    agents = seed(stack_seeding, 4)
    control.fault(sandbox_home, "aws", latency_ms=400)  # long enough runs to kill one mid-way
    try:
        cli = subprocess.Popen(  # noqa: S603
            [KILLSWITCH, "contain", "--agents", ",".join(agents), "--reason", "leak (test)",
             "--yes", "--json"],
            env=cli_env(sandbox_home, KILLSWITCH_PROFILE=profile_of(stack)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=sandbox_home.parent,
        )  # fmt: skip
        where: dict[str, str] = {}
        deadline = time.monotonic() + 120
        ledger_settings = stack_settings
        while len(where) < len(agents) and time.monotonic() < deadline:
            ledger = open_ledger(ledger_settings)
            try:
                for e in ledger.rows():
                    if (
                        e["agent"] in agents
                        and e["action"] == "contain"
                        and e["outcome"] == "started"
                    ):
                        where[e["agent"]] = e["detail"]["worker"]
            finally:
                ledger.close()
            time.sleep(0.2)
        assert len(where) == len(agents), where
        victim_name = where[agents[0]]
        [victim] = [w for w in stack["workers"] if w["name"] == victim_name]
        worker = psutil.Process(victim["pid"])
        for process in [*worker.children(recursive=True), worker]:  # the host is gone
            process.send_signal(signal.SIGKILL)
        out, err = cli.communicate(timeout=240)
    finally:
        control.fault(sandbox_home, "aws", latency_ms=0)
    report = json.loads(out)
    closed = {
        e["agent"]
        for e in entries(stack_settings, {a["run_id"] for a in report["agents"]})
        if e["action"] == "contain" and e["outcome"] in ("proven", "not-proven")
    }
    lost = {a for a, w in where.items() if w == victim_name and a not in closed}
    assert lost, "the kill came too late: every run on that worker had finished"
    assert cli.returncode == 1, err[-4000:]
    assert set(report["not_proven"]) == lost
    assert report["ledger_verified"]
    for a in report["agents"]:
        if a["agent"] in lost:
            assert a["state"] in ("lost", "not-started")
            assert any(c["verdict"] == "unknown" for c in a["credentials"])
    assert_verified(sandbox_home, stack)

    # The worker back, the same command again: what is dead stays dead, the rest is finished.
    again = run_cli(sandbox_home, "scale", "up", "--home", stack["home_dir"], timeout=180)
    assert again.returncode == 0, again.stderr[-2000:]
    rerun = fleet_contain(sandbox_home, stack, agents)
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    second = json.loads(rerun.stdout)
    assert second["ok"]
    verdicts = {c["verdict"] for a in second["agents"] for c in a["credentials"]}
    assert verdicts <= {"dead", "unverified"}
