"""`killswitch audit verify | anchor | show | export | unfinished`: the tamper-evident record.

Audit commands open the ledger as it is: they never create a ledger, a key or a table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from killswitch.cli.common import EXIT_FAILED, EXIT_OK, JSON, emit_json, errors_handled, out
from killswitch.errors import ConfigurationError

if TYPE_CHECKING:  # the ledger (and its anchors) only for the audit commands themselves
    from killswitch.ledger import Ledger

app = typer.Typer(
    help="The ledger: verify its hash chain, show or export entries.", no_args_is_help=True
)
LEDGER = typer.Option(None, "--ledger", help="A ledger file (default: the configured one).")


NO_ANCHOR = "no external anchor configured: a rollback of the newest entries cannot be detected"


def _open(path: Path | None) -> Ledger:
    from killswitch.ledger_key import open_ledger
    from killswitch.settings import load_settings

    return open_ledger(load_settings(), path, create=False)


@app.command()
def verify(as_json: bool = JSON, ledger: Path = LEDGER) -> None:
    """Exit 0 if and only if the chain is intact and no anchor says it once held more; exit 1
    on tampering; exit 3 when an anchor cannot be read (a rollback cannot be ruled out)."""
    with errors_handled(as_json):
        opened = _open(ledger)
        result = opened.verify()
    code = 1 if result.problems else EXIT_FAILED if result.unchecked else EXIT_OK
    if as_json:
        emit_json(
            {
                "ok": result.ok,
                "entries": result.entries,
                "problems": list(result.problems),
                "unchecked": list(result.unchecked),
                "anchors": list(result.notes),
                "external_anchors": [a.name for a in opened.anchors],
                "ledger": opened.location,
            }
        )
        raise typer.Exit(code)
    if result.problems:
        out.print(f"[bold red]ledger BROKEN[/] ({escape(opened.location)}):")
        for problem in result.problems:
            out.print(f"  {escape(problem)}")
    elif result.unchecked:
        out.print(
            f"[bold yellow]ledger NOT VERIFIED[/]: the chain of {result.entries} entries holds, "
            "but an anchor could not be read:"
        )
    else:
        out.print(f"[green]ledger intact[/]: {result.entries} entries ({escape(opened.location)})")
    for line in result.unchecked:
        out.print(f"  [bold]{escape(line)}[/]")
    for note in result.notes:
        out.print(f"  [dim]{escape(note)}[/]")
    if not opened.anchors:
        out.print(f"  [yellow]{NO_ANCHOR}[/]")
    raise typer.Exit(code)


@app.command()
def anchor(as_json: bool = JSON, ledger: Path = LEDGER) -> None:
    """Verify the whole chain, then checkpoint its head to every configured anchor (cron it;
    runs anchor by themselves). Exit 1 if the chain is broken (nothing is anchored), 3 if an
    anchor could not be written."""
    with errors_handled(as_json):
        opened = _open(ledger)
        if not opened.anchors:
            raise ConfigurationError(
                NO_ANCHOR,
                remediation="Set ledger_anchors.stream_path and/or ledger_anchors.s3_bucket in "
                "the profile (runbooks/audit.md).",
            )
        checked = opened.verify()
        done = opened.anchor() if not checked.problems else None
    if done is None:
        if as_json:
            emit_json({"ok": False, "problems": list(checked.problems)})
        else:
            out.print("[bold red]ledger BROKEN[/]: not anchored (that would bless the damage):")
            for problem in checked.problems:
                out.print(f"  {escape(problem)}")
        raise typer.Exit(1)
    if as_json:
        emit_json(
            {
                "ok": done.ok,
                "seq": done.seq,
                "written": list(done.written),
                "failed": [{"anchor": n, "error": e} for n, e in done.failed],
            }
        )
    else:
        for name in done.written:
            out.print(f"[green]anchored[/] entry {done.seq} to {escape(name)}")
        for name, error in done.failed:
            out.print(f"[bold red]NOT anchored[/] to {escape(name)}: {escape(error)}")
        if not done.seq:
            out.print("the ledger is empty: nothing to anchor")
    raise typer.Exit(EXIT_OK if done.ok else EXIT_FAILED)


@app.command()
def show(
    agent: str = typer.Option(None, "--agent", help="Only entries about this agent."),
    run: str = typer.Option(None, "--run", help="Only entries of this run id."),
    as_json: bool = JSON,
    ledger: Path = LEDGER,
) -> None:
    """Show ledger entries: who did what, when, why, and what the probes saw."""
    with errors_handled(as_json):
        rows = list(_open(ledger).rows(agent=agent, run_id=run))
    if as_json:
        emit_json(rows)
        return
    table = Table()
    for column in ("seq", "time", "actor", "agent", "provider", "action", "credential", "outcome"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            str(row["seq"]),
            row["ts"][11:23],
            escape(row["actor"]),
            escape(row["agent"]),
            row["provider"],
            row["action"],
            escape(row["credential"]),
            row["outcome"],
        )
    out.print(table)


@app.command()
def export(
    output: Path = typer.Option(None, "--output", "-o", help="File (default: stdout)."),
    ledger: Path = LEDGER,
) -> None:
    """Export every entry as JSON lines (for a SIEM)."""
    import sys

    with errors_handled(False):
        opened = _open(ledger)
        if output is None:
            opened.export_jsonl(sys.stdout)
        else:
            with open(output, "w") as handle:
                opened.export_jsonl(handle)


@app.command()
def unfinished(as_json: bool = JSON, ledger: Path = LEDGER) -> None:
    """Runs that never finished: started and not closed (a crash, a kill), or planned and
    never started (killed right after its plan, or a confirmation still waiting). Re-run
    them: every step is idempotent. Exit 1 when there is any."""
    with errors_handled(as_json):
        open_runs: dict[str, dict[str, str]] = {}
        for row in _open(ledger).rows():
            run_id = row["run_id"]
            if row["action"] == "plan" and row["outcome"] == "planned":
                workflow = str((row["detail"] or {}).get("workflow", ""))
                if workflow in ("contain", "restore", "decommission"):
                    open_runs[run_id] = {
                        "run_id": run_id,
                        "agent": row["agent"],
                        "action": workflow,
                        "ts": row["ts"],
                        "stage": "planned",
                    }
            elif row["action"] in ("contain", "restore", "decommission"):
                if row["outcome"] == "started":
                    # A later run of the agent covers a plan that never ran (Prefect was
                    # down, then the same command with --break-glass).
                    for stale in [
                        k
                        for k, v in open_runs.items()
                        if v["stage"] == "planned"
                        and v["agent"] == row["agent"]
                        and v["action"] == row["action"]
                    ]:
                        del open_runs[stale]
                    open_runs[run_id] = {
                        "run_id": run_id,
                        "agent": row["agent"],
                        "action": row["action"],
                        "ts": row["ts"],
                        "stage": "started",
                    }
                elif row["action"] == open_runs.get(run_id, {}).get("action"):
                    open_runs.pop(run_id, None)
    runs = list(open_runs.values())
    if as_json:
        emit_json(runs)
    else:
        for item in runs:
            said = (
                "planned, never started (killed before it ran, or awaiting confirmation)"
                if item["stage"] == "planned"
                else "started, never finished"
            )
            out.print(
                f"{item['ts']}  {item['action']} {item['agent']}  run {item['run_id']}  {said}"
            )
        if not runs:
            out.print("no unfinished runs")
    raise typer.Exit(EXIT_OK if not runs else 1)
