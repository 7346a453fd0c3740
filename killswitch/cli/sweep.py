"""`killswitch sweep`: find zombies, orphans, stale, expired, long-lived and reused
credentials; notify owners, wait the grace period, contain, destroy."""

from __future__ import annotations

import typer

from killswitch.cli.common import (
    EXIT_NOT_PROVEN,
    EXIT_OK,
    JSON,
    QUIET,
    VERBOSE,
    emit_json,
    errors_handled,
    out,
    progress_to_stderr,
)
from killswitch.cli.common import actor as current_actor


def sweep(
    dry_run: bool = typer.Option(
        None,
        "--dry-run/--apply",
        help="Classify and show what would be done, changing nothing / act per policy. "
        "Default: a dry run until one sweep has been recorded, then act.",
    ),
    provider: list[str] = typer.Option([], "--provider", "-p", help="Only this provider."),
    agent: list[str] = typer.Option(
        [], "--agent", "-a", help="Only findings of this agent (repeatable)."
    ),
    break_glass: bool = typer.Option(
        False, "--break-glass", help="Run without Prefect (same sweep, same ledger)."
    ),
    via_deployment: bool = typer.Option(
        False,
        "--via-deployment",
        help="Run it as a flow run of the `zombie-sweep/scheduled` deployment that "
        "`killswitch serve` serves, with a signed ticket; wait for it and say how it ended.",
    ),
    limit: int = typer.Option(50, "--limit", help="Findings shown in the table (JSON: all)."),
    as_json: bool = JSON,
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
) -> None:
    """Zombie sweep: enumerate every NHI, classify it (zombie, orphan, stale, expired,
    long-lived, reused — with its OWASP NHI Top 10 item and a risk score), then act per
    the `sweep` settings: notify the owner, wait `notify_grace_s`, contain (proven by
    probes), wait `destroy_grace_s`, destroy. Exit 0: swept (findings are output, not
    failure) · 1: a provider could not be listed, a notice failed or a containment was
    not proven · 2: refused · 3: could not run."""
    from killswitch import pipeline
    from killswitch import sweep as sweeping
    from killswitch.guards import validate_agent_id
    from killswitch.runtime import Runtime
    from killswitch.settings import load_settings
    from killswitch.sweep.report import render_sweep, sweep_to_dict

    with errors_handled(as_json), progress_to_stderr(quiet):
        runtime = Runtime.open(load_settings())
        try:
            request = sweeping.SweepRequest(
                actor=current_actor(),
                dry_run=dry_run,
                providers=tuple(provider),
                agents=tuple(validate_agent_id(a) for a in agent),
            )
            if via_deployment:
                flow_run, state = pipeline.sweep_via_deployment(runtime, request, verbose=verbose)
            else:
                report = pipeline.sweep(runtime, request, break_glass=break_glass, verbose=verbose)
        finally:
            runtime.close()
    if via_deployment:
        ran = {"flow_run_id": flow_run, "state": state, "run_id": request.run_id}
        if as_json:
            emit_json(ran)
        else:
            out.print(f"flow run {flow_run}: {state} (sweep run {request.run_id})")
        raise typer.Exit(EXIT_OK if state == "COMPLETED" else EXIT_NOT_PROVEN)
    if as_json:
        emit_json(sweep_to_dict(report))
    else:
        render_sweep(out, report, limit)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_NOT_PROVEN)
