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
import threading
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


class CpuMeter:
    """CPU seconds each part of the machine spends while it runs: every process of the part
    and its descendants, sampled four times a second (a lane's process ends with the fleet,
    so it is read while it lives). What a process reaped is not added (it was sampled
    itself: adding it counted a lane twice); a process that lived less than a sample's
    interval, and a process's last quarter second, are not counted."""

    def __init__(self, parts: dict[str, list[int]]) -> None:
        self.parts = parts
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._part_of: dict[int, str] = {}
        self._stop = threading.Event()
        self._sample(first=True)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _sample(self, *, first: bool = False) -> None:
        for name, pids in self.parts.items():
            for root in pids:
                try:
                    process = psutil.Process(root)
                    # This process's children are the stand-ins: counted as theirs.
                    below = process.children(recursive=True) if root != os.getpid() else []
                    tree = [process, *below]
                except psutil.Error:
                    continue
                for each in tree:
                    try:
                        t = each.cpu_times()
                    except psutil.Error:
                        continue
                    spent = float(t.user + t.system)
                    self._part_of.setdefault(each.pid, name)
                    self._first.setdefault(each.pid, spent if first else 0.0)
                    self._last[each.pid] = spent

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            self._sample()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self._sample()
        spent = dict.fromkeys(self.parts, 0.0)
        for pid, last in self._last.items():
            spent[self._part_of[pid]] += last - self._first[pid]
        return {name: round(value, 2) for name, value in spent.items()}


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def _parts(bench: Bench, status: dict[str, Any]) -> dict[str, list[int]]:
    """The machine's parts by pid: what CPU each spent is read from them."""
    processes = bench.status.get("processes", {})
    state = json.loads((Path(status["home"]) / "state.json").read_text())
    pgdata = Path(status["home"]) / "postgres" / "pgdata"
    return {
        "workers": [int(w["pid"]) for w in status["workers"]],
        "bench (plan, monitor)": [os.getpid()],
        "prefect server": [int(state["prefect"]["pid"])],
        "postgresql": [int((pgdata / "postmaster.pid").read_text().split()[0])],
        "stand-ins": [int(processes[n]["pid"]) for n in ("stand-ins", "openbao") if n in processes],
    }


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
        meter = CpuMeter(_parts(bench, status))
        started = time.monotonic()
        template = Request("-", "shared secret leaked (bench)", "bench", trigger="bench")
        fleet_id, plans = pipeline.plan_fleet(runtime, [a for a, _ in agents], template)
        planned = time.monotonic()
        report = pipeline.run_fleet(runtime, fleet_id, plans, mode=template.mode)
        elapsed = time.monotonic() - started
        run_s = time.monotonic() - planned
        cpu = meter.stop()
        bench.latency(0)
        calls = bench.calls()
        # The same calls, served by the sandbox all at once on this machine (no latency).
        replay_s = ceilings.replay(bench, calls)
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
            "replay_s": replay_s,
            "replay_credentials_per_s": total / replay_s if replay_s else None,
            "fraction_of_replay": replay_s / elapsed if elapsed else None,
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
                f"({100 * (result['fraction_of_ceiling'] or 0):.0f}% of the stand-ins' ceiling, "
                f"{100 * (result['fraction_of_replay'] or 0):.0f}% of the replay's); "
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
