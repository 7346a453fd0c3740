"""Start a containment, decommission or restore — as a Prefect flow in this process, or
break-glass — for every entry point (the CLI, the Slack app, later the alert webhooks).

Prefect is imported only here, and only after `prefect_environment` has pointed it at the
configured API: importing it costs about a second, and its settings are read at import.
"""

from __future__ import annotations

import logging
import os
import urllib.request
from dataclasses import replace

from killswitch import containment, restoration
from killswitch import sweep as sweeping
from killswitch.containment import Request
from killswitch.errors import ConfigurationError
from killswitch.models import ContainmentReport, RestoreReport
from killswitch.runtime import Runtime
from killswitch.settings import Settings

log = logging.getLogger(__name__)


def prefect_environment(settings: Settings, *, verbose: bool = False) -> None:
    """Point Prefect at the configured API before it is imported; keep its console quiet;
    fail fast (with the break-glass remedy) when the API does not answer."""
    if settings.prefect_api_url:
        os.environ["PREFECT_API_URL"] = settings.prefect_api_url
    os.environ.setdefault("PREFECT_HOME", str(settings.home / "prefect-client"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_API_REQUEST_TIMEOUT", "10")
    if not verbose:
        # The report says NOT PROVEN loudly; Prefect's own traceback of the failed run is
        # for `-v` (and the Prefect UI).
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    api = os.environ.get("PREFECT_API_URL")
    if not api:
        log.warning(
            "no Prefect API configured: Prefect starts a temporary server (about 10 s). Set "
            "prefect_api_url, run `killswitch sandbox up`, or use --break-glass."
        )
        return
    try:
        with urllib.request.urlopen(f"{api}/health", timeout=2) as response:  # noqa: S310
            response.read()
    except OSError as exc:
        raise ConfigurationError(
            f"the Prefect API at {api} is unreachable ({exc})",
            remediation="Run the same command with --break-glass: same plan, same revokers, "
            "same ledger, no orchestrator.",
        ) from exc


def contain(
    runtime: Runtime, request: Request, *, check_untouched: bool = False, verbose: bool = False
) -> ContainmentReport:
    """Dry run and break-glass run without Prefect; otherwise the `contain` (or
    `decommission`) flow, in this process."""
    # Refuse before an orchestrator is involved.
    containment.authorize(runtime, request, request.verb)
    if request.mode in ("dry-run", "break-glass"):
        return containment.run(runtime, request, untouched=check_untouched)
    prefect_environment(runtime.settings, verbose=verbose)
    from flows import runtime as handover
    from flows.contain import ContainmentNotProven
    from flows.contain import contain as contain_flow
    from flows.decommission import decommission as decommission_flow

    who = {"actor": request.actor, "trigger": request.trigger, "run_id": request.run_id}
    with handover.fast(), handover.using(runtime):
        try:
            if request.destroys:
                return decommission_flow(request.agent_id, request.reason, **who)
            return contain_flow(
                request.agent_id, request.reason, check_untouched=check_untouched, **who
            )
        except ContainmentNotProven as exc:
            return exc.report


def sweep(
    runtime: Runtime,
    request: sweeping.SweepRequest,
    *,
    break_glass: bool = False,
    verbose: bool = False,
) -> sweeping.SweepReport:
    """The `zombie-sweep` flow in this process; break-glass: the same sweep, containing
    without Prefect."""
    if break_glass:

        def contain_directly(req: Request) -> ContainmentReport:
            return containment.run(runtime, replace(req, mode="break-glass"))

        return sweeping.run(runtime, request, contain_directly)
    prefect_environment(runtime.settings, verbose=verbose)
    from flows import runtime as handover
    from flows.zombie_sweep import SweepIncomplete, zombie_sweep

    with handover.fast(), handover.using(runtime):
        try:
            return zombie_sweep(
                dry_run=request.dry_run,
                actor=request.actor,
                trigger=request.trigger,
                providers=list(request.providers),
                agents=list(request.agents),
                run_id=request.run_id,
            )
        except SweepIncomplete as exc:
            return exc.report


def restore(runtime: Runtime, request: Request, *, verbose: bool = False) -> RestoreReport:
    restoration.pending(runtime, request)  # refuse before an orchestrator is involved
    if request.mode == "break-glass":
        return restoration.restore(runtime, request)
    prefect_environment(runtime.settings, verbose=verbose)
    from flows import runtime as handover
    from flows.restore import RestoreIncomplete
    from flows.restore import restore as restore_flow

    with handover.fast(), handover.using(runtime):
        try:
            return restore_flow(
                request.agent_id,
                request.reason,
                actor=request.actor,
                trigger=request.trigger,
                run_id=request.run_id,
            )
        except RestoreIncomplete as exc:
            return exc.report
