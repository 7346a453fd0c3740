"""`killswitch sandbox up | status | down`: the local stand-ins and the demo fleet."""

from __future__ import annotations

import typer

from killswitch.cli.common import EXIT_OK, emit_json, err, errors_handled, out, progress_to_stderr
from killswitch.settings import default_home

app = typer.Typer(
    help="Local stand-ins for every provider, seeded with a demo fleet.", no_args_is_help=True
)
JSON = typer.Option(False, "--json", help="Print one JSON document on stdout.")


def _show(status: dict[str, object]) -> None:
    if not status.get("running"):
        out.print(f"sandbox: [bold]not running[/] ({status['dir']})")
        return
    out.print(f"sandbox: [bold green]running[/] ({status['dir']})")
    providers = status.get("providers", {})
    assert isinstance(providers, dict)  # noqa: S101
    for name, info in providers.items():
        out.print(
            f"  {name}: {info.get('endpoint_url') or info.get('addr') or info.get('base_url')}"
        )
    prefect = status.get("prefect", {})
    assert isinstance(prefect, dict)  # noqa: S101
    if prefect.get("api_url"):
        state = "running" if prefect.get("running") else "NOT running"
        out.print(f"  prefect: {prefect.get('ui_url')} ({state})")
    agents = status.get("agents", [])
    assert isinstance(agents, list)  # noqa: S101
    out.print(
        f"  demo agent: {status.get('demo_agent')}; fleet: "
        + ", ".join(f"{a['id']} ({a['status']})" for a in agents)
    )
    out.print(f"  keyring (probe material, 0600): {status.get('keyring')}")
    out.print("  admin credentials and endpoints: `killswitch sandbox status --json`")


@app.command()
def up(
    as_json: bool = JSON,
    reset: bool = typer.Option(False, "--reset", help="Already running: wipe and re-seed."),
    prefect: bool = typer.Option(
        True, "--prefect/--no-prefect", help="Also start a local Prefect server (about 10 s)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Start the stand-ins in the background and seed the demo fleet; print the endpoints."""
    from killswitch.sandbox import control

    with errors_handled(as_json), progress_to_stderr(quiet):
        status = control.up(default_home(), reset=reset, prefect=prefect)
    emit_json(status) if as_json else _show(status)


@app.command()
def status(as_json: bool = JSON) -> None:
    """What is running, the endpoints, and the sandbox's admin credentials (exit 1: not running)."""
    from killswitch.sandbox import control

    with errors_handled(as_json):
        current = control.status(default_home())
    emit_json(current) if as_json else _show(current)
    raise typer.Exit(EXIT_OK if current.get("running") else 1)


@app.command()
def down() -> None:
    """Stop every process the sandbox started (its data stays, for `audit`)."""
    from killswitch.sandbox import control

    with errors_handled(False):
        stopped = control.down(default_home())
    err.print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
