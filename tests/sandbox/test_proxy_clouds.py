"""Azure behind the TLS fault proxy and GCP's gRPC behind the HTTP/2 relay: every fault kind
through the real SDK clients, containment through faults, silence bounded by the deadline;
and the relay itself under load (streams, windows, connections, faults flipped)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import httpx
import pytest
from azure.core import exceptions as aexc
from azure.identity import ClientSecretCredential
from azure.mgmt.authorization import AuthorizationManagementClient
from google.api_core import exceptions as gexc
from google.cloud import iam_admin_v1, resourcemanager_v3
from google.cloud.iam_admin_v1.services.iam.transports.grpc import IAMGrpcTransport
from google.cloud.resourcemanager_v3.services.projects.transports.grpc import (
    ProjectsGrpcTransport,
)
from google.iam.v1 import policy_pb2

from killswitch import pipeline
from killswitch.errors import TransientError
from killswitch.models import ContainmentReport, VerdictStatus
from killswitch.request import Mode, Request
from killswitch.runtime import Runtime
from killswitch.sandbox import control
from killswitch.sandbox.gcp.services import IamService, ProjectsService
from killswitch.sandbox.gcp.state import PROJECT, GcpState
from killswitch.sandbox.proxy import Proxies
from killswitch.settings import Settings
from revokers.azure.errors import translate as azure_translate
from revokers.azure.settings import AzureSettings
from revokers.gcp.errors import translate as gcp_translate
from revokers.gcp.settings import GcpSettings
from tests.conftest import SeedAgent, run_cli

CLOUDS = ("azure", "gcp")
EMAIL_DOMAIN = f"{PROJECT}.iam.gserviceaccount.com"


def established_to(port: int) -> int:
    """TCP connections to a loopback `port` that are established now (Linux /proc)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote, state = fields[2], fields[3]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


class Relay:
    """The gRPC stand-in in this process (its MAX_CONCURRENT_STREAMS small on purpose) with
    the `gcp` relay in front of it."""

    def __init__(self, max_streams: int) -> None:
        state = GcpState(token_uri="http://127.0.0.1:9/token")
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=16),
            options=[("grpc.max_concurrent_streams", max_streams)],
        )
        self.server.add_generic_rpc_handlers(
            (IamService(state).handlers(), ProjectsService(state).handlers())
        )
        self.upstream_port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.proxies = Proxies()
        self.port = self.proxies.add("gcp", self.upstream_port, protocol="h2")

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(f"127.0.0.1:{self.port}")

    def close(self) -> None:
        self.proxies.stop()
        self.server.stop(grace=None)


@pytest.fixture
def relay() -> Iterator[Relay]:
    started = Relay(max_streams=4)
    yield started
    started.close()


def iam(channel: grpc.Channel) -> iam_admin_v1.IAMClient:
    return iam_admin_v1.IAMClient(transport=IAMGrpcTransport(channel=channel))


def test_relay_survives_200_calls_with_churn_and_faults_flipped_mid_way(relay: Relay) -> None:
    """Many concurrent streams over a stand-in that allows 4 at once, channels opened and
    closed, faults switched while calls are in flight: every call ends, none stalls."""
    channels = [relay.channel() for _ in range(4)]
    lock = threading.Lock()
    outcomes: dict[str, int] = {}
    done = 0

    closed: set[int] = set()
    messages: list[str] = []

    def one(i: int) -> None:
        nonlocal done
        with lock:
            channel = channels[i % len(channels)]
        client = iam(channel)
        account = f"stress-{i}"
        started = time.monotonic()
        try:
            client.create_service_account(
                request={"name": f"projects/{PROJECT}", "account_id": account},
                timeout=8,
                retry=None,
            )
            client.get_service_account(
                request={"name": f"projects/-/serviceAccounts/{account}@{EMAIL_DOMAIN}"},
                timeout=8,
                retry=None,
            )
            what = "ok"
        except gexc.GoogleAPICallError as exc:
            what = type(exc).__name__
            messages.append(f"{what}: {exc.message}")
            if isinstance(exc, gexc.Cancelled) and id(channel) in closed:
                what = "closed-channel"  # the churn below closed its channel under it
        except ValueError:  # invoked on a channel the churn had just closed
            what = "closed-channel"
        assert time.monotonic() - started < 8.5  # never a stall to the deadline
        with lock:
            outcomes[what] = outcomes.get(what, 0) + 1
            done += 1
            if done % 25 == 0:  # churn: a connection closed, another opened
                old = channels[done % len(channels)]
                channels[done % len(channels)] = relay.channel()
                closed.add(id(old))
                old.close()

    started = time.monotonic()
    with futures.ThreadPoolExecutor(max_workers=32) as pool:
        submitted = [pool.submit(one, i) for i in range(200)]
        for at, change in (
            (50, {"kind": "throttle", "count": 10}),
            (90, {"latency_ms": 20, "kind": "error-html", "count": 5}),
            (130, {"kind": "reset", "count": 2}),
            (160, {"latency_ms": 0, "kind": ""}),
        ):
            while done < at and time.monotonic() - started < 60:
                time.sleep(0.01)
            relay.proxies.set("gcp", **change)
        for future in submitted:
            future.result(timeout=60)
    elapsed = time.monotonic() - started
    assert sum(outcomes.values()) == 200
    # Only what the faults make: no DeadlineExceeded (a stall), no Unknown (a swallowed error).
    assert set(outcomes) <= {"ok", "ResourceExhausted", "ServiceUnavailable", "closed-channel"}
    # Each throttle met one call (unless its channel closed first); a reset drops a
    # connection with every call on it.
    assert 1 <= outcomes.get("ResourceExhausted", 0) <= 10, outcomes
    assert outcomes.get("ok", 0) >= 80, (outcomes, sorted(set(messages)))
    # A stream the stand-in refused (its 4-stream limit) was sent again, never failed.
    assert not [m for m in messages if "RST_STREAM" in m], sorted(set(messages))
    assert elapsed < 45, elapsed
    assert relay.proxies.describe()["gcp"]["requests"] >= 200
    # After the clients go, so do the relay's connections to the stand-in.
    for channel in channels:
        channel.close()
    deadline = time.monotonic() + 5
    while established_to(relay.upstream_port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert established_to(relay.upstream_port) == 0


def test_relay_windows_carry_bodies_larger_than_a_window_both_ways(relay: Relay) -> None:
    """A 300 kB policy written and read back (the default HTTP/2 window is 64 kB), many at
    once on one connection."""
    channel = relay.channel()
    projects = resourcemanager_v3.ProjectsClient(transport=ProjectsGrpcTransport(channel=channel))
    members = [f"user:someone-{i:05d}@example.com" for i in range(10_000)]
    policy = policy_pb2.Policy(
        version=1, bindings=[policy_pb2.Binding(role="roles/viewer", members=members)]
    )
    assert policy.ByteSize() > 300_000
    resource = f"projects/{PROJECT}"
    projects.set_iam_policy(request={"resource": resource, "policy": policy}, timeout=10)

    def read(_: int) -> int:
        got = projects.get_iam_policy(
            request={"resource": resource, "options": {"requested_policy_version": 1}},
            timeout=10,
            retry=None,
        )
        return len(got.bindings[0].members)

    with futures.ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(read, range(16))) == [len(members)] * 16
    channel.close()


@pytest.mark.parametrize(
    ("kind", "raised"),
    [
        ("throttle", gexc.ResourceExhausted),
        ("error", gexc.ServiceUnavailable),
        ("error-html", gexc.ServiceUnavailable),  # grpc: a non-gRPC HTTP 503 is UNAVAILABLE
        ("reset", gexc.ServiceUnavailable),
        ("blackhole", gexc.DeadlineExceeded),
    ],
)
def test_each_fault_is_the_grpc_status_a_client_meets_and_then_passes(
    relay: Relay, kind: str, raised: type[Exception]
) -> None:
    channel = relay.channel()
    client = iam(channel)

    def call() -> Any:
        return client.list_service_accounts(
            request={"name": f"projects/{PROJECT}"}, timeout=1.0, retry=None
        )

    call()
    relay.proxies.set("gcp", kind=kind, count=1)
    with pytest.raises(raised):
        list(call())
    assert isinstance(gcp_translate(raised("x"), doing="list"), TransientError)
    # The next calls go through: a reset connection is opened again, after grpc's reconnect
    # backoff (about a second, longer under load) — an UNAVAILABLE meanwhile is what a
    # client retries, as the revoker does.
    deadline = time.monotonic() + 10
    while True:
        try:
            list(call())
            break
        except gexc.ServiceUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    channel.close()


def test_a_relay_taken_down_drops_its_connections_and_refuses_new_ones(relay: Relay) -> None:
    channel = relay.channel()
    client = iam(channel)
    client.list_service_accounts(request={"name": f"projects/{PROJECT}"}, timeout=2)
    relay.proxies.set("gcp", down=True)
    with pytest.raises(gexc.ServiceUnavailable):
        client.list_service_accounts(request={"name": f"projects/{PROJECT}"}, timeout=2, retry=None)
    relay.proxies.set("gcp", down=False)
    deadline = time.monotonic() + 10
    while True:  # grpc reconnects after its backoff (about a second)
        try:
            client.list_service_accounts(
                request={"name": f"projects/{PROJECT}"}, timeout=2, retry=None
            )
            break
        except gexc.ServiceUnavailable:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    channel.close()


class Refusing:
    """A bare HTTP/2 gRPC stand-in: refuses its first `refusals` streams (RST_STREAM
    REFUSED_STREAM, as grpc's server does while its ended calls are not freed yet), or answers
    the first stream of its first connection with GOAWAY(last_stream_id=0); every other
    call ends OK with an empty message."""

    def __init__(self, refusals: int = 0, goaway: bool = False) -> None:
        self.refusals, self.goaway = refusals, goaway
        self.refused = self.goaways = self.answered = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                sock, _ = self.listener.accept()
                threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        refused: set[int] = set()
        with contextlib.suppress(OSError, h2.exceptions.H2Error), sock:
            while data := sock.recv(65536):
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        if self.goaway and not self.goaways:
                            self.goaways += 1
                            conn.close_connection(last_stream_id=0)
                            sock.sendall(conn.data_to_send())
                            while sock.recv(65536):  # until the relay closes (no RST)
                                pass
                            return
                        if self.refused < self.refusals:
                            self.refused += 1
                            refused.add(event.stream_id)
                            conn.reset_stream(event.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
                    elif (
                        isinstance(event, h2.events.StreamEnded) and event.stream_id not in refused
                    ):
                        self.answered += 1
                        conn.send_headers(
                            event.stream_id,
                            [(":status", "200"), ("content-type", "application/grpc")],
                        )
                        conn.send_data(event.stream_id, b"\0\0\0\0\0")  # one empty message
                        conn.send_headers(event.stream_id, [("grpc-status", "0")], end_stream=True)
                    elif isinstance(event, h2.events.DataReceived):  # none on a refused one
                        with contextlib.suppress(h2.exceptions.StreamClosedError):
                            size = event.flow_controlled_length
                            conn.acknowledge_received_data(size, event.stream_id)
                sock.sendall(conn.data_to_send())

    def call_through_relay(self) -> bytes:
        proxies = Proxies()
        try:
            port = proxies.add("gcp", self.port, protocol="h2")
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                answer: bytes = channel.unary_unary("/sandbox.Test/Call")(b"ping", timeout=5)
                return answer
        finally:
            proxies.stop()
            self.listener.close()


def test_a_stream_refused_more_often_than_at_once_is_replayed_until_accepted() -> None:
    """Eight refusals in a row (the stand-in's calls not freed yet): the relay pauses longer
    before each replay instead of spending its replays at once, and the call ends OK."""
    stand_in = Refusing(refusals=8)
    assert stand_in.call_through_relay() == b""
    assert (stand_in.refused, stand_in.answered) == (8, 1)


def test_a_stream_above_a_goaways_last_stream_id_is_replayed_on_a_new_connection() -> None:
    """GOAWAY(last_stream_id=0): the stream was not processed, so it is sent again on
    another connection, not failed UNAVAILABLE."""
    stand_in = Refusing(goaway=True)
    assert stand_in.call_through_relay() == b""
    assert (stand_in.goaways, stand_in.answered) == (1, 1)


# Against the session's sandbox: the daemon's proxies, the kill switch's own profile.


@pytest.fixture
def faults(sandbox: dict[str, Any], sandbox_home: Path) -> Iterator[Path]:
    """The sandbox home for `control.fault`; both clouds' proxies cleared after the test."""
    yield sandbox_home
    for name in CLOUDS:
        control.fault(sandbox_home, name, latency_ms=0, kind="", down=False)


def described(home: Path) -> dict[str, Any]:
    return control.fault(home, "*")


def contain(settings: Settings, agent_id: str, providers: list[str], **overrides: Any) -> Any:
    runtime = Runtime.open(settings.model_copy(update=overrides), providers=providers)
    try:
        return pipeline.contain(runtime, Request(agent_id, "chaos", "test", mode=Mode.BREAK_GLASS))
    finally:
        runtime.close()


def statuses(report: ContainmentReport, provider: str) -> set[VerdictStatus]:
    return {c.verdict.status for c in report.credentials if c.credential.provider == provider}


@pytest.mark.integration
def test_the_kill_switch_reaches_both_clouds_through_their_proxies(
    sandbox: dict[str, Any], settings: Settings, faults: Path
) -> None:
    azure, gcp = sandbox["stand_ins"]["azure"], sandbox["stand_ins"]["gcp"]
    assert settings.section("azure", AzureSettings).arm_url == azure["proxied_arm_url"]
    assert settings.section("gcp", GcpSettings).grpc_target == gcp["proxied_grpc_target"]
    shown = described(faults)
    assert shown["azure"]["protocol"] == "https"
    assert shown["gcp"]["protocol"] == "grpc (h2c)"
    # `sandbox fault *` (the CLI) changes and lists them with the others.
    listed = run_cli(faults, "sandbox", "fault", "*", "--latency-ms", "0", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {"azure", "gcp", "aws", "saas"} <= set(json.loads(listed.stdout))


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["throttle", "error", "error-html", "reset", "blackhole"])
def test_every_fault_reaches_arm_through_the_sdk_as_a_transient_error(
    sandbox: dict[str, Any], faults: Path, kind: str
) -> None:
    azure = sandbox["providers"]["azure"]
    credential = ClientSecretCredential(
        azure["tenant_id"],
        azure["client_id"],
        azure["client_secret"],
        authority=azure["proxied_authority"],
        disable_instance_discovery=True,
        connection_verify=azure["ca_cert"],
        retry_total=0,
    )
    arm = AuthorizationManagementClient(
        credential,
        azure["subscription_id"],
        base_url=azure["proxied_arm_url"],
        connection_verify=azure["ca_cert"],
        retry_total=0,
        read_timeout=1.0,
    )
    scope = f"/subscriptions/{azure['subscription_id']}"
    list(arm.role_assignments.list_for_scope(scope))  # the token is cached from here on
    before = described(faults)["azure"]["requests"]
    control.fault(faults, "azure", kind=kind, count=1)
    with pytest.raises(aexc.AzureError) as raised:
        list(arm.role_assignments.list_for_scope(scope))
    error = azure_translate(raised.value, doing="list")
    assert isinstance(error, TransientError), error
    if kind == "throttle":  # as ARM throttles: 429, Retry-After, its JSON error
        assert isinstance(raised.value, aexc.HttpResponseError)
        assert raised.value.status_code == 429
        assert error.provider_code == "TooManyRequests" and error.retry_after == 1.0
    assert list(arm.role_assignments.list_for_scope(scope)) is not None
    assert described(faults)["azure"]["requests"] >= before + 2
    arm.close()
    credential.close()


@pytest.mark.integration
def test_a_503_from_the_token_endpoint_is_retried_and_the_run_ends_dead(
    settings: Settings, seed_agent: SeedAgent, faults: Path
) -> None:
    """The kill switch's own identity meets a 503 where Entra's token endpoint should be:
    transient (retried), never our identity refused (a page, no retry)."""
    agent_id = seed_agent("az503", only=("azure",))
    control.fault(faults, "azure", kind="error", count=2)  # a fresh runtime: Entra first
    report = contain(settings, agent_id, ["azure"])
    assert report.ok, report.errors
    assert statuses(report, "azure") == {VerdictStatus.DEAD}
    assert described(faults)["azure"]["remaining"] == 0


@pytest.mark.integration
def test_containment_ends_dead_with_a_third_of_the_calls_faulted(
    settings: Settings, seed_agent: SeedAgent, faults: Path, sandbox: dict[str, Any]
) -> None:
    """Count one clean run's calls per cloud, then fault 30% of the next run's calls:
    Azure's connections reset, GCP's calls RESOURCE_EXHAUSTED; every credential dead."""
    control_url = str(sandbox["stand_ins"]["proxy"]["control"])
    clean = seed_agent("clean", only=CLOUDS)
    httpx.post(f"{control_url}/counts/reset").raise_for_status()
    assert contain(settings, clean, list(CLOUDS)).ok
    calls = {name: described(faults)[name]["requests"] for name in CLOUDS}
    assert all(calls.values()), calls
    agent_id = seed_agent("faulted", only=CLOUDS)
    control.fault(faults, "azure", kind="reset", count=round(calls["azure"] * 0.3))
    control.fault(faults, "gcp", kind="throttle", count=round(calls["gcp"] * 0.3))
    report = contain(settings, agent_id, list(CLOUDS))
    assert report.ok, report.errors
    for name in CLOUDS:
        assert statuses(report, name) == {VerdictStatus.DEAD}
        assert described(faults)[name]["remaining"] == 0  # every fault was met


@pytest.mark.integration
@pytest.mark.parametrize("provider", CLOUDS)
def test_a_black_holed_cloud_is_named_silent_inside_the_deadline(
    settings: Settings, seed_agent: SeedAgent, faults: Path, provider: str
) -> None:
    agent_id = seed_agent("mute", only=(provider,))
    control.fault(faults, provider, kind="blackhole", count=100_000)
    started = time.monotonic()
    report = contain(
        settings,
        agent_id,
        [provider],
        action_deadline_s=2.0,
        probe_deadline_s=4.0,
        secret_sources=("keyring",),
    )
    elapsed = time.monotonic() - started
    assert elapsed < 9.0, elapsed  # their clients wait 10 s for an answer: the run did not
    assert not report.ok
    assert any(
        e.startswith(f"{provider}: discovery failed: provider-silent") for e in report.errors
    )
