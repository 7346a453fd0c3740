"""The `zombie-sweep` flow as `killswitch serve` schedules it: a deployment on the sweep's
cron, whose runs leave a findings table artifact."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.killswitch.slack_app.test_app import serving

pytestmark = [pytest.mark.integration, pytest.mark.flow]


def test_serve_schedules_the_sweep_and_its_runs_leave_a_findings_table(
    sandbox: dict[str, Any], sandbox_home: Path, saas_url: str, tmp_path: Path
) -> None:
    api = sandbox["prefect"]["api_url"]
    env = {"PREFECT_RUNNER_POLL_FREQUENCY": "1", "KILLSWITCH_SWEEP__CRON": "0 6 * * *"}
    log = tmp_path / "serve.log"
    with serving(sandbox, sandbox_home, saas_url, log, **env):
        deadline = time.monotonic() + 60
        # This process registered it (a serve earlier in the session may have, too).
        while time.monotonic() < deadline and "zombie sweep scheduled" not in log.read_text():
            time.sleep(0.3)
        found = httpx.get(f"{api}/deployments/name/zombie-sweep/scheduled", timeout=5)
        assert found.status_code == 200, log.read_text()
        deployment = found.json()
        assert [s["schedule"]["cron"] for s in deployment["schedules"]] == ["0 6 * * *"]
        parameters = {"dry_run": True, "actor": "test", "trigger": "test", "agents": ["nobody"]}
        for _ in range(5):  # the SQLite-backed server can answer "database is locked"
            created = httpx.post(
                f"{api}/deployments/{deployment['id']}/create_flow_run",
                json={"parameters": parameters},
                timeout=10,
            )
            if created.status_code == 201:
                break
            time.sleep(1)
        assert created.status_code == 201, created.text
        flow_run = created.json()
        state = ""
        while time.monotonic() < deadline + 60 and state not in ("COMPLETED", "FAILED", "CRASHED"):
            time.sleep(0.5)
            run_ = httpx.get(f"{api}/flow_runs/{flow_run['id']}", timeout=5).json()
            state = run_["state"]["type"]
        assert state == "COMPLETED", log.read_text()
    artifacts = httpx.post(
        f"{api}/artifacts/filter",
        json={
            "artifacts": {
                "key": {"any_": ["zombie-sweep"]},
                "flow_run_id": {"any_": [flow_run["id"]]},
            }
        },
        timeout=10,
    ).json()
    assert artifacts and artifacts[0]["type"] == "table"
    assert "DRY RUN" in artifacts[0]["description"]
