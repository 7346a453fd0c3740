"""`killswitch audit verify | show | export | unfinished`: the tamper-evident record."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from killswitch.cli.common import EXIT_OK, emit_json, errors_handled, out
from killswitch.ledger import Ledger, ledger_key_from
from killswitch.settings import load_settings

app = typer.Typer(
    help="The ledger: verify its hash chain, show or export entries.", no_args_is_help=True
)
JSON = typer.Option(False, "--json", help="Print one JSON document on stdout.")
LEDGER = typer.Option(None, "--ledger", help="A ledger file (default: the configured one).")


def _open(path: Path | None) -> Ledger:
    settings = load_settings()
    key = settings.ledger_key.get_secret_value() if settings.ledger_key else None
    return Ledger(path or settings.ledger_file, ledger_key_from(key))


@app.command()
def verify(as_json: bool = JSON, ledger: Path = LEDGER) -> None:
    """Exit 0 if and only if the ledger's hash chain is intact (no edit, deletion, reorder)."""
    with errors_handled(as_json):
        opened = _open(ledger)
        result = opened.verify()
    if as_json:
        emit_json(
            {
                "ok": result.ok,
                "entries": result.entries,
                "problems": list(result.problems),
                "ledger": str(opened.path),
            }
        )
    elif result.ok:
        out.print(f"[green]ledger intact[/]: {result.entries} entries ({opened.path})")
    else:
        out.print(f"[bold red]ledger BROKEN[/] ({opened.path}):")
        for problem in result.problems:
            out.print(f"  {escape(problem)}")
    raise typer.Exit(EXIT_OK if result.ok else 1)


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
    """Runs that started and never finished (a crash): re-run them, they are idempotent."""
    with errors_handled(as_json):
        started: dict[str, dict[str, str]] = {}
        for row in _open(ledger).rows():
            if row["action"] in ("contain", "restore"):
                if row["outcome"] == "started":
                    started[row["run_id"]] = {
                        "run_id": row["run_id"],
                        "agent": row["agent"],
                        "action": row["action"],
                        "ts": row["ts"],
                    }
                else:
                    started.pop(row["run_id"], None)
    runs = list(started.values())
    if as_json:
        emit_json(runs)
    else:
        for item in runs:
            out.print(f"{item['ts']}  {item['action']} {item['agent']}  run {item['run_id']}")
        if not runs:
            out.print("no unfinished runs")
    raise typer.Exit(EXIT_OK if not runs else 1)
