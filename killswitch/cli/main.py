"""`killswitch`: contain, restore, demo, audit, sandbox, inventory, permissions.

Entry points parse, authorize and start a run; no business logic here.
Exit codes: 0 proven / ok · 1 not proven (a credential alive or unknown, or a check failed)
· 2 refused (bad input, unknown or protected agent; nothing changed) · 3 could not run.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from killswitch.cli import audit, inventory, playbook, sandbox, scale, sweep
from killswitch.cli.common import (
    EXIT_NOT_PROVEN,
    EXIT_OK,
    JSON,
    QUIET,
    VERBOSE,
    emit_json,
    err,
    errors_handled,
    out,
    progress_to_stderr,
)
from killswitch.cli.common import actor as current_actor
from killswitch.request import Mode, Request, Workflow
from revokers.registry import PACKAGES

if TYPE_CHECKING:  # imported where used: every CLI process pays each import (issue 19)
    from killswitch.runtime import Runtime
    from killswitch.settings import Settings

app = typer.Typer(
    name="killswitch",
    help="Kill switch for AI-agent credentials: contain an agent everywhere, prove every "
    "credential dead, restore a false positive, audit the record.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(audit.app, name="audit")
app.command("sweep")(sweep.sweep)
app.add_typer(inventory.app, name="inventory")
app.add_typer(playbook.app, name="playbook")
app.add_typer(scale.app, name="scale")


@contextmanager
def opened(settings: Settings | None = None) -> Iterator[Runtime]:
    """A runtime for one command (the warm service keeps one for its whole life)."""
    from killswitch.runtime import Runtime
    from killswitch.settings import load_settings

    runtime = Runtime.open(settings or load_settings())
    try:
        yield runtime
    finally:
        runtime.close()


def _contain(request: Request, *, as_json: bool, quiet: bool, verbose: bool) -> None:
    """Start a containment (or decommission) from the CLI and print its report."""
    from killswitch import pipeline
    from killswitch.codec import report_to_dict
    from killswitch.report import render_containment

    with errors_handled(as_json), progress_to_stderr(quiet), opened() as runtime:
        report = pipeline.contain(runtime, request, verbose=verbose)
    if as_json:
        emit_json(report_to_dict(report))
    else:
        render_containment(out, report)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_NOT_PROVEN)


def _mode(dry_run: bool, break_glass: bool) -> Mode:
    return Mode.DRY_RUN if dry_run else Mode.BREAK_GLASS if break_glass else Mode.FLOW


@app.command()
def contain(
    agent_id: str | None = typer.Argument(
        None, help="The agent to contain (one id; no wildcards). A fleet: the options below."
    ),
    reason: str = typer.Option(..., "--reason", "-r", help="Why (goes into the ledger)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; change nothing."),
    break_glass: bool = typer.Option(
        False,
        "--break-glass",
        help="Run without Prefect (orchestrator down): same plan, same revokers, same ledger.",
    ),
    agents: str | None = typer.Option(
        None, "--agents", help="A fleet: agent ids, comma-separated (each as strict as one)."
    ),
    agents_from: Path | None = typer.Option(
        None, "--agents-from", help="A fleet: a file of agent ids, one a line (# comments)."
    ),
    owner: str | None = typer.Option(None, "--owner", help="A fleet: every agent of this owner."),
    credential: str | None = typer.Option(
        None,
        "--credential",
        help="A fleet: every agent holding this credential (kind:ref or ref) — a leaked "
        "shared secret.",
    ),
    yes: bool = typer.Option(
        False, "--yes", help="A fleet above scale.confirm_over_agents: confirm without asking."
    ),
    as_json: bool = JSON,
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
) -> None:
    """Contain an agent (or a fleet): kill every credential, detach its grants, prove each
    one dead."""
    fleet = any(x is not None for x in (agents, agents_from, owner, credential))
    if fleet:
        from killswitch.cli.fleet import contain_fleet

        if agent_id is not None:
            with errors_handled(as_json):
                from killswitch.errors import RefusedError

                raise RefusedError("give one AGENT_ID or a fleet (--agents …), not both")
        template = Request("-", reason, current_actor(), "cli", _mode(dry_run, break_glass))
        contain_fleet(
            agents=agents,
            agents_from=agents_from,
            owner=owner,
            credential=credential,
            request=template,
            yes=yes,
            as_json=as_json,
            quiet=quiet,
            verbose=verbose,
        )
        return
    if agent_id is None:
        with errors_handled(as_json):
            from killswitch.errors import RefusedError

            raise RefusedError("name the agent to contain (or a fleet: --agents, --owner …)")
    request = Request(agent_id, reason, current_actor(), "cli", _mode(dry_run, break_glass))
    _contain(request, as_json=as_json, quiet=quiet, verbose=verbose)


@app.command()
def decommission(
    agent_id: str = typer.Argument(..., help="The agent to retire for good (one id)."),
    reason: str = typer.Option(..., "--reason", "-r", help="Why (goes into the ledger)."),
    yes: bool = typer.Option(False, "--yes", help="Confirm: deletion cannot be undone."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; change nothing."),
    break_glass: bool = typer.Option(False, "--break-glass", help="Run without Prefect."),
    as_json: bool = JSON,
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
) -> None:
    """Retire an agent: contain it, then delete every credential for good, proving each dead."""
    from killswitch.errors import ConfirmationRequiredError

    if not (yes or dry_run):
        with errors_handled(as_json):
            raise ConfirmationRequiredError(
                f"decommissioning {agent_id!r} deletes its credentials for good and cannot be "
                "restored"
            )
    request = Request(
        agent_id,
        reason,
        current_actor(),
        "cli",
        _mode(dry_run, break_glass),
        workflow=Workflow.DECOMMISSION,
    )
    _contain(request, as_json=as_json, quiet=quiet, verbose=verbose)


@app.command()
def restore(
    agent_id: str = typer.Argument(..., help="The agent whose containment was a false positive."),
    reason: str = typer.Option(..., "--reason", "-r", help="Why (goes into the ledger)."),
    break_glass: bool = typer.Option(False, "--break-glass", help="Run without Prefect."),
    as_json: bool = JSON,
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
) -> None:
    """Undo a containment: reverse exactly the recorded changes, then prove the keys work."""
    from killswitch import pipeline
    from killswitch.codec import restore_to_dict
    from killswitch.report import render_restore

    request = Request(
        agent_id,
        reason,
        current_actor(),
        "cli",
        _mode(False, break_glass),
        workflow=Workflow.RESTORE,
    )
    with errors_handled(as_json), progress_to_stderr(quiet), opened() as runtime:
        report = pipeline.restore(runtime, request, verbose=verbose)
    if as_json:
        emit_json(restore_to_dict(report))
    else:
        render_restore(out, report)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_NOT_PROVEN)


@app.command()
def demo(
    as_json: bool = JSON,
    break_glass: bool = typer.Option(False, "--break-glass", help="Contain without Prefect."),
    via_slack: bool = typer.Option(
        False, "--via-slack", help="Go through `/killswitch` in Slack (the sandbox's stand-in)."
    ),
    via_alert: bool = typer.Option(
        False,
        "--via-alert",
        help="Go through the alert receiver: a leaked-key event, signed as its sender signs it.",
    ),
    save_alert: Path | None = typer.Option(
        None, "--save-alert", help="With --via-alert: write the alert's body here (no secrets)."
    ),
    quiet: bool = QUIET,
) -> None:
    """Start the sandbox (fresh fleet), contain its compromised agent, and prove it."""
    if via_slack:
        _demo_via_slack(as_json, quiet)
        return
    if via_alert:
        _demo_via_alert(as_json, quiet, save_alert)
        return
    from killswitch import pipeline
    from killswitch.codec import report_to_dict
    from killswitch.report import render_containment
    from killswitch.sandbox import control, fleet
    from killswitch.sandbox.state import Paths
    from killswitch.settings import default_home, load_settings

    with errors_handled(as_json), progress_to_stderr(quiet):
        home = default_home()
        control.up(home, reset=True)
        settings = load_settings(profile=Paths.under(home).profile)
        request = Request(
            agent_id=fleet.DEMO_AGENT,
            reason="demo: an access key of research-agent-7 was found in a public repository",
            actor=current_actor(),
            trigger="demo",
            mode=_mode(False, break_glass),
        )
        with opened(settings) as runtime:
            report = pipeline.contain(runtime, request, check_untouched=True)
    if as_json:
        emit_json(report_to_dict(report))
    else:
        render_containment(out, report)
        err.print(
            "\nThe sandbox keeps running: `killswitch sandbox status`, "
            f"`killswitch restore {fleet.DEMO_AGENT} --reason ...`, "
            "`killswitch audit verify`, `killswitch sandbox down`."
        )
    raise typer.Exit(EXIT_OK if report.ok else EXIT_NOT_PROVEN)


def _demo_via_slack(as_json: bool, quiet: bool) -> None:
    from killswitch.sandbox import control, fleet
    from killswitch.sandbox.slack import demo as slack_demo
    from killswitch.sandbox.state import Paths
    from killswitch.settings import default_home, load_settings

    with errors_handled(as_json), progress_to_stderr(quiet):
        home = default_home()
        status = control.up(home, reset=True)
        with opened(load_settings(profile=Paths.under(home).profile)) as runtime:
            run = slack_demo.drive(
                runtime,
                status,
                fleet.DEMO_AGENT,
                "a key of research-agent-7 was found in a public repo",
            )
    if as_json:
        emit_json(
            {
                "ok": run.proven,
                "ack_s": round(run.ack_s, 4),
                "ack": run.ack_text,
                "thread": run.thread,
            }
        )
    else:
        out.print(
            f"/killswitch contain {fleet.DEMO_AGENT} … → ack in {run.ack_s:.2f}s: {run.ack_text}"
        )
        for line in run.thread:
            out.print(f"  │ {line}")
    raise typer.Exit(EXIT_OK if run.proven else EXIT_NOT_PROVEN)


def _demo_via_alert(as_json: bool, quiet: bool, save: Path | None) -> None:
    from killswitch.codec import report_to_dict
    from killswitch.report import render_containment
    from killswitch.sandbox import alert_demo, control, fleet
    from killswitch.sandbox.state import Paths
    from killswitch.settings import default_home, load_settings

    with errors_handled(as_json), progress_to_stderr(quiet):
        home = default_home()
        control.up(home, reset=True)
        with opened(load_settings(profile=Paths.under(home).profile)) as runtime:
            run = alert_demo.drive(runtime, fleet.DEMO_AGENT, save=save)
    report = run.report
    if as_json:
        emit_json(
            {
                "alert": run.answer,
                "answered_s": round(run.answered_s, 4),
                "proven_s": round(run.proven_s, 4),
                "report": report_to_dict(report),
            }
        )
    else:
        out.print(
            f"{run.sent} → 202 in {run.answered_s:.2f}s: {run.answer['decision']} by playbook "
            f"{run.answer['playbook']}"
        )
        render_containment(out, report)
        out.print(f"from the alert's arrival to the last verdict: {run.proven_s:.2f}s")
    raise typer.Exit(EXIT_OK if report.ok else EXIT_NOT_PROVEN)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(
        8787, "--port", help="Port (Slack's request URL /slack/events; alerts /alerts/<source>)."
    ),
) -> None:
    """The warm service: `/killswitch` in Slack at /slack/events and the alert receiver at
    /alerts/<source> (signed or authenticated requests only), and the scheduled sweep.
    Refuses to start when a playbook is invalid."""
    import logging

    from killswitch import service

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per Prefect API call
    with errors_handled(False), opened() as runtime:
        from killswitch.alerts.settings import enabled_sources

        sources = ", ".join(enabled_sources(runtime.settings.alerts)) or "none"
        err.print(
            f"killswitch serve: target {runtime.settings.target}, http://{host}:{port} "
            f"(/slack/events; /alerts/<source>, enabled: {sources})"
        )
        service.serve(runtime, host, port)


@app.command()
def permissions(
    provider: str = typer.Argument(
        ..., help="A registered provider: " + ", ".join(p.rsplit(".", 1)[1] for p in PACKAGES)
    ),
) -> None:
    """Print the least-privilege policy the kill switch's own identity needs at a provider."""
    from revokers.base import registered

    with errors_handled(False):
        available = registered()
        if provider not in available:
            from killswitch.errors import ConfigurationError

            raise ConfigurationError(
                f"unknown provider {provider!r}; known: {', '.join(sorted(available))}"
            )
        revoker = available[provider]
        out.print_json(
            json.dumps(
                {
                    "provider": provider,
                    "by_verb": {verb: list(perms) for verb, perms in revoker.permissions.items()},
                    "policy": revoker.permission_policy(),
                }
            )
        )


def main() -> None:
    try:
        app()
    except SystemExit as exc:
        from killswitch.deadlines import abandoned
        from killswitch.orchestrator import UNREACHABLE

        if abandoned() or UNREACHABLE:
            # A silent provider's discovery was given up on (read-only; the report is out),
            # or the Prefect API is unreachable (Prefect's exit-time drains would retry it):
            # do not let the interpreter wait for their client timeouts at exit.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(exc.code if isinstance(exc.code, int) else 1)
        raise
