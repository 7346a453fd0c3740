"""Write the results tables into bench/README.md (between its `results` markers)."""

from __future__ import annotations

import json
import re
from typing import Any

from bench.harness import RESULTS, ROOT

README = ROOT / "bench" / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
PEER_START, PEER_END = "<!-- peer:start -->", "<!-- peer:end -->"


def _containment(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| K | L ms | serial | parallel | flow-warm | cli-cold | bound | serial / parallel "
        "| flow-warm / bound | flow-warm / round trips | provider calls |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        calls = r.get("calls", {})
        trips = r.get("round_trip_bound_s") or r["bound_s"]
        lines.append(
            f"| {r['K_actual']} | {r['L']:.0f} | {r['serial_s']:.2f} | {r['parallel_s']:.2f} "
            f"| {r['flow_warm_s']:.2f} | {r['cli_cold_s']:.2f} | {r['bound_s']:.2f} "
            f"| **{r['serial_over_parallel']:.1f}** | **{r['flow_warm_over_bound']:.1f}** "
            f"| {r['flow_warm_s'] / trips:.1f} "
            f"| {' · '.join(f'{k} {v}' for k, v in sorted(calls.items()))} |"
        )
    runs = sorted({r.get("flow_warm_runs", 0) for r in rows})
    lines.append("")
    lines.append(
        f"Medians of {', '.join(map(str, runs))} run(s) each (serial: one run where it "
        "takes minutes); seconds from the start of the run until every credential "
        f"was proven dead. Machine: {rows[0]['machine'] if rows else '?'}; the stand-ins "
        "on the other core. *bound*: L × 3 dependent round trips plus the longest settle "
        "window in the mix "
        "(a rejection must hold that long before it is `dead`), or the stand-ins' capacity "
        "for the calls made, whichever is larger; *round trips*: the same without the "
        "settle window."
    )
    phased = [r for r in rows if r.get("flow_warm_providers")]
    if phased:
        r = max(phased, key=lambda r: (r["L"], r["K"] == 60, r["K"]))
        lines += [
            "",
            f"Per provider, flow-warm, K = {r['K_actual']}, L = {r['L']:.0f} (seconds from "
            "the start of the run; one run):",
            "",
            "| provider | starts | contain phase | probe phase | ends |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, t in r["flow_warm_providers"].items():
            lines.append(
                f"| {name} | {t['start_s']:.2f} | {t['contain_s']:.2f} | {t['verify_s']:.2f} "
                f"| {t['end_s']:.2f} |"
            )
    return "\n".join(lines)


STARTUP_ROWS = {
    "cli-break-glass": "`killswitch contain --break-glass`, fresh process, to the first revocation",
    "cli-flow": "`killswitch contain` (flow), fresh process, running Prefect server, "
    "to the first revocation",
    "slack-warm": "a Slack slash command to the first revocation, warm service",
    "alert-warm": "an alert (AWS Health event) to the first revocation, warm service",
}


def _startup(data: dict[str, Any]) -> str:
    lines = [
        "| figure | goal | median | worst | met |",
        "|---|---:|---:|---:|---|",
    ]
    for name, row in data["rows"].items():
        median = row["median_first_revocation_s"]
        lines.append(
            f"| {STARTUP_ROWS.get(name, name)} | ≤ {row['goal_s']:g} s | {median:.2f} s "
            f"| {row['max_first_revocation_s']:.2f} s "
            f"| {'yes' if median <= row['goal_s'] else 'no'} |"
        )
    imports = data.get("imports_s", {})
    short = [name for name, row in data["rows"].items() if not row.get("all_proven", True)]
    proof = (
        f"NOT every run proven with every verdict dead: {', '.join(short)}"
        if short
        else "every run proven, every verdict dead"
    )
    lines.append("")
    lines.append(
        f"Medians of {data['runs']} run(s), each a fresh agent of {data['k']} credentials over "
        f"every provider; {proof}. Importing the CLI: "
        f"{imports.get('killswitch.cli.main', 0):.2f} s. Machine: {data['machine']}."
    )
    return "\n".join(lines)


def _fleet(data: dict[str, Any]) -> str:
    return (
        f"{data['credentials']} credentials of {data['agents']} agents "
        f"({data['concurrent_containments']} containments at a time, {data['latency_ms']:.0f} ms "
        f"per call): **{data['credentials_per_s']:.1f} credentials/s**, all proven: "
        f"{data['all_proven']}. The stand-ins could have served these "
        f"{sum(data['calls'].values())} calls at most at "
        f"{data['ceiling_credentials_per_s']:.1f} credentials/s "
        f"({100 * data['fraction_of_ceiling']:.0f}% of that ceiling reached)."
    )


def _fleet_server(data: dict[str, Any]) -> str:
    runs = data["runs"]
    parts = list(runs[0].get("cpu_s", {})) if runs else []
    lines = [
        "Through the scaled-out stack (PostgreSQL, a Prefect server, N workers: "
        "`python -m bench.fleet --via-server`), a fleet of agents planned once and contained "
        "in lanes:",
        "",
        "| workers | credentials | s | proven/s | ceiling/s | of ceiling | replay/s | of replay "
        "| orchestration s/agent | containment s/agent | slot wait ms (mean) | cores busy | "
        + " | ".join(f"CPU s: {p}" for p in parts)
        + " | all proven |",
        "|" + "---:|" * (12 + len(parts)) + "---|",
    ]
    for r in runs:
        cpu = r.get("cpu_s", {})
        lines.append(
            f"| {r['workers']} | {r['credentials']} | {r['seconds']:.1f} | "
            f"{r['credentials_per_s']:.1f} | {r['ceiling_credentials_per_s']:.0f} | "
            f"{100 * r['fraction_of_ceiling']:.0f}% | "
            f"{r.get('replay_credentials_per_s') or 0:.0f} | "
            f"**{100 * (r.get('fraction_of_replay') or 0):.0f}%** | "
            f"{r['orchestration_s_per_agent'] or 0:.2f} | "
            f"{r['containment_s_per_agent'] or 0:.2f} | "
            f"{r['slot_acquire_ms_mean'] or 0:.0f} | {r.get('cores_busy', 0):.2f} | "
            + " | ".join(f"{cpu.get(p, 0):.0f}" for p in parts)
            + f" | {r['all_proven']} |"
        )
    lines += [
        "",
        f"{runs[0]['latency_ms']:.0f} ms on every provider call; *ceiling*: the credentials "
        "per second the stand-ins could have served for the calls made, each measured alone "
        "with the machine to itself; *replay*: the same number of calls per stand-in replayed "
        "against the sandbox all at once, as fast as it serves them (no latency): what the "
        "stand-ins can serve on this machine, where they share one process and the cores; "
        "*orchestration*: from the fleet's first plan to each agent's "
        "containment starting (lanes created, a worker's poll, the lane's process, admission, "
        "waiting for a place in its lane); machine: "
        f"{data['machine']}.",
    ]
    return "\n".join(lines)


def _sweep(data: dict[str, Any]) -> str:
    lines = [
        "Sweep discovery (OpenAI keys, paged 100 at a time; `tracemalloc` on, which slows it):",
        "",
        "| NHIs | discover s | NHIs/s | peak traced MiB | classify s |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in data["openai"]:
        lines.append(
            f"| {r['n']} | {r['discover_s']:.1f} | {r['nhis_per_s']:.0f} "
            f"| {r['peak_traced_mb']:.2f} | {r['classify_s']:.2f} |"
        )
    aws = data["aws"]
    lines.append("")
    lines.append(
        f"AWS: {aws['nhis']} keys and roles enumerated at {aws['nhis_per_s']:.0f}/s "
        f"({aws['calls']} calls; {100 * (aws['fraction_of_ceiling'] or 0):.0f}% of moto's "
        f"{aws['moto_ceiling_rps']:.0f} requests/s)."
    )
    return "\n".join(lines)


def _peer_proves(row: dict[str, Any]) -> str:
    runs = row["runs"]
    if row["tool"] == "c7n":
        inactive = sum(r["keys_inactive"] for r in runs)
        keys = sum(r["keys"] for r in runs)
        left = sum(r["group_memberships_left"] for r in runs)
        moto = {v for r in runs for v in r["disabled_key_on_moto"].values()}
        return (
            f"{inactive}/{keys} keys read back Inactive, {left} group memberships left; "
            f"no probe — a disabled key's own call on moto: {', '.join(sorted(moto))}"
        )
    dead = sum(r["keys_dead_with_evidence"] for r in runs)
    keys = sum(r["keys"] for r in runs)
    groups = sum(r["group_memberships_removed"] for r in runs)
    ok = all(r["ok"] for r in runs)
    return (
        f"{dead}/{keys} keys `dead` with probe evidence, {groups} group memberships removed, "
        f"report ok: {ok}"
    )


def _peer(data: dict[str, Any]) -> str:
    modes = {
        "c7n": ("Cloud Custodian", "`custodian run` (subprocess)"),
        "break_glass": ("killswitch", "break-glass (in process)"),
        "flow_warm": ("killswitch", "warm flow (in process)"),
    }
    lines = [
        "| tool | mode | L ms | seconds | of which | AWS calls | what it proves afterwards |",
        "|---|---|---:|---:|---|---:|---|",
    ]
    for r in data["rows"]:
        tool, mode = modes[r["tool"]]
        part = (
            f"policy execution {r['execution_s']:.2f}"
            if r["tool"] == "c7n"
            else f"all proven dead at {r['proven_s']:.2f}"
        )
        lines.append(
            f"| {tool} | {mode} | {r['L']:.0f} | {r['seconds']:.2f} | {part} "
            f"| {r.get('aws_calls', 0):.0f} | {_peer_proves(r)} |"
        )
    agent = data["agent"]
    runs = sorted({len(r["runs"]) for r in data["rows"]})
    lines.append("")
    lines.append(
        f"Medians of {', '.join(map(str, runs))} run(s), each on a fresh agent of "
        f"{agent['users']} IAM users × {agent['keys_per_user']} keys in "
        f"{len(agent['groups'])} groups; seconds are wall time of the whole command or call. "
        f"c7n {data['c7n']}. Machine: {data['machine']}."
    )
    users = [n for r in data["rows"] for n in r.get("account_users", [])]
    if users:
        lines.append("")
        lines.append(
            f"IAM users in the account when a run started: {min(users)}–{max(users)} (one agent "
            "more per run; the tools take turns, so each saw the same sizes). "
            "AWS calls are those made through the fault proxy during the run."
        )
    load = data.get("load_average_1m")
    if load:
        lines.append(
            f"Load average (1 min) at the start and end: {load['start']:.1f}, {load['end']:.1f}."
        )
    return "\n".join(lines)


def main() -> int:
    parts = []
    containment = RESULTS / "containment.json"
    if containment.exists():
        parts.append(_containment(json.loads(containment.read_text())))
    ceilings = RESULTS / "ceilings.json"
    if ceilings.exists():
        rps = json.loads(ceilings.read_text())["requests_per_s"]
        parts.append(
            "Stand-ins' own ceilings, measured alone (requests/s): "
            + ", ".join(f"{k} {v:.0f}" for k, v in rps.items())
            + "."
        )
    startup = RESULTS / "startup.json"
    if startup.exists():
        parts.append(_startup(json.loads(startup.read_text())))
    fleet = RESULTS / "fleet.json"
    if fleet.exists():
        parts.append(_fleet(json.loads(fleet.read_text())))
    fleet_server = RESULTS / "fleet_server.json"
    if fleet_server.exists() and json.loads(fleet_server.read_text()).get("runs"):
        parts.append(_fleet_server(json.loads(fleet_server.read_text())))
    sweep = RESULTS / "sweep.json"
    if sweep.exists():
        parts.append(_sweep(json.loads(sweep.read_text())))
    body = "\n\n".join(parts) or "(no results yet: run `make bench`)"
    text = README.read_text()
    text = re.sub(
        re.escape(START) + r".*?" + re.escape(END), f"{START}\n{body}\n{END}", text, flags=re.S
    )
    peer = RESULTS / "peer.json"
    if peer.exists() and PEER_START in text:
        body = _peer(json.loads(peer.read_text()))
        text = re.sub(
            re.escape(PEER_START) + r".*?" + re.escape(PEER_END),
            f"{PEER_START}\n{body}\n{PEER_END}",
            text,
            flags=re.S,
        )
    README.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
