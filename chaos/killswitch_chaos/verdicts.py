"""Reading what a containment reported, and the ledger it wrote, for the invariants."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from killswitch_chaos.lab import Lab, Ran


def by_provider(report: dict[str, Any]) -> dict[str, Counter[str]]:
    """provider -> Counter of verdicts."""
    seen: dict[str, Counter[str]] = {}
    for c in report.get("credentials", []):
        seen.setdefault(c["provider"], Counter())[c["verdict"]] += 1
    return seen


def keys(report: dict[str, Any], providers: Iterable[str] | None = None) -> set[str]:
    """The plan's (or report's) credential keys `kind:ref`, of some providers or all."""
    wanted = set(providers) if providers is not None else None
    rows = report.get("credentials") or report.get("plan", {}).get("credentials", [])
    return {f"{c['kind']}:{c['ref']}" for c in rows if wanted is None or c["provider"] in wanted}


def plan_shape(report: dict[str, Any]) -> tuple[list[str], list[str]]:
    """A dry run's credentials and grants, sorted: what `restore` must return exactly."""
    plan = report["plan"]
    credentials = sorted(f"{c['kind']}:{c['ref']}" for c in plan["credentials"])
    grants = sorted(json.dumps(g, sort_keys=True) for g in plan.get("grants", []))
    return credentials, grants


def all_dead(
    current: Lab, label: str, ran: Ran, agent: str, *, expect_exit: int = 0
) -> dict[str, Any]:
    """Checks: the exit code, no traceback, every seeded credential named and `dead`."""
    current.check(f"{label}: exit {expect_exit}", ran.code == expect_exit, f"exit {ran.code}")
    current.check(f"{label}: no traceback", "Traceback" not in ran.stderr)
    try:
        report: dict[str, Any] = ran.json()
    except ValueError:
        current.check(f"{label}: a JSON report", False, ran.stderr[-300:])
        return {}
    verdicts = by_provider(report)
    seeded = current.seeded.get(agent, {})
    missing = {
        p: n - sum(verdicts.get(p, Counter()).values())
        for p, n in seeded.items()
        if sum(verdicts.get(p, Counter()).values()) < n
    }
    current.check(f"{label}: every seeded credential named", not missing, f"missing {missing}")
    not_dead = {p: dict(v) for p, v in verdicts.items() if set(v) != {"dead"}}
    current.check(f"{label}: every credential dead", not not_dead, f"not dead: {not_dead}")
    return report


def entries(ledger: Path, run_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The ledger rows of some runs (read-only, beside a writer)."""
    wanted = list(run_ids)
    if not wanted:
        return []
    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=30)
    try:
        db.row_factory = sqlite3.Row
        marks = ",".join("?" * len(wanted))
        rows = db.execute(
            f"SELECT * FROM entries WHERE run_id IN ({marks}) ORDER BY seq",  # noqa: S608
            wanted,
        ).fetchall()
    finally:
        db.close()
    return [{**dict(r), "detail": json.loads(r["detail"] or "{}")} for r in rows]


def retries(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Retries the ledger shows: action entries' extra attempts, probe entries' extra polls."""
    actions = sum(
        max(0, int(r["detail"].get("attempts", 1)) - 1)
        for r in rows
        if r["action"] not in ("plan", "contain", "probe") and "verb" in r["detail"]
    )
    probes = sum(
        max(0, int(r["detail"].get("attempts", 1)) - 1) for r in rows if r["action"] == "probe"
    )
    recorded = sum(1 for r in rows if "attempts" in r["detail"] and r["action"] != "probe")
    return {"action_retries": actions, "probe_polls": probes, "actions_with_attempts": recorded}
