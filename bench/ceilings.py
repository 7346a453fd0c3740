"""Each stand-in's own capacity, measured alone: requests per second it serves directly
(no proxy, no kill switch) with 16 concurrent clients. A benchmark must not mistake the
sandbox's ceiling (moto serves a few hundred requests a second here) for ours.

`replay`: the same number of calls per stand-in as a run made, served all at once — the
sandbox's ceiling for that mix on this machine. Measured alone, each stand-in has the machine
to itself; in a run, moto, the SaaS, GCP and Azure stand-ins and the fault proxy share one
Python process (one interpreter lock), and every stand-in shares the cores with the client."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from google.api_core.exceptions import NotFound

from bench.harness import Bench
from killswitch.sandbox.aws import fleet
from killswitch.sandbox.gcp import fleet as gcp_fleet
from killswitch.sandbox.gcp.fleet import Gcp
from killswitch.sandbox.http import mint


def _rate(call: Callable[[], object], seconds: float = 2.0, workers: int = 16) -> float:
    stop = time.monotonic() + seconds
    done = 0
    lock = threading.Lock()

    def loop() -> None:
        nonlocal done
        while time.monotonic() < stop:
            call()
            with lock:
                done += 1

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in range(workers):
            pool.submit(loop)
    return done / (time.monotonic() - started)


def _azure(bench: Bench) -> tuple[httpx.Client, str]:
    """A client of the Azure stand-in, direct, with an ARM token of the kill switch's own
    identity, and the path of one role-assignment listing (what discovery asks)."""
    azure = bench.status["stand_ins"]["azure"]
    client = httpx.Client(base_url=azure["url"], verify=azure["ca_cert"])
    token = client.post(
        f"/{azure['tenant_id']}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": azure["client_id"],
            "client_secret": azure["client_secret"],
            "scope": f"{azure['arm_url']}/.default",
        },
    ).json()["access_token"]
    client.headers["Authorization"] = f"Bearer {token}"
    path = (
        f"/arm/subscriptions/{azure['subscription_id']}/providers/Microsoft.Authorization/"
        "roleAssignments?api-version=2022-04-01&$filter=assignedTo('ceiling')"
    )
    return client, path


def _calls(bench: Bench) -> tuple[dict[str, Callable[[], object]], Callable[[], None]]:
    """One representative call per stand-in (the ones `measure` times), and a closer."""
    gcp = Gcp(bench.status["stand_ins"]["gcp"]["grpc_target"]).clients()
    account = f"projects/{gcp_fleet.PROJECT}/serviceAccounts/ceiling@example.invalid"
    azure, assignments = _azure(bench)

    def gcp_call() -> None:
        try:
            gcp.iam.get_service_account(request={"name": account})
        except NotFound:
            pass  # a full round trip all the same

    iam = bench.admin.iam()
    vault = httpx.Client(
        base_url=bench.vault.addr, headers={"X-Vault-Token": bench.vault.root_token}
    )
    token = mint(bench.saas_url, "github", "ceiling")["secret"]
    saas = httpx.Client(base_url=bench.saas_url, headers={"Authorization": f"Bearer {token}"})

    def close() -> None:
        gcp.close()
        azure.close()
        vault.close()
        saas.close()

    calls: dict[str, Callable[[], object]] = {
        "aws": lambda: iam.get_user(UserName=fleet.ADMIN_USER),
        "vault": lambda: vault.get("/v1/auth/token/lookup-self"),
        "saas": lambda: saas.get("/github/user"),
        "gcp": gcp_call,
        "azure": lambda: azure.get(assignments),
    }
    return calls, close


def _again(call: Callable[[], object], tries: int = 3) -> object:
    """One call, made again on a dropped connection (an httpx client shared by 48 threads
    meets a closed keep-alive connection now and then: EBADF): a capacity figure, not a
    fault test."""
    for attempt in range(tries):
        try:
            return call()
        except httpx.TransportError:
            if attempt == tries - 1:
                raise
    return None


def replay(bench: Bench, made: dict[str, int], workers: int = 48) -> float:
    """Seconds the sandbox takes to serve `made` (calls per stand-in) all at once, each
    stand-in's calls spread over the run (interleaved), `workers` clients at a time."""
    calls, close = _calls(bench)
    todo = [name for name in calls for _ in range(made.get(name, 0))]
    random.Random(7).shuffle(todo)  # noqa: S311  (an interleaving, not a secret)
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda name: _again(calls[name]), todo))
        return time.monotonic() - started
    finally:
        close()


def measure(bench: Bench, seconds: float = 2.0) -> dict[str, float]:
    """Requests per second of moto (iam:GetUser), OpenBao (lookup-self), the SaaS
    stand-ins (GitHub's GET /user), the GCP stand-in (GetServiceAccount over gRPC) and the
    Azure stand-in (an ARM role-assignment listing over TLS), each alone."""
    calls, close = _calls(bench)
    try:
        return {name: _rate(call, seconds) for name, call in calls.items()}
    finally:
        close()
