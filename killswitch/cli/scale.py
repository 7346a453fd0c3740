"""`killswitch scale up|down|status`: the scaled-out shape on this host (runbooks/scale-out.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from killswitch.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    JSON,
    QUIET,
    emit_json,
    err,
    errors_handled,
    out,
    progress_to_stderr,
)

app = typer.Typer(
    help="PostgreSQL, a Prefect server on it, the work pool and N workers on this host.",
    no_args_is_help=True,
)
HOME = typer.Option(None, "--home", help="State directory (default: $KILLSWITCH_HOME).")


def _show(status: dict[str, Any]) -> None:
    pg, server = status["postgres"], status["prefect"]
    out.print(f"scale-out stack in {status['home']}: {'RUNNING' if status['running'] else 'DOWN'}")
    out.print(
        f"  PostgreSQL      {'up' if pg['running'] else 'down'}  {pg['url'] or '-'}"
        + ("  (ledger, inventory, plans)" if pg["url"] else "")
    )
    out.print(
        f"  Prefect server  {'up' if server['running'] else 'down'}  {server['api_url'] or '-'}"
    )
    for w in status["workers"]:
        out.print(
            f"  worker          {'up' if w['running'] else 'down'}  {w['name']} (pid {w['pid']})"
        )
    registered = status.get("registered") or {}
    if registered:
        out.print(f"  work pool       {registered['work_pool']}")
        out.print(f"  deployments     {', '.join(registered['deployments'])}")
        limits = ", ".join(f"{k}={v}" for k, v in registered["limits"].items())
        out.print(f"  limits          {limits}")
    if status["running"]:
        linked = "linked at $KILLSWITCH_HOME/profile.json" if status["profile_linked"] else ""
        out.print(f"  profile         {status['profile']} {linked}".rstrip())
        out.print(
            f"Point a shell at it: `source {status['env_file']}` (KILLSWITCH_PROFILE, "
            "PREFECT_API_URL and its auth, KILLSWITCH_DATABASE_URL); the API listens on "
            "loopback only — never expose it."
        )


@app.command()
def up(
    workers: int = typer.Option(2, "--workers", "-n", help="Process workers to run."),
    limit: list[str] = typer.Option(
        [],
        "--limit",
        help="PROVIDER=N: that provider's calls in flight at once across every worker "
        "(repeatable; kept; default: its revoker's max_workers).",
    ),
    home: Path | None = HOME,
    as_json: bool = JSON,
    quiet: bool = QUIET,
) -> None:
    """Start (or complete) the stack: idempotent; prints what runs and how to use it."""
    from killswitch.errors import ConfigurationError
    from killswitch.scale import stack

    with errors_handled(as_json), progress_to_stderr(quiet):
        limits: dict[str, int] = {}
        for item in limit:
            provider, _, number = item.partition("=")
            if not provider or not number.isdigit():
                raise ConfigurationError(
                    f"--limit {item!r}: PROVIDER=N (a provider's name, a whole number)"
                )
            limits[provider.strip()] = int(number)
        status = stack.up(home, workers=workers, limits=limits)
    emit_json(status) if as_json else _show(status)
    raise typer.Exit(EXIT_OK if status["running"] else EXIT_FAILED)


@app.command()
def status(home: Path | None = HOME, as_json: bool = JSON) -> None:
    """What runs (exit 1 when the stack is not running)."""
    from killswitch.scale import stack

    with errors_handled(as_json):
        current = stack.status(home)
    emit_json(current) if as_json else _show(current)
    raise typer.Exit(EXIT_OK if current["running"] else 1)


@app.command()
def down(home: Path | None = HOME) -> None:
    """Stop the workers, the server and PostgreSQL (their data stays)."""
    from killswitch.scale import stack

    with errors_handled(False):
        stack.down(home)
    err.print("scale-out stack stopped")
