"""From "contain it" to the first revocation on the wire: fresh processes and warm triggers.

What an engineer waits for before anything changes at a provider. A sandbox of its own; per
row, N fresh agents of K credentials over every provider, each contained once:

- `cli-break-glass`: `killswitch contain AGENT --break-glass` as a fresh process (import,
  settings, ledger, plan with discovery across every provider, then the first contain);
- `cli-flow`: `killswitch contain AGENT` as a fresh process against the sandbox's running
  Prefect server (the flow run's creation on the server included);
- `slack-warm`: a signed `/killswitch contain` slash command to the warm service
  (`killswitch serve`'s app, in this process), as Slack sends it;
- `alert-warm`: an AWS Health "credentials exposed" event to the warm service's alert
  receiver, as an EventBridge API destination sends it (attribution through the inventory).

The first revocation is the moment the run wrote its first contain intent: the engine
records the undo record of a change (marked in flight) immediately before it sends the
call. Wall-clock seconds from the moment the process was spawned or the request was sent.
Also reported: the CLI's own import time (`python -X importtime`, the top-level packages).

    python -m bench.startup [--runs 5] [--k 11]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.harness import Bench, machine, write
from killswitch.alerts.handling import AlertDesk
from killswitch.runtime import Runtime
from killswitch.sandbox import alert_demo, control, senders
from killswitch.sandbox.serving import service_on_a_port
from killswitch.slack_app import signing

GOALS = {"cli-break-glass": 2.0, "cli-flow": 5.0, "slack-warm": 1.0, "alert-warm": 1.0}


def first_revocation(bench: Bench, agent_id: str, after: float, timeout: float = 60) -> float:
    """Wall-clock time of the agent's first contain intent written after `after`."""
    deadline = time.monotonic() + timeout
    path = bench.settings.inventory_file
    while time.monotonic() < deadline:
        with sqlite3.connect(path, timeout=30) as db:
            rows = db.execute(
                "SELECT created_at, action FROM undo_records WHERE agent_id = ? ORDER BY id",
                (agent_id,),
            ).fetchall()
        stamps = [
            datetime.fromisoformat(created).timestamp()
            for created, action in rows
            if json.loads(action).get("verb") == "contain"
        ]
        stamps = [s for s in stamps if s >= after - 1]
        if stamps:
            return min(stamps)
        time.sleep(0.02)
    raise TimeoutError(f"no revocation of {agent_id} within {timeout}s")


def _cli(bench: Bench, agent_id: str, *flags: str) -> dict[str, Any]:
    exe = str(Path(sys.executable).parent / "killswitch")
    env = {**os.environ, "KILLSWITCH_HOME": str(bench.home), "KILLSWITCH_ACTOR": "bench"}
    sent = time.time()
    done = subprocess.run(
        [exe, "contain", agent_id, "--reason", "bench", *flags, "--json", "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    returned = time.time() - sent
    report = json.loads(done.stdout)
    first = first_revocation(bench, agent_id, sent) - sent
    return {
        "first_revocation_s": first,
        "returned_s": returned,
        "proven": bool(report["ok"]),
        "all_dead": closed(bench, agent_id)["all_dead"],
    }


def _slack(bench: Bench, port: int, agent_id: str) -> dict[str, Any]:
    slack = bench.status["providers"]["slack"]
    body = urllib.parse.urlencode(
        {
            "command": "/killswitch",
            "text": f"contain {agent_id} bench: startup",
            "user_id": slack["oncall_user_ids"][0],
            "user_name": "on-call",
            "channel_id": slack["channel"],
            "team_id": "T0SANDBOX",
        }
    )
    sent = time.time()
    ack = httpx.post(
        f"http://127.0.0.1:{port}/slack/events",
        content=body,
        headers=signing.headers(slack["signing_secret"], body),
        timeout=10,
    )
    acked = time.time() - sent
    assert ack.status_code == 200, ack.text
    first = first_revocation(bench, agent_id, sent) - sent
    return {"first_revocation_s": first, "ack_s": acked}


def _alert(bench: Bench, runtime: Runtime, port: int, desk: AlertDesk, agent_id: str) -> Any:
    alerts = runtime.settings.alerts
    assert alerts.aws.api_key is not None
    body = senders.encode(senders.health_exposed_event(alert_demo.leaked_key(runtime, agent_id)))
    headers = senders.aws_headers(alerts.aws.api_key.get_secret_value(), alerts.aws.header)
    desk.breaker.resume("bench")  # the bench contains more than a storm's worth
    sent = time.time()
    answer = httpx.post(
        f"http://127.0.0.1:{port}/alerts/aws", content=body, headers=headers, timeout=60
    )
    said = answer.json()
    assert answer.status_code == 202 and said["decision"] == "contain", said
    first = first_revocation(bench, agent_id, sent) - sent
    report = desk.wait(said["agents"][0]["run_id"], 180)
    return {"first_revocation_s": first, "proven": bool(report is not None and report.ok)}


def _wait_runs_done(bench: Bench, agent_id: str, timeout: float = 120) -> None:
    """A warm-service run goes on after its first revocation: let it end before the next."""
    deadline = time.monotonic() + timeout
    with sqlite3.connect(bench.settings.ledger_file, timeout=30) as db:
        while time.monotonic() < deadline:
            row = db.execute(
                "SELECT COUNT(*) FROM entries WHERE agent = ? AND action = 'contain' "
                "AND outcome IN ('proven', 'not-proven')",
                (agent_id,),
            ).fetchone()
            if row[0]:
                return
            time.sleep(0.1)


def closed(bench: Bench, agent_id: str) -> dict[str, bool]:
    """How the agent's run ended, from the ledger: `proven` (its closing entry), `all_dead`
    (a verdict ledgered, and every one `dead`): a figure counts only runs proven so."""
    with sqlite3.connect(bench.settings.ledger_file, timeout=30) as db:
        rows = db.execute(
            "SELECT action, outcome FROM entries WHERE agent = ? AND action IN ('contain', "
            "'probe')",
            (agent_id,),
        ).fetchall()
    verdicts = {outcome for action, outcome in rows if action == "probe"}
    return {
        "proven": ("contain", "proven") in rows,
        "all_dead": verdicts == {"dead"},
    }


def import_time() -> dict[str, float]:
    """Seconds to import the CLI, and the heaviest top-level packages under it."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import killswitch.cli.main"],
        capture_output=True,
        text=True,
        check=True,
    )
    top: dict[str, float] = {}
    total = 0.0
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line.split(":", 1)[1].split("|"))
        if not cumulative.isdigit():
            continue
        if name == "killswitch.cli.main":
            total = int(cumulative) / 1e6
        depth = (len(line.split("|")[2]) - len(line.split("|")[2].lstrip())) // 2
        if depth == 1:
            package = name.split(".")[0]
            top[package] = top.get(package, 0.0) + int(cumulative) / 1e6
    heaviest = dict(sorted(top.items(), key=lambda kv: -kv[1])[:8])
    return {"killswitch.cli.main": total, **heaviest}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--k", type=int, default=11)
    args = parser.parse_args(argv)
    bench = Bench.start(Path(tempfile.mkdtemp(prefix="killswitch-startup-")))
    runtime = Runtime.open(bench.settings)
    results: dict[str, Any] = {"k": args.k, "runs": args.runs, "machine": machine()}
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in GOALS}
    try:
        control.fault(bench.home, "*", latency_ms=0, kind="")
        results["imports_s"] = import_time()
        _cli(bench, bench.seed(args.k)[0], "--break-glass")  # page cache warm, .pyc written
        for i in range(args.runs):
            for name, flags in (("cli-break-glass", ("--break-glass",)), ("cli-flow", ())):
                samples[name].append(_cli(bench, bench.seed(args.k)[0], *flags))
                print(f"{name} {i + 1}: {samples[name][-1]['first_revocation_s']:.2f}s", flush=True)
        desks: list[AlertDesk] = []
        with service_on_a_port(runtime, desks=desks) as port:
            desk = desks[0]
            warm_up = bench.seed(args.k)[0]
            _slack(bench, port, warm_up)
            _wait_runs_done(bench, warm_up)
            runners: dict[str, Callable[[str], dict[str, Any]]] = {
                "slack-warm": lambda agent: _slack(bench, port, agent),
                "alert-warm": lambda agent: _alert(bench, runtime, port, desk, agent),
            }
            for i in range(args.runs):
                for name, run in runners.items():
                    agent = bench.seed(args.k)[0]
                    samples[name].append(run(agent))
                    _wait_runs_done(bench, agent)
                    samples[name][-1].update(closed(bench, agent))
                    print(
                        f"{name} {i + 1}: {samples[name][-1]['first_revocation_s']:.2f}s",
                        flush=True,
                    )
        results["rows"] = {
            name: {
                "median_first_revocation_s": statistics.median(
                    s["first_revocation_s"] for s in rows
                ),
                "max_first_revocation_s": max(s["first_revocation_s"] for s in rows),
                "goal_s": GOALS[name],
                "all_proven": all(s["proven"] and s["all_dead"] for s in rows),
                "samples": rows,
            }
            for name, rows in samples.items()
        }
        results["load_avg_end"] = os.getloadavg()[0]
    finally:
        runtime.close()
        control.down(bench.home)
    print(write("startup", results))
    for name, row in results["rows"].items():
        print(f"{name}: {row['median_first_revocation_s']:.2f}s (goal {row['goal_s']}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
