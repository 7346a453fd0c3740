"""What every command shares: consoles, exit codes, error output, the actor, JSON output."""

from __future__ import annotations

import getpass
import json
import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from killswitch import progress
from killswitch.errors import KillSwitchError, StorageError

EXIT_OK = 0
EXIT_NOT_PROVEN = 1
EXIT_REFUSED = 2
EXIT_FAILED = 3

# Not a terminal (CI logs, pipes): wide enough that tables do not fold every cell.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)


def actor() -> str:
    """Who is acting: KILLSWITCH_ACTOR when a wrapper sets it, else the OS user."""
    return os.environ.get("KILLSWITCH_ACTOR") or f"cli:{getpass.getuser()}"


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def fail(exc: KillSwitchError, as_json: bool) -> NoReturn:
    """Print a typed error (code, message, remediation) and exit with its code."""
    if as_json:
        emit_json(
            {
                "ok": False,
                "error": {"code": exc.code, "message": exc.message, "remediation": exc.remediation},
            }
        )
    # Never folded: a message keeps its lines (a file:line, a path) whole for grep and humans.
    err.print(f"[bold red]{escape(f'error[{exc.code}]')}[/]: {escape(exc.message)}", soft_wrap=True)
    err.print(f"  → {escape(exc.remediation)}", soft_wrap=True)
    raise typer.Exit(exc.exit_code)


@contextmanager
def errors_handled(as_json: bool) -> Iterator[None]:
    try:
        yield
    except KillSwitchError as exc:
        fail(exc, as_json)
    except sqlite3.OperationalError as exc:  # the ledger or the inventory could not be written
        fail(StorageError(f"the kill switch's database failed: {exc}"), as_json)


@contextmanager
def progress_to_stderr(quiet: bool = False) -> Iterator[None]:
    """Show a run's progress on stderr (stdout stays clean for the report or JSON)."""
    if quiet:
        yield
        return

    def show(event: progress.Event) -> None:
        prefix = f"{event.provider}: " if event.provider else ""
        err.print(f"[dim]· {escape(prefix + event.message)}[/]")

    with progress.listening(show):
        yield


# The options every command spells the same way.
JSON = typer.Option(False, "--json", help="Print one JSON document on stdout.")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress lines on stderr.")
VERBOSE = typer.Option(False, "--verbose", "-v", help="Show Prefect's own log lines too.")
