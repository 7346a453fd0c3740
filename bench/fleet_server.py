"""`python -m bench.fleet --via-server --workers 1,2,4`: the fleet benchmark through the
scaled-out stack (see bench/fleet.py). One sandbox; per worker count a fresh fleet, the stack
brought to that many workers (`scale up` is idempotent), the fleet contained through the
deployment, the figures read back from the ledger, and the CPU each part of the machine
spent on it (the workers and their lanes, this process — planning and the fleet's monitor —,
the Prefect server, PostgreSQL, the stand-ins): on a small machine the parts share the cores,
and the stand-ins' ceiling is measured with a core to themselves."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from bench import ceilings
from bench.harness import Bench, machine, write
from killswitch import pipeline
from killswitch.request import Request
from killswitch.runtime import Runtime
from killswitch.sandbox import seeding
from killswitch.sandbox.state import Paths
from killswitch.scale import stack
from killswitch.settings import load_settings

CPUS = os.cpu_count() or 1


def _cpu(pid: int) -> float:
    """CPU seconds of a process and of its children it has waited for (a worker's lanes, a
    PostgreSQL server's backends)."""
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(t.user + t.system + t.children_user + t.children_system)


def _parts(bench: Bench, status: dict[str, Any]) -> dict[str, list[int]]:
    """The machine's parts by pid: what CPU each spent is read from them."""
    processes = bench.status.get("processes", {})
    state = json.loads((Path(status["home"]) / "state.json").read_text())
    pg = psutil.Process(_postmaster(Path(status["home"]) / "postgres" / "pgdata"))
    return {
        "workers": [int(w["pid"]) for w in status["workers"]],
        "bench (plan, monitor)": [os.getpid()],
        "prefect server": [int(state["prefect"]["pid"])],
        "postgresql": [pg.pid],
        "stand-ins": [int(processes[n]["pid"]) for n in ("stand-ins", "openbao") if n in processes],
    }


def _postmaster(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


def _spent(parts: dict[str, list[int]]) -> dict[str, float]:
    return {name: sum(_cpu(pid) for pid in pids) for name, pids in parts.items()}


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def one(
    bench: Bench, home: Path, workers: int, args: argparse.Namespace, ceiling: dict[str, float]
) -> dict[str, Any]:
    status = stack.up(home, workers=workers)
    runtime = Runtime.open(load_settings(profile=Path(status["profile"])))
    # The agents go where the stack's workers look them up: its inventory (PostgreSQL).
    bench.plugins = seeding.attach(
        bench.status["stand_ins"], bench.status["providers"], Paths.under(home), runtime.inventory
    )
    try:
        print(f"[{workers} worker(s)] seeding {args.agents} agents x ~{args.per_agent}", flush=True)
        agents = [bench.seed(args.per_agent) for _ in range(args.agents)]
        total = sum(k for _, k in agents)
        bench.latency(args.latency_ms)
        bench.reset_calls()
        parts = _parts(bench, status)
        before = _spent(parts)
        started = time.monotonic()
        template = Request("-", "shared secret leaked (bench)", "bench", trigger="bench")
        fleet_id, plans = pipeline.plan_fleet(runtime, [a for a, _ in agents], template)
        planned = time.monotonic()
        report = pipeline.run_fleet(runtime, fleet_id, plans, mode=template.mode)
        elapsed = time.monotonic() - started
        run_s = time.monotonic() - planned
        after = _spent(parts)
        bench.latency(0)
        cpu = {name: round(after[name] - before[name], 2) for name in parts}
        calls = bench.calls()
        ids = {p.run_id for p in plans}
        marks: dict[str, dict[str, float]] = {}
        waits: list[float] = []
        for e in runtime.ledger.rows():
            if e["run_id"] not in ids:
                continue
            mark = marks.setdefault(e["run_id"], {})
            if e["action"] == "plan":
                mark["planned"] = _ts(e["ts"])
            elif e["action"] == "contain" and e["outcome"] == "started":
                mark["started"] = _ts(e["ts"])
            elif e["action"] == "contain" and e["outcome"] in ("proven", "not-proven"):
                mark["closed"] = _ts(e["ts"])
            elif e["action"] == "provider-calls":
                waits += [w for _, _, w in e["detail"]["held"]]
        done = [m for m in marks.values() if {"planned", "started", "closed"} <= set(m)]
        first = min(m["planned"] for m in done) if done else 0.0
        floor = max(calls.get(name, 0) / ceiling[name] for name in ceiling)
        return {
            "workers": workers,
            "agents": args.agents,
            "credentials": total,
            "dead": report.count("dead"),
            "all_proven": report.ok,
            "latency_ms": args.latency_ms,
            "seconds": elapsed,
            "plan_s": planned - started,
            "run_s": run_s,
            "credentials_per_s": total / elapsed,
            "calls": calls,
            "capacity_floor_s": floor,
            "ceiling_credentials_per_s": total / floor if floor else None,
            "fraction_of_ceiling": floor / elapsed if elapsed else None,
            # From the plan's ledger entry to the containment's `started` entry: the flow
            # run's creation, a worker's poll, its process, imports, admission.
            "orchestration_s_per_agent": statistics.mean(m["started"] - first for m in done)
            if done
            else None,
            "orchestration_s_min": min(m["started"] - first for m in done) if done else None,
            "containment_s_per_agent": statistics.mean(m["closed"] - m["started"] for m in done)
            if done
            else None,
            "cpu_s": cpu,
            # Busy cores over the run: the machine's share the parts took together.
            "cores_busy": round(sum(cpu.values()) / elapsed, 2),
            "slot_acquire_ms_mean": 1000 * statistics.mean(waits) if waits else None,
            "slot_acquire_ms_p95": 1000 * sorted(waits)[int(0.95 * (len(waits) - 1))]
            if waits
            else None,
        }
    finally:
        runtime.close()


def run(args: argparse.Namespace) -> int:
    home = Path(tempfile.mkdtemp(prefix="killswitch-fleet-server-"))
    bench = Bench.start(home, pin=False)  # the workers' processes must spread over the cores
    try:
        ceiling = ceilings.measure(bench)
        results = []
        for workers in [int(n) for n in str(args.workers).split(",") if n.strip()]:
            result = one(bench, home, workers, args, ceiling)
            results.append(result)
            print(
                f"[{workers} worker(s)] {result['credentials']} credentials of {args.agents} "
                f"agents in {result['seconds']:.1f}s: {result['credentials_per_s']:.1f}/s "
                f"({100 * (result['fraction_of_ceiling'] or 0):.0f}% of the stand-ins' ceiling); "
                f"orchestration {result['orchestration_s_per_agent'] or 0:.1f}s/agent; "
                f"{result['cores_busy']:.2f} cores busy; all proven: {result['all_proven']}",
                flush=True,
            )
        write(
            "fleet_server",
            {
                "runs": results,
                "ceilings_rps": ceiling,
                "machine": machine(),
                "load_end": os.getloadavg()[0],
            },
        )
        from bench.charts import draw_fleet

        draw_fleet(results)
    finally:
        stack.down(home)
        bench.stop()
    return 0
