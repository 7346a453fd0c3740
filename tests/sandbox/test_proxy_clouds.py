"""The fault proxy in front of Azure (TLS terminated with the sandbox CA) and GCP (gRPC over
HTTP/2 without TLS), through the real SDK clients: latency per call, the providers' own
throttling answers, resets, black holes and a provider down are what the kill switch sees,
classified as transient; clearing the fault restores service."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.api_core import exceptions as gexc

from killswitch.errors import TransientError
from killswitch.runtime import Runtime
from killswitch.sandbox.azure import fleet as azure_fleet
from killswitch.sandbox.gcp.state import PROJECT
from killswitch.settings import Settings
from revokers.azure.graph import tls
from revokers.azure.settings import AzureSettings
from revokers.gcp.client import Clients
from revokers.gcp.settings import GcpSettings
from tests.conftest import SeedAgent, run_cli

pytestmark = pytest.mark.integration
TARGETS = ("azure", "gcp")


@pytest.fixture
def control(sandbox: dict[str, Any], sandbox_home: Path) -> Iterator[str]:
    url = str(sandbox["stand_ins"]["proxy"]["control"])
    yield url
    for name in (*TARGETS, "aws", "vault", "saas"):  # whatever a test did, clear it
        httpx.post(f"{url}/{name}", json={"latency_ms": 0, "kind": "", "down": False})


def fault(home: Path, target: str, *args: str) -> dict[str, Any]:
    """`killswitch sandbox fault TARGET …` as a user runs it."""
    done = run_cli(home, "sandbox", "fault", target, *args, "--json")
    assert done.returncode == 0, done.stderr
    described: dict[str, Any] = json.loads(done.stdout)
    return described


def requests(control: str, target: str) -> int:
    return int(httpx.get(control).json()[target]["requests"])


def proxied_azure(sandbox: dict[str, Any]) -> azure_fleet.Azure:
    """The stand-in as the kill switch reaches it: every endpoint through the proxy."""
    info = sandbox["providers"]["azure"]
    return azure_fleet.Azure({**info, **info["proxied"]})


def azure_round(azure: azure_fleet.Azure) -> float:
    """A fresh azure-identity token (OpenID configuration, then the token endpoint) and one
    ARM role-assignment listing, timed."""
    started = time.monotonic()
    credential = azure.credential()
    arm = azure.arm(credential)
    try:
        credential.get_token("https://management.azure.com/.default")
        list(arm.role_assignments.list_for_scope(azure.subscription_scope))
    finally:
        arm.close()
        credential.close()
    return time.monotonic() - started


def gcp_clients(settings: Settings) -> Clients:
    return Clients.open(settings.section("gcp", GcpSettings))  # the profile's: proxied


def gcp_list(clients: Clients) -> float:
    started = time.monotonic()
    list(
        clients.iam.list_service_accounts(
            request={"name": f"projects/{PROJECT}"}, timeout=5, retry=None
        )
    )
    return time.monotonic() - started


def test_the_profile_reaches_azure_and_gcp_through_their_proxies(
    sandbox: dict[str, Any], settings: Settings, control: str
) -> None:
    described = httpx.get(control).json()
    assert described["azure"]["tls"] and described["azure"]["protocol"] == "http/1.1"
    assert described["gcp"]["protocol"] == "h2c"
    azure = settings.section("azure", AzureSettings)
    assert azure.arm_url == f"https://127.0.0.1:{described['azure']['port']}/arm"
    assert azure.authority == f"127.0.0.1:{described['azure']['port']}"
    gcp = settings.section("gcp", GcpSettings)
    assert gcp.grpc_target == f"127.0.0.1:{described['gcp']['port']}"
    assert described["azure"]["upstream_port"] != described["azure"]["port"]


def test_azure_latency_slows_every_call_and_calls_are_counted(
    sandbox: dict[str, Any], sandbox_home: Path, control: str
) -> None:
    azure = proxied_azure(sandbox)
    baseline = azure_round(azure)
    before = requests(control, "azure")
    fault(sandbox_home, "azure", "--latency-ms", "200")
    slowed = azure_round(azure)
    calls = requests(control, "azure") - before
    assert calls >= 3  # OpenID configuration, token, one listing at least
    # Each call waited 200 ms, one after the other.
    assert slowed >= 0.2 * calls, (slowed, calls)
    assert slowed - baseline >= 0.5, (baseline, slowed)


def test_gcp_latency_slows_every_grpc_call_and_calls_are_counted(
    sandbox: dict[str, Any], sandbox_home: Path, settings: Settings, control: str
) -> None:
    clients = gcp_clients(settings)
    try:
        assert gcp_list(clients) < 5  # the channel is connected from here on
        before = requests(control, "gcp")
        fault(sandbox_home, "gcp", "--latency-ms", "200")
        slowed = [gcp_list(clients) for _ in range(3)]
        assert requests(control, "gcp") - before >= 3
        # Per call, on the one HTTP/2 connection the channel keeps: not once per connection.
        assert all(s >= 0.2 for s in slowed), slowed
        fault(sandbox_home, "gcp", "--latency-ms", "0")
        assert gcp_list(clients) < 0.2
    finally:
        clients.close()


def discover(settings: Settings, provider: str, agent_id: str) -> int:
    """The revoker's own discovery in a fresh runtime (a new run): credentials found."""
    runtime = Runtime.open(settings, providers=[provider])
    try:
        agent = runtime.inventory.get_agent(agent_id)
        assert agent is not None
        return len(runtime.revokers[provider].discover(agent, []).credentials)
    finally:
        runtime.close()


@pytest.mark.parametrize("provider", TARGETS)
@pytest.mark.parametrize("broken", [("--kind", "reset", "--count", "1000"), ("--down",)])
def test_a_reset_or_a_provider_down_is_transient_and_clearing_it_restores_service(
    settings: Settings,
    sandbox_home: Path,
    seed_agent: SeedAgent,
    control: str,
    provider: str,
    broken: tuple[str, ...],
) -> None:
    agent_id = seed_agent("px", only=("aws", provider))
    found = discover(settings, provider, agent_id)
    assert found >= 2
    fault(sandbox_home, provider, *broken)
    with pytest.raises(TransientError):
        discover(settings, provider, agent_id)
    fault(sandbox_home, provider, "--kind", "", "--up")
    assert discover(settings, provider, agent_id) == found


def test_azure_throttling_is_arms_own_429_with_retry_after(
    sandbox: dict[str, Any], sandbox_home: Path, control: str
) -> None:
    azure = proxied_azure(sandbox)
    fault(sandbox_home, "azure", "--kind", "throttle", "--count", "1")
    answered = httpx.get(
        f"{azure.info['arm_url']}/subscriptions/x", verify=tls(str(azure.info["ca_cert"]))
    )
    assert answered.status_code == 429
    assert int(answered.headers["retry-after"]) >= 1
    assert answered.json()["error"]["code"] == "TooManyRequests"


def test_gcp_throttling_is_resource_exhausted_and_an_injected_503_unavailable(
    sandbox_home: Path, settings: Settings, control: str
) -> None:
    clients = gcp_clients(settings)
    try:
        fault(sandbox_home, "gcp", "--kind", "throttle", "--count", "1")
        with pytest.raises(gexc.ResourceExhausted):
            gcp_list(clients)
        fault(sandbox_home, "gcp", "--kind", "error", "--count", "1")
        with pytest.raises(gexc.ServiceUnavailable):
            gcp_list(clients)
        gcp_list(clients)  # the same channel goes on
    finally:
        clients.close()


def test_a_gcp_black_hole_is_bounded_by_the_call_deadline(
    sandbox_home: Path, settings: Settings, control: str
) -> None:
    clients = gcp_clients(settings)
    try:
        gcp_list(clients)
        fault(sandbox_home, "gcp", "--kind", "blackhole", "--count", "1")
        started = time.monotonic()
        with pytest.raises(gexc.DeadlineExceeded):
            clients.iam.list_service_accounts(
                request={"name": f"projects/{PROJECT}"}, timeout=1, retry=None
            )
        assert time.monotonic() - started < 5
        gcp_list(clients)  # only the swallowed call was lost
    finally:
        clients.close()


def test_contain_with_50ms_on_every_proxy_still_proves_everything_dead(
    sandbox_home: Path, seed_agent: SeedAgent, control: str
) -> None:
    agent_id = seed_agent("px")
    described = fault(sandbox_home, "*", "--latency-ms", "50")
    assert set(TARGETS) <= set(described)
    assert all(p["latency_ms"] == 50 for p in described.values())
    before = {name: requests(control, name) for name in TARGETS}
    done = run_cli(
        sandbox_home, "contain", agent_id, "--reason", "test: latency", "--json", "--break-glass"
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"], report["errors"]
    verdicts = {(c["provider"], c["verdict"]) for c in report["credentials"]}
    assert {"azure", "gcp"} <= {p for p, _ in verdicts}
    assert {v for _, v in verdicts} == {"dead"}
    # The kill switch's Azure and GCP calls went through the proxies.
    assert all(requests(control, name) > before[name] for name in TARGETS)
