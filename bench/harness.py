"""What the benchmarks share: a sandbox of their own, agents of K credentials, the proxies.

Seeding goes straight to the stand-ins (not through the fault proxies), so only the
containment itself pays the injected latency. GitHub's simulated revocation delay is set to
zero: it is the provider's, not ours, and would hide everything else.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from killswitch.inventory import Inventory
from killswitch.models import CredentialRef
from killswitch.sandbox import control, fleet, github, seeding
from killswitch.sandbox.aws import fleet as aws_fleet
from killswitch.sandbox.http import mint
from killswitch.sandbox.plugin import AgentSpec
from killswitch.sandbox.state import Paths
from killswitch.sandbox.vault import fleet as vault_fleet
from killswitch.secrets import MaterialStore
from killswitch.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SAAS_SPLIT = (
    ("slack", "token", {}),
    ("github", "token", {}),
    ("openai", "api_key", {}),
    ("anthropic", "api_key", {}),
)


def pin_cores(status: dict[str, Any]) -> dict[str, list[int]] | None:
    """Keep the stand-ins off the kill switch's core: the sandbox daemon (moto, the SaaS,
    GCP and Azure stand-ins, the fault proxy) and OpenBao on the last core, this process
    (and the CLI processes it starts, which inherit it) and the Prefect server on the rest.
    On two cores that is one each: a run and the bound it is compared with no longer fight
    for one core. `KILLSWITCH_BENCH_PIN=0` leaves scheduling to the kernel."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or os.environ.get("KILLSWITCH_BENCH_PIN", "1") == "0":
        return None
    stand_ins, ours = [cpus[-1]], cpus[:-1]
    processes = status.get("processes", {})
    for name in ("stand-ins", "openbao"):
        pid = processes.get(name, {}).get("pid")
        if pid:
            for task in _threads(int(pid)):
                _pin(task, stand_ins)
    prefect = processes.get("prefect", {}).get("pid")
    if prefect:
        for task in _threads(int(prefect)):
            _pin(task, ours)
    os.sched_setaffinity(0, ours)
    return {"stand_ins": stand_ins, "killswitch": ours}


def _threads(pid: int) -> list[int]:
    """Every thread of `pid` and of its children (affinity is per thread on Linux)."""
    found = []
    for child in [pid, *_children(pid)]:
        try:
            found += [int(t) for t in os.listdir(f"/proc/{child}/task")]
        except OSError:
            continue
    return found


def _children(pid: int) -> list[int]:
    try:
        direct = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(c) for c in direct] + [g for c in direct for g in _children(int(c))]


def _pin(task: int, cores: list[int]) -> None:
    try:
        os.sched_setaffinity(task, cores)
    except OSError:
        pass


def machine() -> str:
    cpus = os.cpu_count() or 0
    pinned = sorted(os.sched_getaffinity(0))
    mine = f" (this process on core {','.join(map(str, pinned))})" if len(pinned) < cpus else ""
    return f"{platform.machine()}, {cpus} cores{mine}, Python {platform.python_version()}"


@dataclass
class Bench:
    """A running sandbox for benchmarks, and what it takes to seed agents into it."""

    home: Path
    status: dict[str, Any]
    settings: Settings
    plugins: seeding.Seeding
    admin: aws_fleet.Admin
    vault: vault_fleet.Vault
    cores: dict[str, list[int]] | None = None

    @property
    def inventory(self) -> Inventory:
        return self.plugins.sandbox.inventory

    @property
    def store(self) -> MaterialStore:
        return self.plugins.sandbox.store

    @classmethod
    def start(cls, home: Path, *, pin: bool = True) -> Bench:
        """A sandbox of the bench's own; `pin`: the stand-ins on one core, the bench (and
        what it starts) on the others (`pin_cores`) — off where processes of the kill
        switch must spread over every core (workers of the scaled-out shape)."""
        os.environ["KILLSWITCH_HOME"] = str(home)
        status = control.up(home, prefect=True)
        settings = load_settings(profile=Paths.under(home).profile)
        stand_ins = status["stand_ins"]
        aws, bao = status["providers"]["aws"], stand_ins["openbao"]
        bench = cls(
            home=home,
            status=status,
            settings=settings,
            # Seeding goes direct (`attach` uses the stand-ins' own addresses).
            plugins=seeding.attach(stand_ins, status["providers"], Paths.under(home)),
            admin=aws_fleet.Admin(
                stand_ins["moto"]["url"], aws["access_key_id"], aws["secret_access_key"]
            ),
            vault=vault_fleet.Vault(bao["url"], bao["root_token"]),
        )
        github.set_delay(bench.saas_url, 0.0)
        bench.cores = pin_cores(status) if pin else None
        return bench

    @property
    def saas_url(self) -> str:
        return str(self.status["stand_ins"]["saas"]["url"])

    @property
    def proxy_control(self) -> str:
        return str(self.status["stand_ins"]["proxy"]["control"])

    def latency(self, ms: float) -> None:
        httpx.post(f"{self.proxy_control}/*", json={"latency_ms": ms}, timeout=10)

    def calls(self) -> dict[str, int]:
        described = httpx.get(self.proxy_control, timeout=10).json()
        return {name: int(p["requests"]) for name, p in described.items()}

    def reset_calls(self) -> None:
        httpx.post(f"{self.proxy_control}/counts/reset", timeout=10)

    def seed(self, k: int) -> tuple[str, int]:
        """A fresh agent holding about K credentials over every provider; (id, actual K)."""
        agent_id = f"bench-{k}-{uuid.uuid4().hex[:6]}"
        # Every provider holds some: GCP two service accounts with three keys; Azure a
        # service principal with two secrets (and application secrets as K grows).
        users = max(1, round(k * 0.12))
        tokens = max(1, round(k * 0.12))
        certificates = max(1, round(k * 0.04))
        application_secrets = round(k * 0.04)
        spec = AgentSpec(
            agent_id,
            "bench",
            "benchmark agent",
            options={
                "aws": {
                    "users": tuple((f"u{i}", 2) for i in range(users)),
                    "groups": ("agents-readonly",),
                },
                "vault": {"tokens": tokens, "certificates": certificates},
                "azure": {"application_secrets": application_secrets},
            },
            skip=frozenset(self.plugins.seeders) - {"aws", "vault", "gcp", "azure"},
        )
        seeded = fleet.seed_agent(self.plugins.sandbox, self.plugins.seeders, spec)
        held = sum(s.credentials for s in seeded.values())
        rest = max(len(SAAS_SPLIT), k - held)  # every SaaS provider holds one at least
        for i in range(rest):
            provider, field, extra = SAAS_SPLIT[i % len(SAAS_SPLIT)]
            minted = mint(self.saas_url, provider, agent_id, **extra)
            self.inventory.declare(agent_id, CredentialRef(provider, minted["kind"], minted["ref"]))
            self.store.add(
                minted["kind"], minted["ref"], {field: minted["secret"]}, agent_id=agent_id
            )
        return agent_id, held + rest

    def retire(self, agent_id: str) -> int:
        """Delete a measured agent's IAM users and role, straight at moto and untimed, so
        that every run scans an account of the same size: `iam:GetAccountAuthorizationDetails`
        is answered in time that grows with the account (~0.5 s more per containment at
        ~500 principals than at ~30, measured on 2026-12-07), and a long `make bench` would
        otherwise measure its later rows in an account its earlier rows filled. Returns how
        many principals went."""
        iam = self.admin.iam()
        gone = 0
        for user in _tagged(iam, "UserDetailList", agent_id):
            name = user["UserName"]
            for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
                iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
            for policy in user.get("AttachedManagedPolicies", []):
                iam.detach_user_policy(UserName=name, PolicyArn=policy["PolicyArn"])
            for policy in user.get("UserPolicyList", []):
                iam.delete_user_policy(UserName=name, PolicyName=policy["PolicyName"])
            for group in user.get("GroupList", []):
                iam.remove_user_from_group(UserName=name, GroupName=group)
            try:
                iam.delete_login_profile(UserName=name)
            except iam.exceptions.NoSuchEntityException:
                pass
            iam.delete_user(UserName=name)
            gone += 1
        for role in _tagged(iam, "RoleDetailList", agent_id):
            name = role["RoleName"]
            for policy in role.get("AttachedManagedPolicies", []):
                iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
            for policy in role.get("RolePolicyList", []):
                iam.delete_role_policy(RoleName=name, PolicyName=policy["PolicyName"])
            iam.delete_role(RoleName=name)
            gone += 1
        return gone

    def stop(self) -> None:
        control.down(self.home)


def _tagged(iam: Any, listed: str, agent_id: str) -> list[dict[str, Any]]:
    """The account's users or roles (`listed`: GAAD's list) tagged with the agent's id."""
    found = []
    pages = iam.get_paginator("get_account_authorization_details").paginate(
        Filter=["User", "Role"], PaginationConfig={"PageSize": 1000}
    )
    for page in pages:
        for detail in page.get(listed, []):
            tags = {t["Key"]: t["Value"] for t in detail.get("Tags", [])}
            if tags.get(aws_fleet.TAG_KEY) == agent_id:
                found.append(detail)
    return found


def summary(samples: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"median": statistics.median(ordered), "min": ordered[0], "max": ordered[-1]}


def cli(home: Path, *args: str, timeout: float = 600) -> tuple[float, dict[str, Any]]:
    """Run the real `killswitch` command; (wall seconds, its JSON)."""
    exe = str(Path(sys.executable).parent / "killswitch")
    env = {**os.environ, "KILLSWITCH_HOME": str(home), "KILLSWITCH_ACTOR": "bench"}
    started = time.monotonic()
    done = subprocess.run(
        [exe, *args, "--json", "-q"],
        env=env,
        capture_output=True,  # noqa: S603
        text=True,
        timeout=timeout,
        check=False,
    )
    elapsed = time.monotonic() - started
    return elapsed, json.loads(done.stdout)


def write(name: str, data: Any) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
