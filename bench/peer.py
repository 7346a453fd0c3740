"""Beside a peer: Cloud Custodian and the kill switch contain the same agent's AWS users.

One sandbox, one moto, one fault proxy (L ms on every AWS call, both tools go through it).
Each run contains a fresh agent of the same shape — USERS IAM users × KEYS access keys, each
user in GROUPS, no role (c7n's `iam-user` resource does not reach roles) — with one of:

  c7n          `custodian run` (a subprocess, in its own venv `.venv-c7n/`: every c7n release
               pins boto3 exactly, below ours) of an `iam-user` policy filtered on the
               agent's tag, actions `remove-keys` (disable: true) and `delete` with
               `options: [groups]` (every group membership off, the user kept)
  break-glass  `pipeline.contain` in process, Mode.BREAK_GLASS, providers limited to AWS
  flow-warm    the Prefect `contain` flow in an already-running process, AWS only

Then it checks what each can show afterwards: the kill switch's report (every key `dead`, with
the probe's evidence); for c7n, the keys' status read back (Inactive) and the groups gone —
c7n does not probe — and one call signed with a disabled key's own material, which moto
still accepts (moto's known gap: it does not reject Inactive keys; real AWS answers
InvalidClientTokenId), so "disabled" is all c7n's run can show on this sandbox.

    python -m bench.peer [--ls 0,50] [--runs 3]

Writes bench/results/peer.json; `python -m bench.report` puts its table in bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.harness import ROOT, Bench, machine, summary, write
from killswitch import pipeline, service
from killswitch.models import VerdictStatus
from killswitch.request import Mode, Request
from killswitch.runtime import Runtime
from killswitch.sandbox import fleet
from killswitch.sandbox.aws import fleet as aws_fleet
from killswitch.sandbox.plugin import AgentSpec
from killswitch.sandbox.state import Paths
from killswitch.secrets import KeyringFile

USERS, KEYS = 4, 2
GROUPS = ("agents-readonly", "agents-data")
TOOLS = ("c7n", "break_glass", "flow_warm")
C7N_VENV = ROOT / ".venv-c7n"
CONSTRAINTS = ROOT / "constraints.txt"


def c7n_pin() -> str:
    """The c7n release the benchmark uses: its `c7n==` line in constraints.txt."""
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip().lower().startswith("c7n=="):
            return line.strip()
    raise SystemExit("constraints.txt has no c7n== pin")


def ensure_c7n() -> Path:
    """`custodian` from a venv of its own (c7n pins boto3 exactly, below the kill switch's
    boto3; installing it beside ours would downgrade botocore). Idempotent."""
    pin = c7n_pin()
    stamp = C7N_VENV / f".installed-{pin}"
    exe = C7N_VENV / "bin" / "custodian"
    if not stamp.exists():
        if not (C7N_VENV / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(C7N_VENV)], check=True)
        subprocess.run(
            [str(C7N_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
            + ["--disable-pip-version-check", pin],
            check=True,
        )
        stamp.touch()
    return exe


def seed(bench: Bench) -> tuple[str, list[tuple[str, str]]]:
    """A fresh AWS-only agent; (its id, its (user, access key id) pairs)."""
    agent_id = f"peer-{uuid.uuid4().hex[:6]}"
    spec = AgentSpec(
        agent_id,
        "bench",
        "peer benchmark agent",
        options={
            "aws": {
                "users": tuple((f"u{i}", KEYS) for i in range(USERS)),
                "groups": GROUPS,
                "role": False,
            }
        },
        skip=frozenset(bench.plugins.seeders) - {"aws"},
    )
    fleet.seed_agent(bench.plugins.sandbox, bench.plugins.seeders, spec)
    return agent_id, keys_of(bench, agent_id)


def keys_of(bench: Bench, agent_id: str) -> list[tuple[str, str]]:
    """IAM ListAccessKeys per agent user, straight to moto (not through the fault proxy)."""
    iam = bench.admin.iam()
    pairs = []
    for i in range(USERS):
        user = f"{agent_id}-u{i}"
        for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
            pairs.append((user, key["AccessKeyId"]))
    return pairs


def policy(agent_id: str) -> dict[str, Any]:
    """The c7n policy: the agent's users by tag; keys disabled, every group membership off."""
    # `delete` with options only deletes those parts (c7n's UserDelete: `groups` lists the
    # user's groups and removes each membership), never the user; `set-groups` would need
    # every group named, one action each.
    actions: list[dict[str, Any]] = [
        {"type": "remove-keys", "disable": True},
        {"type": "delete", "options": ["groups"]},
    ]
    return {
        "policies": [
            {
                "name": f"contain-{agent_id}",
                "resource": "iam-user",
                "filters": [{f"tag:{aws_fleet.TAG_KEY}": agent_id}],
                "actions": actions,
            }
        ]
    }


def run_c7n(bench: Bench, exe: Path, agent_id: str) -> dict[str, Any]:
    """`custodian run` against moto through the AWS fault proxy, with the sandbox admin's keys."""
    work = Path(tempfile.mkdtemp(prefix="peer-c7n-"))
    try:
        policy_file = work / "policy.yml"  # JSON is YAML
        policy_file.write_text(json.dumps(policy(agent_id)))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(work),
            "AWS_ENDPOINT_URL": str(bench.status["stand_ins"]["moto"]["proxied"]),
            "AWS_ACCESS_KEY_ID": bench.admin.access_key_id,
            "AWS_SECRET_ACCESS_KEY": bench.admin.secret_access_key,
            "AWS_DEFAULT_REGION": aws_fleet.REGION,
            "AWS_CONFIG_FILE": str(work / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(work / "none"),
        }
        args = [str(exe), "run", "--region", aws_fleet.REGION, "--cache-period", "0"]
        args += ["-s", str(work / "out"), str(policy_file)]
        started = time.monotonic()
        done = subprocess.run(
            args, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        wall = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(f"custodian run failed ({done.returncode}):\n{done.stderr[-2000:]}")
        out = work / "out" / f"contain-{agent_id}"
        metadata = json.loads((out / "metadata.json").read_text())
        resources = json.loads((out / "resources.json").read_text())
        return {
            "wall_s": wall,
            "execution_s": float(metadata.get("execution", {}).get("duration", 0.0)),
            "users_matched": len(resources),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def c7n_shows(bench: Bench, agent_id: str, keys: list[tuple[str, str]]) -> dict[str, Any]:
    """What can be read back after c7n's run: key statuses and group memberships. Then one
    call signed with a disabled key's own material (from the sandbox keyring), which shows
    whether the provider rejects it — on moto it does not."""
    iam = bench.admin.iam()
    statuses: dict[str, str] = {}
    groups_left = 0
    for i in range(USERS):
        user = f"{agent_id}-u{i}"
        for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
            statuses[key["AccessKeyId"]] = key["Status"]
        groups_left += len(iam.list_groups_for_user(UserName=user)["Groups"])
    _, key_id = keys[0]
    material = KeyringFile(Paths.under(bench.home).keyring).entries(f"aws.access-key:{key_id}")[0]
    moto = str(bench.status["stand_ins"]["moto"]["url"])
    signed_with = (material["access_key_id"], material["secret_access_key"])
    accepted: dict[str, str] = {}
    for api, call in (("sts", "get_caller_identity"), ("iam", "get_user")):
        client = aws_fleet.client(api, moto, *signed_with)
        try:
            getattr(client, call)()
            accepted[f"{api}:{call}"] = "accepted"
        except Exception as exc:  # noqa: BLE001  (what the provider said is the result)
            accepted[f"{api}:{call}"] = f"rejected: {type(exc).__name__}"
    return {
        "keys_inactive": sum(1 for s in statuses.values() if s == "Inactive"),
        "keys": len(statuses),
        "group_memberships_left": groups_left,
        "disabled_key_status": statuses.get(key_id, "?"),
        "disabled_key_on_moto": accepted,
        "probed": False,
    }


def run_killswitch(runtime: Runtime, agent_id: str, mode: Mode) -> dict[str, Any]:
    """`pipeline.contain` in this process; wall seconds and what the report proves."""
    request = Request(agent_id, "peer benchmark", "bench", trigger="bench", mode=mode)
    started = time.monotonic()
    report = pipeline.contain(runtime, request)
    wall = time.monotonic() - started
    keys = [c for c in report.credentials if c.credential.kind == "aws.access-key"]
    dead = [c for c in keys if c.verdict.status is VerdictStatus.DEAD and c.verdict.evidence]
    groups = [r for r in report.grants_detached if r.action.operation == "remove-from-group"]
    evidence = dead[0].verdict.evidence if dead else ""
    return {
        "wall_s": wall,
        "proven_s": (wall - report.timings.total_s) + report.timings.proven_s,
        "ok": report.ok,
        "keys": len(keys),
        "keys_dead_with_evidence": len(dead),
        "group_memberships_removed": sum(1 for r in groups if r.outcome.value != "failed"),
        "evidence_sample": evidence[:300],
        "probed": True,
    }


def measure(bench: Bench, tool: str, exe: Path, warm: Runtime) -> dict[str, Any]:
    """One run of `tool` on a fresh agent, with the AWS calls it made through the proxy (the
    read-backs afterwards go straight to moto and are not counted)."""
    agent_id, keys = seed(bench)
    users = len(bench.admin.iam().list_users(MaxItems=1000)["Users"])
    bench.reset_calls()
    if tool == "c7n":
        timed = run_c7n(bench, exe, agent_id)
        calls = bench.calls().get("aws", 0)
        shown = c7n_shows(bench, agent_id, keys)
        return {**timed, "aws_calls": calls, "account_users": users, **shown}
    if tool == "flow_warm":
        done = run_killswitch(warm, agent_id, Mode.FLOW)
    else:
        fresh = Runtime.open(bench.settings, providers=["aws"])
        try:
            done = run_killswitch(fresh, agent_id, Mode.BREAK_GLASS)
        finally:
            fresh.close()
    return {**done, "aws_calls": bench.calls().get("aws", 0), "account_users": users}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ls", default="0,50")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    exe = ensure_c7n()
    load_start = os.getloadavg()[0]
    version = subprocess.run(
        [str(exe), "version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    home = Path(tempfile.mkdtemp(prefix="killswitch-peer-"))
    bench = Bench.start(home)
    warm = Runtime.open(bench.settings, providers=["aws"])
    service.warm(warm.settings)  # as `killswitch serve` does before its first request
    try:
        warm_agent, _ = seed(bench)
        pipeline.contain(warm, Request(warm_agent, "warm-up", "bench", mode=Mode.FLOW))
        rows = []
        for latency_ms in [float(x) for x in args.ls.split(",")]:
            bench.latency(latency_ms)
            # Interleaved (c7n, break-glass, flow, c7n, ...): the account grows by one agent
            # per run, and c7n describes every user in it, so each tool sees the same sizes.
            runs: dict[str, list[dict[str, Any]]] = {tool: [] for tool in TOOLS}
            for _ in range(args.runs):
                for tool in TOOLS:
                    runs[tool].append(measure(bench, tool, exe, warm))
            for tool in TOOLS:
                stats = summary([r["wall_s"] for r in runs[tool]])
                row: dict[str, Any] = {
                    "tool": tool,
                    "L": latency_ms,
                    "seconds": stats["median"],
                    "spread_s": [stats["min"], stats["max"]],
                    "runs": runs[tool],
                }
                if tool == "c7n":
                    row["execution_s"] = summary([r["execution_s"] for r in runs[tool]])["median"]
                else:
                    row["proven_s"] = summary([r["proven_s"] for r in runs[tool]])["median"]
                row["aws_calls"] = summary([r["aws_calls"] for r in runs[tool]])["median"]
                row["account_users"] = [r["account_users"] for r in runs[tool]]
                rows.append(row)
                print(f"L={latency_ms:>4.0f} {tool:<12} {stats['median']:6.2f}s", flush=True)
        write(
            "peer",
            {
                "machine": machine(),
                "load_average_1m": {"start": load_start, "end": os.getloadavg()[0]},
                "c7n": version,
                "agent": {"users": USERS, "keys_per_user": KEYS, "groups": list(GROUPS)},
                "rows": rows,
            },
        )
        print("wrote bench/results/peer.json", flush=True)
    finally:
        warm.close()
        bench.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
