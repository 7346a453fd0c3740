"""Each stand-in's own capacity, measured alone: requests per second it serves directly
(no proxy, no kill switch) with 16 concurrent clients. A benchmark must not mistake the
sandbox's ceiling (moto serves a few hundred requests a second here) for ours."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.harness import Bench
from killswitch.sandbox.aws import fleet
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


def measure(bench: Bench, seconds: float = 2.0) -> dict[str, float]:
    """Requests per second of moto (iam:GetUser), OpenBao (lookup-self) and the SaaS
    stand-ins (GitHub's GET /user)."""
    iam = bench.admin.iam()
    vault = httpx.Client(
        base_url=bench.vault.addr, headers={"X-Vault-Token": bench.vault.root_token}
    )
    token = mint(bench.saas_url, "github", "ceiling")["secret"]
    saas = httpx.Client(base_url=bench.saas_url, headers={"Authorization": f"Bearer {token}"})
    try:
        return {
            "aws": _rate(lambda: iam.get_user(UserName=fleet.ADMIN_USER), seconds),
            "vault": _rate(lambda: vault.get("/v1/auth/token/lookup-self"), seconds),
            "saas": _rate(lambda: saas.get("/github/user"), seconds),
        }
    finally:
        vault.close()
        saas.close()
