"""Time-to-containment: one agent of K credentials over every provider, L ms per call.

Modes, each on a fresh agent per run (containment is destructive):
  serial     the same revokers, one call after another, no orchestrator (the naive script)
  parallel   the same plan fanned out, no orchestrator (`--break-glass`)
  flow-warm  the Prefect `contain` flow in an already-running process (the service path)
  cli-cold   `killswitch contain` as a fresh process (what an engineer types)
  bound      the critical-path lower bound: L x (discover -> contain -> probe) for one
             credential plus the longest settle window in the mix (a rejection must hold
             that long before it is `dead`), or the stand-ins' own capacity (calls / their
             measured ceiling), whichever is larger

    python -m bench.containment [--ks 11,60,240] [--ls 0,50] [--runs 3] [--quick]
                                [--modes flow_warm,parallel]

Each measured agent's IAM users and role are deleted after its run (untimed, `Bench.retire`):
every row scans an account of the same size (~30 principals), whatever ran before it.

Writes bench/results/containment.json and bench/results/*.png; bench/README.md quotes them.
With --modes (a subset), it prints its figures and writes nothing: the results stay whole.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import ceilings, charts
from bench.harness import Bench, cli, machine, summary, write
from killswitch import pipeline, service
from killswitch.request import Mode, Request
from killswitch.runtime import Runtime

MODES = ("serial", "parallel", "flow_warm", "cli_cold")
CHAIN = 3  # discover -> contain -> probe: the fewest dependent round trips for one credential
PROVIDERS = ("aws", "vault", "gcp", "azure", "slack", "github", "openai", "anthropic")


def serial_settings(bench: Bench) -> Any:
    """One provider at a time, one call at a time: the naive script, with the same code."""
    one = {
        name: getattr(bench.settings, name).model_copy(update={"max_workers": 1})
        for name in PROVIDERS
    }
    return bench.settings.model_copy(update={"provider_concurrency": 1, **one})


PHASES: dict[str, dict[str, dict[str, float]]] = {}  # mode -> provider -> its last run's phases


def _phases(mode: str, report: Any) -> None:
    PHASES[mode] = {
        t.provider: {
            "start_s": round(t.start_s, 3),
            "contain_s": round(t.contain_s, 3),
            "verify_s": round(t.verify_s, 3),
            "end_s": round(t.end_s, 3),
        }
        for t in report.timings.providers
    }


def run_once(
    mode: str, bench: Bench, agent_id: str, warm: Runtime
) -> tuple[float, float, bool, str]:
    """(seconds until every credential was proven dead, seconds until the run returned,
    proven?, run id). Time to containment is the first: grants still come off after it.
    For `cli_cold` both are the command's wall time, which is what an engineer waits for."""
    if mode == "cli_cold":
        elapsed, report = cli(bench.home, "contain", agent_id, "--reason", "bench")
        return elapsed, elapsed, bool(report.get("ok")), str(report.get("run_id", ""))
    request_mode = "flow" if mode == "flow_warm" else "break-glass"
    request = Request(agent_id, "bench", "bench", trigger="bench", mode=request_mode)
    if mode == "flow_warm":
        started = time.monotonic()
        report = pipeline.contain(warm, request)
        returned = time.monotonic() - started
        # Prefect's own start of the flow run counts: proven_s starts inside the flow.
        overhead = returned - report.timings.total_s
        _phases(mode, report)
        return overhead + report.timings.proven_s, returned, report.ok, report.run_id
    runtime = Runtime.open(serial_settings(bench) if mode == "serial" else bench.settings)
    try:
        started = time.monotonic()
        report = pipeline.contain(runtime, request)
        returned = time.monotonic() - started
        _phases(mode, report)
        return report.timings.proven_s, returned, report.ok, report.run_id
    finally:
        runtime.close()


def timeline(bench: Bench, run_id: str) -> dict[str, Any]:
    """Per provider: when its first entry, its last contain and its last detach were
    recorded, and when each credential's probe saw it dead, in seconds since the run
    started — from the ledger (the bound is added by the caller)."""
    rows = list(warm_ledger(bench).rows(run_id=run_id))
    start = datetime.fromisoformat(rows[0]["ts"])

    def at(row: dict[str, Any]) -> float:
        return (datetime.fromisoformat(row["ts"]) - start).total_seconds()

    providers: dict[str, dict[str, Any]] = {}
    for row in rows:
        name = row["provider"]
        if not name:
            continue
        p = providers.setdefault(name, {"first_s": at(row), "dead_s": []})
        verb = row["detail"].get("verb")
        if verb in ("contain", "detach"):
            p[f"{verb}_end_s"] = max(p.get(f"{verb}_end_s", 0.0), at(row))
        if row["action"] == "probe":
            p["dead_s"].append(at(row))
    return {"providers": dict(sorted(providers.items()))}


def warm_ledger(bench: Bench) -> Any:
    from killswitch.ledger import Ledger

    return Ledger(bench.settings.ledger_file)


def runs_for(mode: str, k: int, latency_ms: float, runs: int) -> int:
    # The naive script takes tens of seconds beyond a handful of credentials: once is
    # enough to know (and keeps `make bench` under ten minutes on two cores).
    if mode == "serial" and k > 10:
        return 1
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ks", default="11,60,240")
    parser.add_argument("--ls", default="0,50")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="K=11,60; L=50; 1 run")
    parser.add_argument(
        "--modes",
        default=",".join(MODES),
        help=f"a subset of {','.join(MODES)}: printed only, bench/results/ left as it is",
    )
    args = parser.parse_args(argv)
    modes = [m for m in MODES if m in args.modes.split(",")]
    if not modes or set(args.modes.split(",")) - set(MODES):
        parser.error(f"--modes: a comma-separated subset of {','.join(MODES)}")
    every_mode = modes == list(MODES)
    ks = [11, 60] if args.quick else [int(k) for k in args.ks.split(",")]
    ls = [50.0] if args.quick else [float(x) for x in args.ls.split(",")]
    runs = 1 if args.quick else args.runs
    home = Path(tempfile.mkdtemp(prefix="killswitch-bench-"))
    bench = Bench.start(home)
    warm = Runtime.open(bench.settings)
    service.warm(warm.settings)  # as `killswitch serve` does before its first request
    try:
        print(f"bench home {home}; measuring the stand-ins' ceilings", flush=True)
        ceiling = ceilings.measure(bench)
        print("ceilings (requests/s):", {k: round(v) for k, v in ceiling.items()}, flush=True)
        warm_agent, _ = bench.seed(10)
        pipeline.contain(warm, Request(warm_agent, "warm-up", "bench", mode=Mode.FLOW))
        # A verdict is `dead` only once its rejection has held over the provider's settle
        # window: no run can prove a containment sooner than the longest window in the mix.
        settle = max(max(r.settle_s, 0.0) for r in warm.revokers.values())
        rows, timelines = [], {}
        for latency_ms in ls:
            bench.latency(latency_ms)
            for k in ks:
                row: dict[str, Any] = {"K": k, "L": latency_ms, "machine": machine()}
                calls: dict[str, int] = {}
                for mode in modes:
                    samples, returned, proven = [], [], True
                    for _ in range(runs_for(mode, k, latency_ms, runs)):
                        agent_id, actual = bench.seed(k)
                        bench.reset_calls()
                        seconds, whole, ok, run_id = run_once(mode, bench, agent_id, warm)
                        bench.retire(agent_id)  # every run scans an account of one size
                        samples.append(seconds)
                        returned.append(whole)
                        proven = proven and ok
                        row["K_actual"] = actual
                        if mode == "parallel":
                            calls = bench.calls()
                        if mode == "flow_warm" and latency_ms and k == 60:
                            timelines[f"K{k}_L{int(latency_ms)}"] = {
                                **timeline(bench, run_id),
                                "phases": PHASES.get(mode, {}),
                                "proven_s": seconds,
                            }
                    stats = summary(samples)
                    row[f"{mode}_s"] = stats["median"]
                    row[f"{mode}_spread_s"] = [stats["min"], stats["max"]]
                    row[f"{mode}_runs"] = len(samples)
                    row[f"{mode}_returned_s"] = summary(returned)["median"]
                    row[f"{mode}_proven"] = proven
                    if mode in PHASES:
                        row[f"{mode}_providers"] = PHASES.pop(mode)
                    print(
                        f"K={k:>3} L={latency_ms:>4.0f} {mode:<9} {stats['median']:7.3f}s "
                        f"({len(samples)} run(s), proven={proven})",
                        flush=True,
                    )
                capacity = max(calls.get(name, 0) / ceiling[name] for name in ceiling)
                row["calls"] = calls
                chain = CHAIN * latency_ms / 1000
                row["bound_s"] = max(chain + settle, capacity)
                row["bound_parts"] = {"chain_s": chain, "settle_s": settle, "capacity_s": capacity}
                row["round_trip_bound_s"] = max(chain, capacity)
                drawn = timelines.get(f"K{k}_L{int(latency_ms)}")
                if drawn is not None:
                    drawn["bound_s"] = row["bound_s"]
                if "serial_s" in row and "parallel_s" in row:
                    row["serial_over_parallel"] = row["serial_s"] / row["parallel_s"]
                if "flow_warm_s" in row:
                    row["flow_warm_over_bound"] = row["flow_warm_s"] / row["bound_s"]
                    print(
                        f"K={k:>3} L={latency_ms:>4.0f} flow_warm / bound "
                        f"{row['flow_warm_s']:.3f} / {row['bound_s']:.3f} = "
                        f"{row['flow_warm_over_bound']:.2f}x",
                        flush=True,
                    )
                row["runs"] = runs
                rows.append(row)
        if not every_mode:
            print("a subset of the modes: bench/results/ left as it is", flush=True)
            return 0
        write("containment", rows)
        write("containment_timeline", timelines)
        write("ceilings", {"requests_per_s": ceiling, "machine": machine()})
        charts.draw(rows, timelines)
        print(f"wrote {len(rows)} rows to bench/results/containment.json", flush=True)
    finally:
        warm.close()
        bench.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
