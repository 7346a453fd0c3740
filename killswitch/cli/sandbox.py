"""`killswitch sandbox up | status | fault | lag | down`: the local stand-ins and the demo
fleet."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand

from killswitch.cli.common import (
    EXIT_OK,
    JSON,
    emit_json,
    err,
    errors_handled,
    out,
    progress_to_stderr,
)
from killswitch.settings import default_home

app = typer.Typer(
    help="Local stand-ins for every provider, seeded with a demo fleet.", no_args_is_help=True
)


def fault_targets() -> str:
    """The fault proxies, from the plug-ins: each with the providers behind it."""
    from killswitch.sandbox.plugins import fault_targets as targets

    shown = [
        name if providers == [name] else f"{name} ({', '.join(providers)})"
        for name, providers in targets().items()
    ]
    return ", ".join(shown) + ", or *"


class _FaultCommand(TyperCommand):
    """`fault`, whose TARGET help is read from the plug-ins only when help is shown (finding
    them imports every revoker: too slow for every `killswitch` run)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        """The usual help, TARGET's read from the plug-ins first."""
        for param in self.params:
            if param.name == "target":
                param.help = fault_targets()  # type: ignore[attr-defined]
        super().format_help(ctx, formatter)


def _show(status: dict[str, object]) -> None:
    if not status.get("running"):
        out.print(f"sandbox: [bold]not running[/] ({status['dir']})")
        return
    out.print(f"sandbox: [bold green]running[/] ({status['dir']})")
    providers = status.get("providers", {})
    assert isinstance(providers, dict)  # noqa: S101
    for name, info in providers.items():
        keys = ("endpoint_url", "addr", "base_url", "grpc_target", "url")
        out.print(f"  {name}: {next((info[k] for k in keys if info.get(k)), None)}")
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
    latency_ms: float = typer.Option(
        0.0, "--latency-ms", min=0, help="Latency the fault proxies add to every provider call."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Start the stand-ins in the background and seed the demo fleet; print the endpoints.

    The kill switch reaches every stand-in through a fault proxy of the sandbox's own
    (`killswitch sandbox fault`); `--latency-ms` makes every provider call that much slower."""
    from killswitch.sandbox import control

    with errors_handled(as_json), progress_to_stderr(quiet):
        status = control.up(default_home(), reset=reset, prefect=prefect, latency_ms=latency_ms)
    emit_json(status) if as_json else _show(status)


@app.command(cls=_FaultCommand)
def fault(
    target: str = typer.Argument(..., help="a fault proxy (see --help), or *"),
    latency_ms: float = typer.Option(None, "--latency-ms", min=0, help="Per-request latency."),
    kind: str = typer.Option(
        None,
        "--kind",
        help="throttle, error (503), error-html (503 + HTML), reset, blackhole; '' clears it.",
    ),
    count: int = typer.Option(1, "--count", min=0, help="How many requests get the fault."),
    down: bool = typer.Option(None, "--down/--up", help="Refuse every connection, or stop."),
    as_json: bool = JSON,
) -> None:
    """Inject a fault between the kill switch and a stand-in (chaos drills, benchmarks)."""
    from killswitch.sandbox import control

    changes: dict[str, object] = {}
    if latency_ms is not None:
        changes["latency_ms"] = latency_ms
    if kind is not None:
        changes.update(kind=kind, count=count)
    if down is not None:
        changes["down"] = down
    with errors_handled(as_json):
        described = control.fault(default_home(), target, **changes)
    emit_json(described) if as_json else out.print(described)


@app.command()
def lag(
    provider: str = typer.Argument(
        ...,
        help="a provider whose stand-in can lag (the running sandbox names them when given "
        "another), or * for every one",
    ),
    seconds: float = typer.Argument(
        ..., min=0, help="How long a killed credential keeps working; 0 turns the delay off."
    ),
    flap: bool = typer.Option(
        False,
        "--flap",
        help="The first request after the kill is already refused, the next ones accepted "
        "again until the delay is over (an acceptance after a rejection).",
    ),
    as_json: bool = JSON,
) -> None:
    """Propagation delay: a revoked, disabled or denied credential keeps authenticating for
    SECONDS (control-plane reads show the change at once), as real providers' edges do.

    Tests a settle window (`KILLSWITCH_<PROVIDER>__SETTLE_S`): `dead` needs the rejection
    to hold that long; the report says when each provider converged (runbooks/sandbox.md)."""
    from killswitch.sandbox import control

    with errors_handled(as_json):
        described = control.lag(default_home(), provider, seconds, flap=flap)
    emit_json(described) if as_json else out.print(described)


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
