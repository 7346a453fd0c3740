"""Sweep scale: how fast discovery streams NHIs into the inventory, with how much memory,
and how long classifying and deciding takes, as the number of NHIs grows.

OpenAI keys (bulk-seeded in the stand-in, paged 100 at a time as OpenAI pages them) carry
the scale; AWS users and keys (moto: a few hundred requests per second) are measured
separately, against moto's own ceiling. Memory: the peak traced by `tracemalloc` while the
enumeration streams into the inventory, for each N — flat when it does not grow with N.

    python -m bench.sweep [--sizes 1000,10000,20000] [--aws-users 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import ceilings
from bench.harness import Bench, machine, write
from killswitch.inventory import Inventory
from killswitch.models import Agent, AgentStatus, ContainmentReport
from killswitch.request import Request
from killswitch.runtime import Runtime
from killswitch.sightings import Sightings
from killswitch.sweep import SweepRequest, run
from killswitch.sweep.classify import Thresholds, classify


def _openai(bench: Bench, runtime: Runtime, n: int, scratch: Path) -> dict[str, Any]:
    owner = f"bulk-{uuid.uuid4().hex[:6]}"
    httpx.post(
        f"{bench.saas_url}/_sandbox/bulk",
        json={"provider": "openai", "owner": owner, "count": n, "project": f"proj_{owner}"},
        timeout=600,
    ).raise_for_status()
    try:
        sightings = Sightings(Inventory(scratch / f"openai-{n}.db"))
        tracemalloc.start()
        started = time.monotonic()
        recorded = sightings.record("openai", runtime.revokers["openai"].enumerate(), "bench")
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        settings = runtime.settings.sweep
        agents = {owner: Agent(owner, "bench", AgentStatus.DECOMMISSIONED)}
        started = time.monotonic()
        findings = classify(
            sightings.nhis(),
            agents,
            {},
            Thresholds(datetime.now(UTC), settings.stale_days, settings.rotation_days),
        )
        classify_s = time.monotonic() - started
    finally:
        httpx.request(
            "DELETE", f"{bench.saas_url}/_sandbox/bulk", json={"owner": owner}, timeout=120
        )
    return {
        "n": recorded.seen,
        "discover_s": elapsed,
        "nhis_per_s": recorded.seen / elapsed,
        "peak_traced_mb": peak / 2**20,
        "classify_s": classify_s,
        "findings": len(findings),
    }


def _aws(bench: Bench, runtime: Runtime, users: int, ceiling_rps: float) -> dict[str, Any]:
    iam = bench.admin.iam()
    tag = f"sweep-{uuid.uuid4().hex[:6]}"
    for i in range(users):
        name = f"{tag}-{i}"
        iam.create_user(UserName=name, Tags=[{"Key": "agent-id", "Value": tag}])
        for _ in range(2):
            iam.create_access_key(UserName=name)
    bench.reset_calls()
    started = time.monotonic()
    seen = sum(1 for _ in runtime.revokers["aws"].enumerate())
    elapsed = time.monotonic() - started
    calls = bench.calls().get("aws", 0)
    return {
        "nhis": seen,
        "seconds": elapsed,
        "nhis_per_s": seen / elapsed,
        "calls": calls,
        "moto_ceiling_rps": ceiling_rps,
        "fraction_of_ceiling": (calls / ceiling_rps) / elapsed if elapsed else None,
    }


def _never(request: Request) -> ContainmentReport:
    raise AssertionError("a dry run contains nothing")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,20000")
    parser.add_argument("--aws-users", type=int, default=100)
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="killswitch-sweep-bench-"))
    bench = Bench.start(home)
    runtime = Runtime.open(bench.settings)
    try:
        ceiling = ceilings.measure(bench)
        rows = []
        for n in (int(s) for s in args.sizes.split(",")):
            row = _openai(bench, runtime, n, home)
            rows.append(row)
            print(
                f"openai N={row['n']}: {row['nhis_per_s']:.0f} NHIs/s, peak "
                f"{row['peak_traced_mb']:.2f} MiB traced, classify {row['classify_s']:.2f}s",
                flush=True,
            )
        aws = _aws(bench, runtime, args.aws_users, ceiling["aws"])
        print(
            f"aws: {aws['nhis']} NHIs in {aws['seconds']:.1f}s ({aws['nhis_per_s']:.0f}/s; "
            f"{100 * (aws['fraction_of_ceiling'] or 0):.0f}% of moto's ceiling)",
            flush=True,
        )
        started = time.monotonic()
        report = run(runtime, SweepRequest(actor="bench", dry_run=True), _never)
        whole = {
            "seconds": time.monotonic() - started,
            "findings": len(report.findings),
            "nhis": sum(r.seen for r in report.discovered),
        }
        print(f"whole sandbox dry run: {whole['nhis']} NHIs in {whole['seconds']:.1f}s", flush=True)
        write("sweep", {"openai": rows, "aws": aws, "dry_run": whole, "machine": machine()})
    finally:
        runtime.close()
        bench.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
