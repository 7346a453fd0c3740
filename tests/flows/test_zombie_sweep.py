"""The `zombie-sweep` flow as `killswitch serve` schedules it: a deployment on the sweep's
cron, behind an authenticated Prefect API; a run created through the API does nothing
without a ticket signed by the kill switch, and a ticketed run leaves a findings table."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from flows.zombie_sweep import zombie_sweep
from killswitch.ledger_key import derived_key
from killswitch.run_tickets import PURPOSE, arguments, mint
from killswitch.runtime import Runtime
from killswitch.settings import SWEEP_ACTIONS
from tests.conftest import run_cli
from tests.killswitch.slack_app.test_app import serving

pytestmark = [pytest.mark.integration, pytest.mark.flow]
FINAL = ("COMPLETED", "FAILED", "CRASHED")


def test_the_prefect_api_refuses_unauthenticated_calls(
    sandbox: dict[str, Any], sandbox_home: Path, prefect_http: httpx.Client
) -> None:
    api = sandbox["prefect"]["api_url"]
    assert httpx.post(f"{api}/flow_runs/filter", json={}, timeout=10).status_code == 401
    wrong = {"Authorization": "Basic a2lsbHN3aXRjaDp3cm9uZw=="}  # killswitch:wrong
    assert httpx.post(f"{api}/flow_runs/filter", json={}, headers=wrong).status_code == 401
    assert prefect_http.post("flow_runs/filter", json={"limit": 1}).status_code == 200
    assert httpx.get(f"{api}/health", timeout=10).status_code == 200  # probes stay open
    status = json.loads(run_cli(sandbox_home, "sandbox", "status", "--json").stdout)
    assert status["prefect"]["auth_string"] == sandbox["prefect"]["auth_string"]


def _create(api: httpx.Client, deployment_id: str, parameters: dict[str, Any]) -> str:
    for _ in range(5):  # the SQLite-backed server can answer "database is locked"
        created = api.post(
            f"deployments/{deployment_id}/create_flow_run",
            json={"parameters": parameters},
            timeout=10,
        )
        if created.status_code == 201:
            return str(created.json()["id"])
        time.sleep(1)
    raise AssertionError(created.text)


def _final(api: httpx.Client, flow_run: str, log: Path, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run_: dict[str, Any] = api.get(f"flow_runs/{flow_run}", timeout=5).json()
        if run_["state"]["type"] in FINAL:
            return run_
        time.sleep(0.5)
    raise AssertionError(log.read_text())


def _refusal(runtime: Runtime, flow_run: str) -> dict[str, Any]:
    [entry] = [
        r
        for r in runtime.ledger.rows()
        if r["action"] == "flow-run" and r["detail"].get("flow_run") == flow_run
    ]
    return entry


def test_serve_schedules_the_sweep_and_only_ticketed_runs_act(
    sandbox: dict[str, Any],
    sandbox_home: Path,
    saas_url: str,
    tmp_path: Path,
    prefect_http: httpx.Client,
    runtime: Runtime,
) -> None:
    env = {"PREFECT_RUNNER_POLL_FREQUENCY": "1", "KILLSWITCH_SWEEP__CRON": "0 6 * * *"}
    log = tmp_path / "serve.log"
    with serving(sandbox, sandbox_home, saas_url, log, **env):
        deadline = time.monotonic() + 60
        # This process registered it (a serve earlier in the session may have, too).
        while time.monotonic() < deadline and "zombie sweep scheduled" not in log.read_text():
            time.sleep(0.3)
        found = prefect_http.get("deployments/name/zombie-sweep/scheduled", timeout=5)
        assert found.status_code == 200, log.read_text()
        deployment = found.json()
        assert [s["schedule"]["cron"] for s in deployment["schedules"]] == ["0 6 * * *"]

        # Forged: an actor in the parameters, no ticket. Refused before anything is done.
        forged = {"dry_run": False, "actor": "alice", "trigger": "slack", "agents": ["nobody"]}
        refused = _final(prefect_http, _create(prefect_http, deployment["id"], forged), log)
        assert refused["state"]["type"] == "FAILED"
        entry = _refusal(runtime, refused["id"])
        assert entry["outcome"] == "refused" and entry["actor"] == "prefect:unverified:alice"
        assert entry["detail"]["code"] == "unverified-run"
        assert entry["detail"]["ticket"] == "absent"
        assert not [
            r for r in runtime.ledger.rows() if r["action"] == "sweep" and r["actor"] == "alice"
        ]

        # The schedule's own parameters through the API: still not the schedule's run.
        looks_scheduled = {"actor": "schedule", "trigger": "schedule"}
        refused = _final(
            prefect_http, _create(prefect_http, deployment["id"], looks_scheduled), log
        )
        assert refused["state"]["type"] == "FAILED"
        assert "not created by a schedule" in _refusal(runtime, refused["id"])["detail"]["message"]

        # Ticketed, through the operator's command: the actor recorded is the ticket's.
        swept = run_cli(
            sandbox_home,
            "sweep",
            "--via-deployment",
            "--dry-run",
            "--agent",
            "nobody",
            "--json",
            KILLSWITCH_ACTOR="oncall:bob",
        )
        assert swept.returncode == 0, swept.stderr + log.read_text()
        ran = json.loads(swept.stdout)
        assert ran["state"] == "COMPLETED"
        [closing] = [r for r in runtime.ledger.rows(run_id=ran["run_id"]) if r["action"] == "sweep"]
        assert closing["actor"] == "oncall:bob" and closing["detail"]["dry_run"] is True

        # A ticket is used once; a second run with the same ticket is a replay.
        args = arguments(
            zombie_sweep.fn,
            {
                "dry_run": True,
                "actor": "carol",
                "trigger": "test",
                "agents": ["nobody"],
                "run_id": uuid.uuid4().hex,
            },
        )
        ticket = mint(
            derived_key(runtime.settings, PURPOSE),
            flow="zombie-sweep",
            args=args,
            actor="carol",
            trigger="test",
        )
        first = _final(
            prefect_http, _create(prefect_http, deployment["id"], {**args, "ticket": ticket}), log
        )
        assert first["state"]["type"] == "COMPLETED", log.read_text()
        again = _final(
            prefect_http, _create(prefect_http, deployment["id"], {**args, "ticket": ticket}), log
        )
        assert again["state"]["type"] == "FAILED"
        replay = _refusal(runtime, again["id"])
        assert "replayed" in replay["detail"]["message"]
        assert replay["actor"] == "prefect:unverified:carol"
        assert ticket.split(".")[2] not in json.dumps(list(runtime.ledger.rows()))
    artifacts = prefect_http.post(
        "artifacts/filter",
        json={
            "artifacts": {
                "key": {"any_": ["zombie-sweep"]},
                "flow_run_id": {"any_": [first["id"]]},
            }
        },
        timeout=10,
    ).json()
    assert artifacts and artifacts[0]["type"] == "table"
    assert "DRY RUN" in artifacts[0]["description"]


def test_the_schedules_own_runs_are_admitted_as_the_schedule(
    sandbox: dict[str, Any],
    sandbox_home: Path,
    saas_url: str,
    tmp_path: Path,
    prefect_http: httpx.Client,
    runtime: Runtime,
) -> None:
    # Every minute, report-only (the session's sandbox is shared): Prefect's scheduler
    # creates the runs, the runner of `killswitch serve` executes them, with no ticket.
    report_only = json.dumps({category: "report" for category in SWEEP_ACTIONS})
    env = {
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "KILLSWITCH_SWEEP__CRON": "* * * * *",
        "KILLSWITCH_SWEEP__ACTIONS": report_only,
    }
    started = datetime.now(UTC)
    log = tmp_path / "serve.log"
    with serving(sandbox, sandbox_home, saas_url, log, **env):
        deadline = time.monotonic() + 180
        done: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not done:
            time.sleep(1)
            runs = prefect_http.post(
                "flow_runs/filter",
                json={
                    "flow_runs": {
                        "expected_start_time": {"after_": started.isoformat()},
                        "state": {"type": {"any_": list(FINAL)}},
                    },
                    "deployments": {"name": {"any_": ["scheduled"]}},
                },
                timeout=10,
            ).json()
            done = [r for r in runs if r["auto_scheduled"]]
        assert done, log.read_text()
    # The every-minute runs nobody will execute now: a later `serve` must not find them.
    left = prefect_http.post(
        "flow_runs/filter",
        json={
            "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
            "deployments": {"name": {"any_": ["scheduled"]}},
        },
        timeout=10,
    ).json()
    for run_ in left:
        prefect_http.delete(f"flow_runs/{run_['id']}", timeout=10)
    [scheduled] = done[:1]
    assert scheduled["state"]["type"] == "COMPLETED", log.read_text()
    assert not [
        r
        for r in runtime.ledger.rows()
        if r["action"] == "flow-run" and r["detail"].get("flow_run") == scheduled["id"]
    ]
    swept = [
        r
        for r in runtime.ledger.rows()
        if r["action"] == "sweep" and datetime.fromisoformat(r["ts"]) >= started
    ]
    assert swept and {r["actor"] for r in swept} == {"schedule"}
