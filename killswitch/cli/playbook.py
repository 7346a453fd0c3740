"""`killswitch playbook …`: the alert playbooks' schema, validation, and a dry explanation
of what one alert would do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from killswitch.alerts.models import SOURCES
from killswitch.cli.common import EXIT_REFUSED, JSON, emit_json, err, errors_handled, out

app = typer.Typer(
    help="Alert playbooks (playbooks/*.yaml): which alert contains, asks or only tells.",
    no_args_is_help=True,
)
DIR = typer.Argument(
    None, help="A directory of playbooks (default: alerts.playbooks_dir, else playbooks/)."
)


def _directory(given: Path | None) -> Path:
    from killswitch.alerts.playbooks import default_directory
    from killswitch.settings import load_settings

    if given is not None:
        return given
    return load_settings().alerts.playbooks_dir or default_directory()


@app.command()
def schema() -> None:
    """Print the JSON Schema of a playbook file (for editors and CI)."""
    from killswitch.alerts.playbooks import schema as playbook_schema

    emit_json(playbook_schema())


@app.command()
def validate(directory: Path | None = DIR, as_json: bool = JSON) -> None:
    """Check every playbook file; each problem with its file:line (exit 2, nothing loaded)."""
    from killswitch.alerts.playbooks import PlaybookError, load

    where = _directory(directory)
    try:
        book = load(where)
    except PlaybookError as exc:
        if as_json:
            emit_json({"ok": False, "error": {"code": exc.code, "message": exc.message}})
        else:
            # Never folded: each problem stays one line with its file:line (scripts grep it).
            err.print(exc.message, markup=False, highlight=False, soft_wrap=True)
            err.print(f"  → {exc.remediation}", markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_REFUSED) from exc
    if as_json:
        emit_json({"ok": True, "directory": str(where), "playbooks": book.names})
        return
    out.print(f"{len(book.entries)} playbooks valid in {where}:", markup=False)
    for entry in book.entries:
        p = entry.playbook
        out.print(f"  {p.name:<40} {p.do:<8} {entry.where}", markup=False, highlight=False)


@app.command()
def explain(
    alert_file: Path = typer.Argument(..., help="An alert body as its source sends it (JSON)."),
    source: str = typer.Option(
        ..., "--source", "-s", help="The receiver path it would arrive on: " + " | ".join(SOURCES)
    ),
    directory: Path | None = typer.Option(None, "--playbooks", help="A playbook directory."),
    as_json: bool = JSON,
) -> None:
    """Which playbook an alert matches, which agents it resolves to, and the plan it would run
    — changing nothing (no signature is checked: the file is yours)."""
    from killswitch.alerts.explaining import explain as explained
    from killswitch.alerts.playbooks import load
    from killswitch.cli.main import opened

    with errors_handled(as_json):
        book = load(_directory(directory))
        with opened() as runtime:
            result = explained(runtime, book, source, alert_file)
    if as_json:
        emit_json(result)
        return
    _print(result)


def _print(result: dict[str, Any]) -> None:
    for alert in result["alerts"]:
        out.print(f"alert {alert['source']}/{alert['event']}: {alert['summary']}", markup=False)
        match = alert["playbook"]
        if match is None:
            out.print(
                "  no playbook matches: the incident channel is told, nothing else", markup=False
            )
            continue
        out.print(f"  playbook {match['name']} ({match['where']}): do {match['do']}", markup=False)
        for line in alert["traced"]:
            out.print(f"  traced: {line}", markup=False)
        for line in alert["untraced"]:
            out.print(f"  not traced: {line}", markup=False)
        for agent in alert["agents"]:
            verb = (
                "nothing to do" if agent["decision"] == "nothing" else f"would {agent['decision']}"
            )
            out.print(f"  {agent['agent']}: {verb} — {agent['why']}", markup=False)
            for provider, count in agent.get("plan", {}).items():
                out.print(f"    {provider}: {count}", markup=False)
    out.print("nothing was changed (explain never contains, asks or ledgers)", markup=False)
