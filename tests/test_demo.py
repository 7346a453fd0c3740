"""`killswitch demo` end to end in a sandbox of its own, and no secret anywhere it wrote."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from killswitch.sandbox.state import Paths, pid_alive
from killswitch.secrets import KeyringFile
from tests.conftest import run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def every_file(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_demo_contains_the_compromised_agent_and_leaks_no_secret(
    tmp_path: Path, sandbox: dict[str, Any]
) -> None:
    home = tmp_path / "demo-home"
    outputs: list[str] = []
    try:
        first = run_cli(home, "demo", "--json", timeout=300)
        outputs += [first.stdout, first.stderr]
        assert first.returncode == 0, first.stderr
        report = json.loads(first.stdout)
        status = json.loads(run_cli(home, "sandbox", "status", "--json").stdout)

        assert report["agent"] == status["demo_agent"] == "research-agent-7"
        assert report["ok"] and report["ledger_verified"] and report["mode"] == "flow"
        kinds = sorted(c["kind"] for c in report["credentials"])
        assert kinds == sorted(
            ["aws.access-key"] * 3
            + ["aws.role"]
            + ["vault.token"] * 3
            + ["vault.secret-id"] * 2
            + ["vault.userpass"]
            + ["vault.lease"] * 2
            + ["gcp.service-account-key"] * 3
            + ["azure.client-secret"] * 2
            + ["slack.bot-token", "github.token", "github.token", "openai.api-key"]
            + ["anthropic.api-key"]
        )
        assert {c["verdict"] for c in report["credentials"]} == {"dead"}
        untouched = report["untouched_agents_checked"]
        assert len({u["agent"] for u in untouched}) >= 3
        assert {u["verdict"] for u in untouched} == {"alive"}
        assert "legacy-summarizer" not in {u["agent"] for u in untouched}  # decommissioned
        # Two sandboxes side by side: their own free ports, never the same.
        assert (
            status["providers"]["aws"]["endpoint_url"]
            != sandbox["providers"]["aws"]["endpoint_url"]
        )

        second = run_cli(home, "demo", timeout=300)  # human output, and a fresh fleet again
        outputs += [second.stdout, second.stderr]
        assert second.returncode == 0, second.stderr
        assert "CONTAINED AND PROVEN" in second.stdout and "DEAD" in second.stdout
        assert run_cli(home, "audit", "verify").returncode == 0
        exported = run_cli(home, "audit", "export")
        outputs.append(exported.stdout)
        assert exported.stdout.count("\n") > 40

        paths = Paths.under(home)
        secrets = list(KeyringFile(paths.keyring).secret_values())
        assert len(secrets) >= 6 * 15  # every key, session, token, secret-id, password
        for text in outputs:
            for secret in secrets:
                assert secret not in text
        written = [p for p in every_file(home) if p != paths.keyring]
        assert any(p.name == "ledger.db" for p in written)
        assert any(p.suffix == ".log" for p in written)
        for path in written:
            blob = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in blob, f"a seeded secret leaked into {path}"
    finally:
        status = json.loads(run_cli(home, "sandbox", "status", "--json").stdout or "{}")
        down = run_cli(home, "sandbox", "down")
        assert down.returncode == 0
    for proc in status.get("processes", {}).values():
        assert not pid_alive(int(proc["pid"]), proc["marker"])
    assert run_cli(home, "sandbox", "status").returncode == 1
    assert os.environ.get("KILLSWITCH_HOME") != str(home)
