"""`make chaos`: every experiment in chaos/experiments/ through `chaos run`, one after the
other (each starts a sandbox of its own), journals in chaos/journals/, then the results
table in chaos/README.md between its markers, from the journals.

    python chaos/run.py                 # run them all, then write the table
    python chaos/run.py provider-down   # only these (by file name), then the table
    python chaos/run.py --report        # only the table, from the journals there are

Exit 0 only if every experiment run passed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
EXPERIMENTS = HERE / "experiments"
JOURNALS = HERE / "journals"
README = HERE / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def chaos_command(experiment: Path, journal: Path) -> list[str]:
    """`chaos run`, no version check (no network), its log beside the journal."""
    return [
        str(Path(sys.executable).parent / "chaos"),
        "--no-version-check",
        "--settings",
        str(JOURNALS / "settings.yaml"),  # none: nothing from ~/.chaostoolkit
        "--log-file",
        str(journal.with_suffix(".log")),
        "run",
        "--journal-path",
        str(journal),
        "--rollback-strategy",
        "always",
        str(experiment),
    ]


def run(experiment: Path) -> int:
    journal = JOURNALS / f"{experiment.stem}.json"
    env = dict(os.environ, PYTHONPATH=str(HERE))
    env.pop("KILLSWITCH_CHAOS_HOME", None)  # `make chaos`: a sandbox of each experiment's own
    started = time.monotonic()
    print(f"chaos: {experiment.stem} ...", file=sys.stderr, flush=True)
    done = subprocess.run(chaos_command(experiment, journal), env=env, check=False)  # noqa: S603
    verdict = result(json.loads(journal.read_text()))[0] if journal.exists() else "no journal"
    print(
        f"chaos: {experiment.stem}: {verdict} ({time.monotonic() - started:.0f} s)",
        file=sys.stderr,
        flush=True,
    )
    return done.returncode


def result(journal: dict[str, Any]) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """(passed | FAILED | DEVIATED…, the checks, the figures) of one journal."""
    before = journal.get("steady_states", {}).get("before") or {}
    after = journal.get("steady_states", {}).get("after") or {}
    findings: dict[str, Any] = {}
    failed_activities = []
    for run_ in journal.get("run", []):
        if run_["activity"]["name"] == "findings":
            findings = run_.get("output") or {}
        if run_["status"] != "succeeded":
            failed_activities.append(run_["activity"]["name"])
    checks: list[dict[str, Any]] = findings.get("checks", [])
    if journal.get("status") != "completed":
        verdict = f"FAILED ({journal.get('status')})"
    elif not before.get("steady_state_met"):
        verdict = "FAILED (steady state before)"
    elif journal.get("deviated") or not after.get("steady_state_met"):
        verdict = "DEVIATED"
    elif failed_activities:
        verdict = f"FAILED ({', '.join(failed_activities)})"
    elif not checks or not all(c["ok"] for c in checks):
        verdict = "FAILED (invariants)"
    else:
        verdict = "passed"
    return verdict, checks, findings.get("figures", {})


def _figures(slug: str, figures: dict[str, Any], journal: dict[str, Any]) -> str:
    """The figures cell: run time against the deadline, retries, fault rates, gaps."""
    parts: list[str] = []
    faults = figures.get("faults")
    if faults:
        parts.append(
            "faulted "
            + ", ".join(
                f"{p} {f['faulted']}/{f['requests']} ({f['rate']:.0%})" for p, f in faults.items()
            )
        )
    if "retries" in figures:
        r = figures["retries"]
        parts.append(
            f"{r['action_retries']} action retries, {r['probe_polls']} extra probe polls (ledger)"
        )
    for run_ in figures.get("runs", []):
        parts.append(f"{run_['agent']}: exit {run_['exit']} in {run_['wall_s']} s")
    for turn in figures.get("turns", []) + ([figures["turn"]] if "turn" in figures else []):
        if "proxy" in turn:
            parts.append(
                f"{turn['proxy']} ({', '.join(turn['providers'])}): exit {turn['exit']}, "
                f"{turn['unknown']} unknown, {turn['dead']} dead, run {turn['total_s']} s "
                f"(wall {turn['wall_s']} s) vs deadline {turn['deadline_s']:.0f} s"
            )
        elif "point" in turn:
            parts.append(
                f"{turn['point']}: killed at {turn['killed_after_s']} s, "
                f"unfinished {'listed' if turn['listed_unfinished'] else 'NOT listed'}, "
                f"re-run exit {turn['rerun_exit']}: "
                f"{turn.get('rerun', {}).get('dead', 0)} dead, "
                f"{turn.get('rerun', {}).get('unverified', 0)} unverified (already killed)"
            )
    for key in ("refused_s", "break_glass_s"):
        if key in figures:
            parts.append(f"{key.replace('_s', '').replace('_', '-')} {figures[key]} s")
    for name in ("concurrent",):
        for i, run_ in enumerate(figures.get(name, [])):
            parts.append(f"containment {i + 1}: exit {run_['exit']} in {run_['wall_s']} s")
    for name in ("sweep", "contain"):
        if isinstance(figures.get(name), dict):
            parts.append(f"{name}: exit {figures[name]['exit']} in {figures[name]['wall_s']} s")
    for name in ("locked", "disk_full"):
        if name in figures:
            f = figures[name]
            said = f["error"] or "no error line"
            rerun = f.get("rerun", {})
            parts.append(
                f"{name.replace('_', ' ')}: exit {f['exit']} ({said}), {f['entries']} entries "
                f"of the run; re-run {rerun.get('dead', 0)} dead, "
                f"{rerun.get('unverified', 0)} unverified (already killed)"
            )
    if "lag_s" in figures:
        windows = figures["settle_s"]
        for p, gap in figures.get("first_dead_after_kill_s", {}).items():
            parts.append(f"{p}: first dead {gap} s after its first kill (settle {windows[p]} s)")
        parts.insert(0, f"lag {figures['lag_s']} s")
    if figures.get("not_faulted"):
        parts.append(
            "NOT faulted: " + "; ".join(f"{p} ({why})" for p, why in figures["not_faulted"].items())
        )
    bystanders = figures.get("bystanders")
    if bystanders:
        parts.append(f"bystanders {bystanders['alive']}/{bystanders['credentials']} alive")
    duration = journal.get("duration")
    if duration:
        parts.append(f"experiment {duration:.0f} s")
    return "; ".join(parts).replace("|", "/")


def table() -> str:
    rows = [
        "| experiment | invariant | result | figures |",
        "|---|---|---|---|",
    ]
    for experiment in sorted(EXPERIMENTS.glob("*.json")):
        spec = json.loads(experiment.read_text())
        [ext] = [e for e in spec.get("extensions", []) if e.get("name") == "killswitch"]
        journal_path = JOURNALS / f"{experiment.stem}.json"
        if not journal_path.exists():
            rows.append(f"| {spec['title']} | {ext['invariant']} | not run | |")
            continue
        journal = json.loads(journal_path.read_text())
        verdict, checks, figures = result(journal)
        broken = [c for c in checks if not c["ok"]]
        if broken:
            verdict += ": " + "; ".join(f"{c['name']} ({c['detail']})" for c in broken[:4])
        rows.append(
            f"| {spec['title']} | {ext['invariant']} | {verdict.replace('|', '/')} "
            f"| {_figures(experiment.stem, figures, journal)} |"
        )
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return "\n".join([f"Last written {stamp} by `make chaos` from `chaos/journals/`.", "", *rows])


def write_readme() -> None:
    text = README.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    README.write_text(f"{head}{BEGIN}\n{table()}\n{END}{tail}")


def main(argv: list[str]) -> int:
    JOURNALS.mkdir(exist_ok=True)
    if argv[:1] == ["--report"]:
        write_readme()
        return 0
    wanted = set(argv)
    chosen = [e for e in sorted(EXPERIMENTS.glob("*.json")) if not wanted or e.stem in wanted]
    codes = [run(e) for e in chosen]
    write_readme()
    verdicts = [
        result(json.loads((JOURNALS / f"{e.stem}.json").read_text()))[0]
        if (JOURNALS / f"{e.stem}.json").exists()
        else "no journal"
        for e in chosen
    ]
    return 0 if all(v == "passed" for v in verdicts) and not any(codes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
