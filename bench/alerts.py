"""The alert path: from a request's arrival to the last credential proven dead, and what
the receiver costs when it refuses.

A sandbox of its own; the service (`killswitch serve`'s app) in this process on a port,
warmed by one alert first (a service is started once and then serves for days). Then, per
kind, N alerts, each for a fresh agent of K credentials over every provider:

- `aws`: AWS Health `AWS_RISK_CREDENTIALS_EXPOSED` for one access key, as an EventBridge API
  destination sends it (traced through the inventory);
- `github`: a `secret_scanning_alert` carrying the leaked token (a relayed REST alert),
  traced by the token's keyed fingerprint and proven with the token itself.

Breakdown per alert: receiving and authenticating, attribution, the plan (discovery across
every provider), the run's contain and probe phases (from its report), and the whole, from
the request's arrival to the last verdict. Then the receiver's throughput for requests
with a bad signature (refused, ledgered under the refusal throttle).

    python -m bench.alerts [--runs 5] [--k 24] [--refused 400]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.harness import Bench, machine, write
from killswitch.alerts.handling import AlertDesk
from killswitch.models import Credential, VerdictStatus
from killswitch.runtime import Runtime
from killswitch.sandbox import alert_demo, senders
from killswitch.sandbox.serving import service_on_a_port
from killswitch.secrets import KeyringFile


def _alert(bench: Bench, runtime: Runtime, kind: str, k: int) -> tuple[bytes, dict[str, str]]:
    agent_id, _ = bench.seed(k)
    alerts = runtime.settings.alerts
    if kind == "aws":
        body = senders.encode(
            senders.health_exposed_event(alert_demo.leaked_key(runtime, agent_id))
        )
        assert alerts.aws.api_key is not None
        return body, senders.aws_headers(alerts.aws.api_key.get_secret_value(), alerts.aws.header)
    ref = next(r for r in runtime.inventory.declared(agent_id) if r.provider == "github")
    keyring = KeyringFile(runtime.settings.keyring_path or Path("-"))
    [material] = keyring.materials(Credential(ref.provider, ref.kind, ref.ref, "", agent_id))
    token = material.get("token")
    assert token is not None
    number = int(time.time() * 1000) % 10**9
    body = senders.encode(senders.secret_scanning_alert(secret=token, number=number))
    assert alerts.github.webhook_secret is not None
    return body, senders.github_headers(alerts.github.webhook_secret.get_secret_value(), body)


def _one(
    port: int, desk: AlertDesk, path: str, body: bytes, headers: dict[str, str]
) -> dict[str, Any]:
    started = time.monotonic()
    answer = httpx.post(
        f"http://127.0.0.1:{port}/alerts/{path}", content=body, headers=headers, timeout=60
    )
    answered_s = time.monotonic() - started
    said = answer.json()
    assert answer.status_code == 202 and said["decision"] == "contain", said
    [agent] = said["agents"]
    report = desk.wait(agent["run_id"], 180)
    done = time.monotonic() - started
    assert report is not None
    timings = report.timings
    proven_s = done - (timings.total_s - timings.proven_s)
    traced, planned = float(said["attribution_s"]), float(agent["plan_s"])
    # The run as the desk saw it (narration, Prefect's flow-run bookkeeping) beyond the
    # report's own total: what orchestration and the incident channel cost.
    for _ in range(100):  # the desk's done-callback may trail the waiter by a moment
        if agent["run_id"] in desk.run_wall_s:
            break
        time.sleep(0.01)
    overhead = desk.run_wall_s.get(agent["run_id"], timings.total_s) - timings.total_s
    return {
        "credentials": len(report.credentials),
        "all_dead": report.count(VerdictStatus.DEAD) == len(report.credentials),
        "proven": report.ok,
        "receive_auth_s": max(0.0, answered_s - traced - planned),
        "attribution_s": traced,
        "plan_s": planned,
        "contain_s": timings.contain_s,
        "probe_s": timings.verify_s,
        "orchestration_s": overhead,
        "arrival_to_proven_s": proven_s,
    }


def _refused(port: int, n: int, concurrency: int) -> float:
    """Requests per second for `n` requests signed with the wrong secret."""
    body = senders.encode(senders.secret_scanning_alert())

    def send(count: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(count):
                headers = senders.github_headers("not-the-secret", body)
                assert (
                    client.post("/alerts/github", content=body, headers=headers).status_code == 401
                )

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(send, [n // concurrency] * concurrency))
    return (n // concurrency * concurrency) / (time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--k", type=int, default=24)
    parser.add_argument("--refused", type=int, default=400)
    args = parser.parse_args(argv)
    bench = Bench.start(Path(tempfile.mkdtemp(prefix="killswitch-alerts-")))
    runtime = Runtime.open(bench.settings)
    desks: list[AlertDesk] = []
    results: dict[str, Any] = {"k": args.k, "runs": args.runs, "machine": machine()}
    try:
        with service_on_a_port(runtime, desks=desks) as port:
            desk = desks[0]
            _one(port, desk, "aws", *_alert(bench, runtime, "aws", args.k))  # warm-up
            for kind in ("aws", "github"):
                samples = []
                for i in range(args.runs):
                    desk.breaker.resume("bench")  # the bench contains more than a storm's worth
                    samples.append(_one(port, desk, kind, *_alert(bench, runtime, kind, args.k)))
                    print(
                        f"{kind} {i + 1}/{args.runs}: {samples[-1]['arrival_to_proven_s']:.2f}s",
                        flush=True,
                    )
                results[kind] = {
                    "samples": samples,
                    "median": {
                        key: statistics.median(s[key] for s in samples)
                        for key in samples[0]
                        if key.endswith("_s")
                    },
                    "all_proven": all(s["proven"] and s["all_dead"] for s in samples),
                }
            results["refused_rps"] = {
                "sequential": _refused(port, args.refused // 4, 1),
                "concurrent_8": _refused(port, args.refused, 8),
            }
    finally:
        runtime.close()
        bench.stop()
    write("alerts", results)
    for kind in ("aws", "github"):
        m = results[kind]["median"]
        print(
            f"{kind}: arrival→proven {m['arrival_to_proven_s']:.2f}s (receive+auth "
            f"{m['receive_auth_s']:.3f}, attribution {m['attribution_s']:.3f}, plan "
            f"{m['plan_s']:.2f}, contain {m['contain_s']:.2f}, probe {m['probe_s']:.2f}, "
            f"orchestration and narration {m['orchestration_s']:.2f})"
        )
    print(
        f"refused requests: {results['refused_rps']['sequential']:.0f}/s sequential, "
        f"{results['refused_rps']['concurrent_8']:.0f}/s with 8 senders"
    )
    return 0 if all(results[k]["all_proven"] for k in ("aws", "github")) else 1


if __name__ == "__main__":
    raise SystemExit(main())
