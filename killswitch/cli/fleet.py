"""`killswitch contain --agents a,b | --agents-from FILE | --owner TEAM | --credential REF`:
plan once for the fleet, show its blast radius, confirm above the guard, contain every agent
(over the workers, or break-glass here), print one table. Exit 0 only when every credential
of every agent is proven."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from killswitch.cli.common import (
    EXIT_NOT_PROVEN,
    EXIT_OK,
    emit_json,
    err,
    errors_handled,
    out,
    progress_to_stderr,
)
from killswitch.errors import ConfirmationRequiredError
from killswitch.fleet.report import NOT_OK, Blast, FleetReport, summary_line
from killswitch.request import Mode, Request

VERDICT_STYLE = {"dead": "bold green", "alive": "bold red", "unverified": "yellow"}


def render_blast(console: Console, agents: int, blast: tuple[Blast, ...]) -> None:
    """Agents × credentials × grants per provider: what the fleet's run would touch."""
    table = Table(title=f"blast radius: {agents} agents")
    for column in ("provider", "agents", "credentials", "grants", "actions to take"):
        table.add_column(column, justify="left" if column == "provider" else "right")
    for b in blast:
        table.add_row(b.provider, str(b.agents), str(b.credentials), str(b.grants), str(b.actions))
    table.add_row(
        "[bold]total[/]",
        str(agents),
        str(sum(b.credentials for b in blast)),
        str(sum(b.grants for b in blast)),
        str(sum(b.actions for b in blast)),
    )
    console.print(table)


def render_fleet(console: Console, report: FleetReport) -> None:
    """Every credential of every agent with its verdict and evidence, then what was not."""
    table = Table(title=f"fleet {report.fleet_id[:12]} ({report.mode}): {report.reason}")
    for column in ("agent", "provider", "kind", "credential", "verdict", "evidence"):
        table.add_column(column)
    for agent in report.agents:
        for r in agent.rows:
            style = VERDICT_STYLE.get(r.verdict, "bold red")
            ref = r.ref if len(r.ref) <= 40 else "…" + r.ref[-39:]
            table.add_row(
                escape(r.agent_id),
                r.provider,
                r.kind,
                escape(ref),
                f"[{style}]{r.verdict.upper()}[/]",
                escape(r.evidence[:120]),
            )
    console.print(table)
    dead, total = report.count("dead"), sum(len(a.rows) for a in report.agents)
    console.print(
        f"{summary_line(report.agents)}; {dead}/{total} credentials dead, "
        f"{report.count('unverified')} unverified, in {report.elapsed_s:.1f}s; "
        f"ledger {'verified' if report.ledger_verified else '[bold red]NOT VERIFIED[/]'}"
    )
    for agent in report.not_proven:
        bad = [r for r in agent.rows if r.verdict in NOT_OK]
        console.print(
            f"[bold red]NOT PROVEN[/] {escape(agent.agent_id)} ({agent.state}"
            f"{'; ' + escape(agent.note) if agent.note else ''}): "
            f"{len(bad)} credential(s) alive or unknown — re-run the same command "
            "(what is contained stays contained; every verb is idempotent)"
        )
    for line in report.skipped:
        console.print(f"[yellow]skipped:[/] {escape(line)}")
    if report.ok:
        console.print("[bold green]FLEET PROVEN[/]")


def fleet_to_dict(report: FleetReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "fleet_id": report.fleet_id,
        "reason": report.reason,
        "mode": report.mode,
        "ledger_verified": report.ledger_verified,
        "elapsed_s": round(report.elapsed_s, 3),
        "blast_radius": [asdict(b) for b in report.blast],
        "not_proven": [a.agent_id for a in report.not_proven],
        "skipped": list(report.skipped),
        "agents": [
            {
                "agent": a.agent_id,
                "run_id": a.run_id,
                "state": a.state,
                "ok": a.ok,
                "note": a.note,
                "flow_run": a.flow_run,
                "worker": a.worker,
                "credentials": [asdict(r) for r in a.rows],
            }
            for a in report.agents
        ],
    }


def contain_fleet(
    *,
    agents: str | None,
    agents_from: Path | None,
    owner: str | None,
    credential: str | None,
    request: Request,
    yes: bool,
    as_json: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Select, plan once, show, confirm above the guard, run, report."""
    from dataclasses import replace

    from killswitch import pipeline
    from killswitch.cli.main import opened
    from killswitch.fleet.report import blast_radius
    from killswitch.fleet.selection import select

    with errors_handled(as_json), progress_to_stderr(quiet), opened() as runtime:
        chosen = select(
            runtime, agents=agents, agents_from=agents_from, owner=owner, credential=credential
        )
        fleet_id, plans = pipeline.plan_fleet(runtime, chosen.agents, request)
        blast = blast_radius(plans)
        render_blast(err, len(plans), blast)
        for line in chosen.skipped:
            err.print(f"[yellow]skipped:[/] {escape(line)}")
        if request.mode is Mode.DRY_RUN:
            if as_json:
                emit_json(
                    {
                        "ok": True,
                        "dry_run": True,
                        "fleet_id": fleet_id,
                        "agents": [p.agent.id for p in plans],
                        "blast_radius": [asdict(b) for b in blast],
                        "skipped": list(chosen.skipped),
                    }
                )
            raise typer.Exit(EXIT_OK)
        guard = runtime.settings.scale.confirm_over_agents
        if len(plans) > guard and not yes:
            question = f"contain {len(plans)} agents (more than {guard})?"
            if not (sys.stdin.isatty() and typer.confirm(question, err=True)):
                raise ConfirmationRequiredError(
                    f"{len(plans)} agents is more than the guard's {guard} "
                    "(scale.confirm_over_agents): nothing was changed",
                    remediation="Check the blast radius above, then run the same command "
                    "with --yes.",
                )
        report = pipeline.run_fleet(runtime, fleet_id, plans, mode=request.mode, verbose=verbose)
        report = replace(report, skipped=chosen.skipped)
    if as_json:
        emit_json(fleet_to_dict(report))
    else:
        render_fleet(out, report)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_NOT_PROVEN)
