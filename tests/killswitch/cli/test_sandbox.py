"""`killswitch sandbox …` as scripts use it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from killswitch.sandbox import fleet
from tests.conftest import run_cli

pytestmark = pytest.mark.integration


def test_sandbox_status_json_has_what_scripts_need(
    sandbox_home: Path, sandbox: dict[str, Any]
) -> None:
    done = run_cli(sandbox_home, "sandbox", "status", "--json")
    assert done.returncode == 0
    status = json.loads(done.stdout)
    assert status["demo_agent"] == fleet.DEMO_AGENT
    assert {a["id"]: a["status"] for a in status["agents"]}["legacy-summarizer"] == "decommissioned"
    assert len([a for a in status["agents"] if a["id"] not in ("breakglass",)]) >= 5
    assert Path(status["keyring"]).exists()
    aws = status["providers"]["aws"]
    assert {"endpoint_url", "region", "access_key_id", "secret_access_key"} <= set(aws)
    assert aws["endpoint_url"].startswith("http://127.0.0.1:")
    vault = status["providers"]["vault"]
    assert {"addr", "token"} <= set(vault)
    for name in ("slack", "github", "openai", "anthropic"):
        assert status["providers"][name]["base_url"].startswith("http://127.0.0.1:")
    assert status["providers"]["openai"]["admin_key"].startswith("sk-admin-")
    assert status["providers"]["anthropic"]["admin_key"].startswith("sk-ant-admin01-")
