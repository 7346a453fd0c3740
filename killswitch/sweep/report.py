"""A sweep's report: its JSON shape and its table (findings riskiest first, then what the
sweep did or, in a dry run, would do)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from killswitch.codec import nhi_to_dict
from killswitch.sweep.classify import Finding
from killswitch.sweep.models import SweepReport


def finding_to_dict(finding: Finding) -> dict[str, Any]:
    return {
        "nhi": nhi_to_dict(finding.nhi),
        "categories": [c.value for c in finding.categories],
        "owasp": list(finding.owasp),
        "agents": list(finding.agent_ids),
        "owner": finding.owner,
        "reasons": list(finding.reasons),
        "likelihood": finding.likelihood,
        "impact": finding.impact,
        "score": finding.score,
        "protected": finding.protected,
    }


def sweep_to_dict(report: SweepReport) -> dict[str, Any]:
    return {
        "run_id": report.run_id,
        "ok": report.ok,
        "dry_run": report.dry_run,
        "first_run": report.first_run,
        "started_at": report.started_at.isoformat(),
        "total_s": round(report.total_s, 3),
        "discovered": [
            {"provider": r.provider, "seen": r.seen, "new": r.new, "gone": r.gone}
            for r in report.discovered
        ],
        "errors": list(report.errors),
        "findings": [finding_to_dict(f) for f in report.findings],
        "steps": [
            {
                "case": s.case,
                "action": s.action,
                "agent": s.agent_id,
                "category": s.category,
                "detail": s.detail,
                "ok": s.ok,
                "containment_run": s.containment_run,
            }
            for s in report.steps
        ],
    }


def findings_rows(report: SweepReport, limit: int | None = None) -> list[list[str]]:
    """The findings table's rows (also the Prefect artifact's)."""
    return [
        [
            str(f.score),
            ", ".join(c.value for c in f.categories),
            f.owasp[0].split(" ", 1)[0],
            f.nhi.provider,
            f.nhi.kind,
            f.nhi.ref,
            ", ".join(f.agent_ids) or "—",
            f.owner or "—",
            ("PROTECTED · " if f.protected else "") + f.reasons[0],
        ]
        for f in report.findings[:limit]
    ]


FINDING_COLUMNS = (
    "risk",
    "category",
    "OWASP",
    "provider",
    "kind",
    "ref",
    "agent",
    "owner",
    "why",
)


def render_sweep(console: Console, report: SweepReport, limit: int = 50) -> None:
    mode = "DRY RUN — nothing was changed" if report.dry_run else "acting"
    console.print(f"[bold]Zombie sweep[/] {report.run_id[:12]} · {mode}")
    if report.first_run and report.dry_run:
        console.print("  first sweep: a dry run; the next run acts (or pass --apply / --dry-run)")
    for r in report.discovered:
        console.print(f"  {r.provider}: {r.seen} NHIs enumerated ({r.new} new, {r.gone} gone)")
    table = Table(title=f"{len(report.findings)} finding(s), riskiest first")
    for column in FINDING_COLUMNS:
        table.add_column(column, overflow="fold")
    for row in findings_rows(report, limit):
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    if len(report.findings) > limit:
        console.print(f"  … and {len(report.findings) - limit} more (--json for all)")
    if report.steps:
        steps = Table(title="what the sweep " + ("would do" if report.dry_run else "did"))
        for column in ("action", "case", "ok", "detail"):
            steps.add_column(column, overflow="fold")
        for s in report.steps:
            mark = "[green]ok[/]" if s.ok else "[bold red]FAILED[/]"
            steps.add_row(s.action, escape(s.case), mark, escape(s.detail))
        console.print(steps)
    for error in report.errors:
        console.print(f"[bold red]error[/]: {escape(error)}")
    verdict = "[green]OK[/]" if report.ok else "[bold red]NOT OK[/] (see above)"
    console.print(f"sweep {verdict} in {report.total_s:.1f}s")
