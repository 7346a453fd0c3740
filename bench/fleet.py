"""A shared secret leaked: many agents at once (50 agents x 20 credentials by default).

Every containment runs in one warm process (the service path, break-glass mode so that
only the providers are measured), several at a time; each provider's revoker lets at most
`max_workers` calls through at once across all of them (its concurrency limit). Reported:
credentials proven dead per second, against what the stand-ins could serve at most.

    python -m bench.fleet [--agents 50] [--per-agent 20] [--concurrent 10] [--latency-ms 50]

`--via-server --workers 1,2,4`: the scaled-out shape instead (`killswitch scale up`:
PostgreSQL, a Prefect server on it, N process workers, the provider limits); the fleet is
planned once and each agent is one `contain` flow run through the deployment. Reported per
worker count: credentials proven per second against the stand-ins' ceiling, and the cost of
orchestration per agent (flow run submitted → its containment started, from the ledger).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import ceilings
from bench.harness import Bench, machine, write
from killswitch import pipeline, service
from killswitch.models import ContainmentReport, VerdictStatus
from killswitch.request import Mode, Request
from killswitch.runtime import Runtime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--per-agent", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--via-server", action="store_true", help="through workers")
    parser.add_argument("--workers", default="1,2,4", help="with --via-server: worker counts")
    args = parser.parse_args(argv)
    if args.via_server:
        from bench.fleet_server import run as via_server

        return via_server(args)
    home = Path(tempfile.mkdtemp(prefix="killswitch-fleet-"))
    bench = Bench.start(home, pin=False)
    runtime = Runtime.open(bench.settings)
    service.warm(runtime.settings)  # as `killswitch serve` does before its first request
    try:
        ceiling = ceilings.measure(bench)
        print(f"seeding {args.agents} agents x ~{args.per_agent} credentials", flush=True)
        agents = [bench.seed(args.per_agent) for _ in range(args.agents)]
        total = sum(k for _, k in agents)
        bench.latency(args.latency_ms)
        bench.reset_calls()

        def contain(agent_id: str) -> ContainmentReport:
            request = Request(
                agent_id, "shared secret leaked", "bench", trigger="bench", mode=Mode.BREAK_GLASS
            )
            return pipeline.contain(runtime, request)

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=args.concurrent) as pool:
            reports = list(pool.map(contain, [agent_id for agent_id, _ in agents]))
        elapsed = time.monotonic() - started
        calls = bench.calls()
        dead = sum(r.count(VerdictStatus.DEAD) for r in reports)
        # What the stand-ins could serve at most, spent on exactly these calls:
        floor = max(calls.get(name, 0) / ceiling[name] for name in ceiling)
        result = {
            "agents": args.agents,
            "credentials": total,
            "dead": dead,
            "all_proven": all(r.ok for r in reports),
            "concurrent_containments": args.concurrent,
            "latency_ms": args.latency_ms,
            "seconds": elapsed,
            "credentials_per_s": total / elapsed,
            "calls": calls,
            "ceilings_rps": ceiling,
            "capacity_floor_s": floor,
            "ceiling_credentials_per_s": total / floor if floor else None,
            "fraction_of_ceiling": floor / elapsed if elapsed else None,
            "max_workers": {name: r.max_workers for name, r in runtime.revokers.items()},
            "machine": machine(),
        }
        write("fleet", result)
        print(
            f"{total} credentials of {args.agents} agents in {elapsed:.1f}s: "
            f"{result['credentials_per_s']:.1f}/s; the stand-ins' ceiling for these calls: "
            f"{result['ceiling_credentials_per_s']:.1f}/s "
            f"({100 * (result['fraction_of_ceiling'] or 0):.0f}% of it); "
            f"all proven: {result['all_proven']}",
            flush=True,
        )
    finally:
        runtime.close()
        bench.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
