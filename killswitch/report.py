"""Terminal rendering of plans and reports (rich). The `--json` shapes live in `codec`."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from killswitch.models import (
    ActionResult,
    ContainmentReport,
    Outcome,
    Plan,
    ProviderTiming,
    RestoreReport,
    VerdictStatus,
)

STYLE = {
    VerdictStatus.DEAD: "bold green",
    VerdictStatus.ALIVE: "bold red",
    VerdictStatus.UNVERIFIED: "yellow",
    VerdictStatus.UNKNOWN: "bold red",
}
OUTCOME_STYLE = {Outcome.DONE: "green", Outcome.ALREADY: "dim", Outcome.FAILED: "bold red"}


def _short(ref: str, width: int = 48) -> str:
    """Identifiers for humans: ARNs lose their partition/account prefix, long ones their head."""
    if ref.startswith("arn:") and ref.count(":") >= 5:
        ref = ref.split(":", 5)[5]
    return escape(ref if len(ref) <= width else "…" + ref[-(width - 1) :])


def _outcomes(results: tuple[ActionResult, ...]) -> str:
    return "\n".join(
        f"[{OUTCOME_STYLE[r.outcome]}]{r.action.operation}: {r.outcome.value}[/]" for r in results
    )


def render_plan(console: Console, plan: Plan) -> None:
    """The blast radius: every action a run would take, and what is already in place."""
    console.print(
        f"[bold]plan[/] for [bold]{plan.agent.id}[/] (owner {plan.agent.owner}, "
        f"status {plan.agent.status.value}) on target [bold]{plan.target}[/]"
    )
    table = Table(show_lines=False)
    for column in ("provider", "verb", "operation", "principal", "target", "state"):
        table.add_column(column)
    for a in plan.actions:
        state = "in place" if a.in_place else "pending"
        if not a.reversible:
            state += " [red](irreversible)[/]"
        table.add_row(
            a.provider,
            a.verb.value,
            a.operation,
            _short(a.principal, 40),
            _short(a.target, 40),
            state,
        )
    console.print(table)
    pending = sum(not a.in_place for a in plan.actions)
    console.print(
        f"{len(plan.credentials)} credential(s), {len(plan.grants)} grant(s); "
        f"{pending} action(s) to take, {len(plan.actions) - pending} already in place"
    )
    for principal in plan.protected_skipped:
        console.print(f"[yellow]protected, never touched:[/] {escape(principal)}")
    for error in plan.errors:
        console.print(f"[bold red]error:[/] {escape(error)}")
    for u in plan.unsearched:
        known = ", ".join(_short(c.ref, 32) for c in u.known) or "none known"
        console.print(
            f"[bold red]not searched:[/] {escape(u.provider)} — its credentials are not in "
            f"this plan and would stay uncontained ({len(u.known)} known: {known})"
        )


def render_containment(console: Console, report: ContainmentReport) -> None:
    """The final table: every credential, what was done to it, its verdict and the evidence."""
    if report.dry_run:
        render_plan(console, report.plan)
        console.print("[bold]dry run[/]: nothing was changed")
        return
    console.print(
        f"[bold]{report.workflow} {report.agent.id}[/] · target {report.target} · "
        f"mode {report.mode} · run {report.run_id[:12]}\nreason: {escape(report.reason)}"
    )
    table = Table(title="credentials", show_lines=True)
    for column in ("provider", "kind", "credential", "actions", "verdict", "evidence"):
        table.add_column(column, overflow="fold")
    for c in report.credentials:
        v = c.verdict
        table.add_row(
            c.credential.provider,
            c.credential.kind,
            _short(c.credential.ref),
            _outcomes(c.actions),
            f"[{STYLE[v.status]}]{v.status.value.upper()}[/]",
            escape(v.evidence),
        )
    console.print(table)
    if report.grants_detached:
        grants = Table(title="grants detached (recorded for undo)")
        for column in ("principal", "operation", "target", "outcome"):
            grants.add_column(column, overflow="fold")
        for r in report.grants_detached:
            grants.add_row(
                _short(r.action.principal, 40),
                r.action.operation,
                _short(r.action.target, 50),
                f"[{OUTCOME_STYLE[r.outcome]}]{r.outcome.value}[/] {escape(r.detail)}",
            )
        console.print(grants)
    unverified = [c for c in report.credentials if c.verdict.status is VerdictStatus.UNVERIFIED]
    if unverified:
        console.print("[yellow bold]unverified[/] (contained, but no secret to probe with):")
        for c in unverified:
            console.print(
                f"  {_short(c.credential.ref)}: {escape(c.verdict.evidence)}\n"
                f"    → {escape(c.verdict.to_prove)}"
            )
    for principal in report.plan.protected_skipped:
        console.print(f"[yellow]protected, never touched:[/] {escape(principal)}")
    if report.untouched_agents_checked:
        alive = sum(
            u.verdict.status is VerdictStatus.ALIVE for u in report.untouched_agents_checked
        )
        total = len(report.untouched_agents_checked)
        agents = sorted({u.agent_id for u in report.untouched_agents_checked})
        style = "green" if alive == total else "bold red"
        console.print(
            f"[{style}]untouched agents: {alive}/{total} credentials of "
            f"{len(agents)} other agents still authenticate[/]"
        )
    for error in report.errors:
        console.print(f"[bold red]error:[/] {escape(error)}")
    t = report.timings
    console.print(
        f"timings: plan {t.plan_s:.2f}s · contain {t.contain_s:.2f}s · "
        f"verify {t.verify_s:.2f}s · every credential proven at {t.proven_s:.2f}s · "
        f"total {t.total_s:.2f}s"
    )
    if len(t.providers) > 1:
        spans = " · ".join(f"{p.provider} {p.start_s:.2f}→{p.end_s:.2f}s" for p in t.providers)
        console.print(f"providers ran in parallel: {spans}")
    converging = [p for p in t.providers if p.converged_s is not None or p.flaps]
    if converging:
        console.print(
            "converged after containment (first rejection that held): " + converge_line(converging)
        )
    if report.ledger_verified is not None:
        console.print(
            "ledger chain: "
            + ("[green]verified[/]" if report.ledger_verified else "[bold red]BROKEN[/]")
        )
    counts = ", ".join(f"{report.count(s)} {s.value}" for s in VerdictStatus)
    if report.ok:
        done = "DECOMMISSIONED" if report.workflow == "decommission" else "CONTAINED"
        console.print(f"[bold green]{done} AND PROVEN[/]: {counts}")
    else:
        console.print(f"[bold red]NOT PROVEN — page on-call[/]: {counts}")


def converge_line(providers: Sequence[ProviderTiming]) -> str:
    """`aws 3.12s (1 flap) · slack 3.05s`: when each provider's rejections began to hold."""
    parts = []
    for p in providers:
        when = "not proven" if p.converged_s is None else f"{p.converged_s:.2f}s"
        plural = "s" if p.flaps != 1 else ""
        flaps = (
            f" [bold yellow]({p.flaps} flap{plural}: accepted after a rejection)[/]"
            if p.flaps
            else ""
        )
        parts.append(f"{p.provider} {when}{flaps}")
    return " · ".join(parts)


def render_restore(console: Console, report: RestoreReport) -> None:
    console.print(
        f"[bold]restore {report.agent.id}[/] · target {report.target} · "
        f"run {report.run_id[:12]}\nreason: {escape(report.reason)}"
    )
    table = Table(title="changes reversed")
    for column in ("provider", "operation undone", "target", "outcome"):
        table.add_column(column, overflow="fold")
    for r in report.results:
        table.add_row(
            r.action.provider,
            r.action.operation,
            _short(r.action.target, 50),
            f"[{OUTCOME_STYLE[r.outcome]}]{r.outcome.value}[/] {escape(r.detail)}",
        )
    console.print(table)
    for message in report.refused:
        console.print(f"[yellow]not restorable:[/] {escape(message)}")
    if report.checks:
        checks = Table(title="credentials probed after restore")
        for column in ("kind", "credential", "works again?", "evidence"):
            checks.add_column(column, overflow="fold")
        for credential, verdict in report.checks:
            ok = verdict.status is VerdictStatus.ALIVE
            checks.add_row(
                credential.kind,
                _short(credential.ref),
                "[green]yes[/]" if ok else f"[bold red]{verdict.status.value}[/]",
                escape(verdict.evidence),
            )
        console.print(checks)
    verdict_line = "[bold green]RESTORED[/]" if report.ok else "[bold red]RESTORE INCOMPLETE[/]"
    console.print(
        f"{verdict_line} · agent status {report.agent.status.value} · {report.total_s:.2f}s"
    )
