"""Issue 17's breakages, each against the sandbox's fault proxy: a provider that cannot be
searched is never missing from the report; a silent provider holds no phase past the
deadline; an HTML 503 is transient; Prefect unreachable is exit 3 with the break-glass hint;
a containment killed mid-way restores exactly."""

from __future__ import annotations

import http.server
import json
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from killswitch import pipeline
from killswitch.errors import TransientError
from killswitch.models import ContainmentReport, Credential, Outcome, VerdictStatus
from killswitch.report import render_containment
from killswitch.request import Mode, Request
from killswitch.runtime import Runtime
from killswitch.sandbox import control
from killswitch.settings import Settings
from revokers.anthropic.revoker import AnthropicRevoker
from tests.conftest import KILLSWITCH, SeedAgent, cli_env, run_cli

pytestmark = pytest.mark.integration
PROXIES = ("aws", "vault", "saas")


@pytest.fixture
def faults(sandbox: dict[str, Any], sandbox_home: Path) -> Iterator[Path]:
    """The sandbox home, for `control.fault`; every proxy cleared after the test."""
    yield sandbox_home
    for name in PROXIES:
        control.fault(sandbox_home, name, latency_ms=0, kind="", down=False)


def run(
    settings: Settings,
    agent_id: str,
    providers: list[str],
    *,
    mode: Mode = Mode.BREAK_GLASS,
    **overrides: Any,
) -> ContainmentReport:
    runtime = Runtime.open(settings.model_copy(update=overrides), providers=providers)
    try:
        return pipeline.contain(runtime, Request(agent_id, "chaos: issue 17", "test", mode=mode))
    finally:
        runtime.close()


def rows(report: ContainmentReport, provider: str) -> dict[str, tuple[VerdictStatus, str]]:
    return {
        c.credential.key: (c.verdict.status, c.verdict.evidence)
        for c in report.credentials
        if c.credential.provider == provider
    }


def rendered(report: ContainmentReport) -> str:
    console = Console(record=True, width=200)
    render_containment(console, report)
    return console.export_text()


@pytest.mark.parametrize("mode", ["--break-glass", "--quiet"])  # --quiet: the Prefect flow
def test_a_provider_that_is_down_lists_what_the_inventory_declares_unknown(
    sandbox_home: Path, seed_agent: SeedAgent, faults: Path, mode: str
) -> None:
    agent_id = seed_agent(
        "down", only=("aws", "anthropic"), aws={"users": (("runtime", 2),), "role": False}
    )
    control.fault(faults, "aws", down=True)
    done = run_cli(
        sandbox_home,
        "contain",
        agent_id,
        "--reason",
        "chaos: aws down",
        mode,
        "--json",
        KILLSWITCH_PROVIDERS='["aws", "anthropic"]',
        KILLSWITCH_ACTION_DEADLINE_S="1",
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    assert report["mode"] == ("break-glass" if mode == "--break-glass" else "flow")
    aws = [c for c in report["credentials"] if c["provider"] == "aws"]
    # The two keys the inventory declares: named, each unknown with the provider's failure.
    assert len(aws) == 2, report["credentials"]
    assert {c["kind"] for c in aws} == {"aws.access-key"}
    for credential in aws:
        assert credential["verdict"] == "unknown"
        # Refused connections are retried as transient until the 1 s deadline; under load
        # the deadline may pass first, and the provider is then named silent. Either says why.
        assert any(
            f"discovery failed: {why}" in credential["evidence"]
            for why in ("transient", "provider-silent")
        ), credential["evidence"]
        assert credential["actions"] == []
    assert report["summary"]["unknown"] == 2
    assert any(e.startswith("aws: discovery failed") for e in report["errors"])
    anthropic = [c for c in report["credentials"] if c["provider"] == "anthropic"]
    assert anthropic and {c["verdict"] for c in anthropic} == {"dead"}


def test_a_failed_vault_discovery_lists_what_the_last_discovery_found(
    settings: Settings, seed_agent: SeedAgent, faults: Path
) -> None:
    agent_id = seed_agent("vt", only=("vault",), vault={"tokens": 1, "certificates": 1})
    shown = run(settings, agent_id, ["vault"], mode=Mode.DRY_RUN)
    found = {c.key for c in shown.plan.credentials}
    assert len(found) == 6  # userpass, two secret-ids, two tokens, one lease
    # Vault answers every call with its rate-limit error: retried to the deadline, then failed.
    control.fault(faults, "vault", kind="throttle", count=100_000, retry_after_s=0.2)
    report = run(settings, agent_id, ["vault"], action_deadline_s=1.5)
    vault = rows(report, "vault")
    assert set(vault) == found
    for status, evidence in vault.values():
        assert status is VerdictStatus.UNKNOWN
        assert evidence.startswith("vault discovery failed: transient")
    assert report.count(VerdictStatus.UNKNOWN) == len(found)
    assert not report.ok
    assert f"{len(found)} unknown" in rendered(report)


def test_with_nothing_known_the_report_still_says_the_provider_was_not_searched(
    settings: Settings, seed_agent: SeedAgent, faults: Path
) -> None:
    agent_id = seed_agent("blind", only=("anthropic",))
    control.fault(faults, "vault", down=True)
    report = run(settings, agent_id, ["vault", "anthropic"], action_deadline_s=1.0)
    [row] = [c for c in report.credentials if c.credential.provider == "vault"]
    assert row.credential.kind == "vault.*"
    assert row.verdict.status is VerdictStatus.UNKNOWN
    assert "nothing is known" in row.verdict.evidence
    assert report.count(VerdictStatus.UNKNOWN) == 1
    assert {v for v, _ in rows(report, "anthropic").values()} == {VerdictStatus.DEAD}
    assert not report.ok
    text = rendered(report)
    assert "NOT PROVEN" in text and "1 unknown" in text


def test_a_silent_provider_is_named_and_holds_no_phase_past_the_deadline(
    settings: Settings, seed_agent: SeedAgent, faults: Path
) -> None:
    agent_id = seed_agent("silent", only=("vault", "anthropic"), vault={"certificates": 1})
    shown = run(settings, agent_id, ["vault", "anthropic"], mode=Mode.DRY_RUN)
    known = {c.key for c in shown.plan.credentials if c.provider == "vault"}
    assert known
    control.fault(faults, "vault", kind="blackhole", count=100_000)
    started = time.monotonic()
    report = run(
        settings,
        agent_id,
        ["vault", "anthropic"],
        action_deadline_s=2.0,
        probe_deadline_s=5.0,
        secret_sources=("keyring",),  # the silent Vault is not asked for probe material here
    )
    elapsed = time.monotonic() - started
    # Vault's client waits 10 s for an answer: the run did not wait for it.
    assert elapsed < 9.0, elapsed
    vault = rows(report, "vault")
    assert set(vault) == known
    for status, evidence in vault.values():
        assert status is VerdictStatus.UNKNOWN
        assert "did not answer within 2s" in evidence
    assert any(e.startswith("vault: discovery failed: provider-silent") for e in report.errors)
    assert {v for v, _ in rows(report, "anthropic").values()} == {VerdictStatus.DEAD}


def test_a_silent_secret_store_holds_no_phase_past_the_deadline(
    settings: Settings, seed_agent: SeedAgent, faults: Path
) -> None:
    agent_id = seed_agent("mute", only=("anthropic",))
    control.fault(faults, "vault", kind="blackhole", count=100_000)
    started = time.monotonic()
    report = run(
        settings,
        agent_id,
        ["anthropic"],
        action_deadline_s=2.0,
        probe_deadline_s=5.0,
        secret_sources=("vault", "keyring"),  # Vault KV first: it does not answer
    )
    elapsed = time.monotonic() - started
    assert elapsed < 8.0, elapsed
    anthropic = rows(report, "anthropic")
    assert anthropic
    for status, evidence in anthropic.values():
        assert status is VerdictStatus.UNKNOWN
        assert "probe material not read within 2s" in evidence
    assert not report.ok


def test_an_html_503_from_aws_is_transient_in_a_dry_run_and_a_containment(
    sandbox_home: Path, settings: Settings, seed_agent: SeedAgent, faults: Path
) -> None:
    agent_id = seed_agent("html", only=("aws",), aws={"users": (("runtime", 1),), "role": False})
    control.fault(faults, "aws", kind="error-html", count=3)
    dry = run_cli(
        sandbox_home,
        "contain",
        agent_id,
        "--reason",
        "chaos: html 503",
        "--dry-run",
        "--json",
        KILLSWITCH_PROVIDERS='["aws"]',
    )
    assert "Traceback" not in dry.stderr
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)["plan"]
    assert plan["errors"] == [] and len(plan["credentials"]) == 1  # its one key
    control.fault(faults, "aws", kind="error-html", count=4)
    report = run(settings, agent_id, ["aws"])
    assert report.ok, report.errors
    results = [r for c in report.credentials for r in c.actions] + list(report.grants_detached)
    assert results and all(r.outcome is not Outcome.FAILED for r in results)


class _HtmlEverywhere(http.server.BaseHTTPRequestHandler):
    """A proxy's captive page: 200 with HTML, whatever was asked."""

    def _page(self) -> None:
        body = b"<!DOCTYPE html><html><body>Please log in to the proxy</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _page

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def html_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HtmlEverywhere)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_an_unparseable_body_is_transient_for_http_revokers(
    settings: Settings, html_server: str
) -> None:
    revoker = AnthropicRevoker(
        settings.anthropic.model_copy(update={"base_url": html_server, "timeout_s": 2.0})
    )
    try:
        credential = Credential("anthropic", "anthropic.api-key", "apikey_x", "p", "a")
        with pytest.raises(TransientError, match="unparseable response body"):
            revoker.read_back(credential)
    finally:
        revoker.close()


@contextmanager
def _closed_port() -> Iterator[int]:
    """A port bound but never listening: connections are refused, and no other process
    (another xdist worker's sandbox) can take it while the test runs."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])


class _HealthOnly(http.server.BaseHTTPRequestHandler):
    """A Prefect API that answers its health check and nothing else (a server whose
    database is gone, a proxy in front of a dead one)."""

    def _answer(self) -> None:
        healthy = self.path.rstrip("/").endswith("/health")
        body = b"true" if healthy else b"<html>upstream unavailable</html>"
        self.send_response(200 if healthy else 503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def health_only_prefect() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HealthOnly)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("where", ["closed port", "health check only"])
def test_prefect_unreachable_is_exit_3_with_the_break_glass_hint(
    sandbox_home: Path, seed_agent: SeedAgent, health_only_prefect: str, where: str
) -> None:
    agent_id = seed_agent("noprefect", only=("anthropic",))
    with _closed_port() as port:
        closed = f"http://127.0.0.1:{port}/api"
        api = closed if where == "closed port" else health_only_prefect
        done = run_cli(
            sandbox_home,
            "contain",
            agent_id,
            "--reason",
            "chaos: prefect down",
            KILLSWITCH_PREFECT_API_URL=api,
            PREFECT_CLIENT_MAX_RETRIES="0",
            PREFECT_API_URL=api,
        )
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error[")]
    assert len(errors) == 1 and "orchestrator-unreachable" in errors[0]
    assert "--break-glass" in done.stderr
    if where == "closed port":
        # Refused before anything was planned or probed: no plan for `audit unfinished`, no
        # baseline probe cut short at exit.
        shown = run_cli(sandbox_home, "audit", "show", "--agent", agent_id, "--json")
        assert not [e for e in json.loads(shown.stdout) if e["action"] == "plan"], shown.stdout


def test_restore_after_a_containment_killed_mid_way_reverses_every_change(
    sandbox_home: Path, settings: Settings, seed_agent: SeedAgent
) -> None:
    agent_id = seed_agent("killed", only=("aws", "gcp", "azure", "anthropic"))
    Runtime.open(settings, providers=[]).close()  # the ledger exists before the run writes
    ledger = sqlite3.connect(settings.ledger_file)
    [start] = ledger.execute("SELECT COALESCE(MAX(seq), 0) FROM entries").fetchone()
    contain = subprocess.Popen(
        [KILLSWITCH, "contain", agent_id, "--reason", "chaos: kill -9", "--break-glass", "-q"],
        env=cli_env(sandbox_home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and contain.poll() is None:
            [acted] = ledger.execute(
                "SELECT COUNT(*) FROM entries WHERE seq > ? AND agent = ? "
                "AND action NOT IN ('plan', 'contain', 'probe', 'baseline')",
                (start, agent_id),
            ).fetchone()
            if acted:
                break
            time.sleep(0.005)
        assert contain.poll() is None, "the containment ended before its first action was seen"
        contain.send_signal(signal.SIGKILL)  # its other actions are under way right now
        contain.wait(timeout=10)
    finally:
        if contain.poll() is None:
            contain.kill()
        ledger.close()
    restored = run_cli(
        sandbox_home, "restore", agent_id, "--reason", "false positive", "--break-glass", "--json"
    )
    assert "Traceback" not in restored.stderr
    report = json.loads(restored.stdout)
    assert restored.returncode == 0, report
    assert report["ok"] and report["checks"]
    assert all(check["verdict"] == "alive" for check in report["checks"]), report["checks"]
    verify = run_cli(sandbox_home, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
