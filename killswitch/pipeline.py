"""One way in for every trigger (the CLI, the Slack app, the alert receiver, the schedule):
parse (at the entry point) → **authorize** → **plan** (discovery once; kept by run id) →
**run** (the kept plan: a Prefect flow in this process, or break-glass) → report.

Entry points parse and call these; one run id goes from the first ledger entry to the last.
Prefect is imported only when a flow runs, after `prefect_environment` pointed it at the API.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

from killswitch import engine, planning, restoration
from killswitch import sweep as sweeping
from killswitch.assembly import assemble
from killswitch.models import ContainmentReport, RestoreReport
from killswitch.orchestrator import prefect_environment, reaching_orchestrator
from killswitch.plans import PlanNotRunnableError, Plans, PlanState
from killswitch.request import Mode, Request
from killswitch.runtime import Runtime

# The first two steps, as every entry point calls them.
authorize = planning.authorize
plan = planning.plan


def contain(
    runtime: Runtime, request: Request, *, check_untouched: bool = False, verbose: bool = False
) -> ContainmentReport:
    """Authorize, plan and run in one go (the CLI, and triggers that need no confirmation).
    A dry run stops after the plan."""
    started = time.monotonic()
    made = plan(runtime, request)
    plan_s = time.monotonic() - started
    if request.mode is Mode.DRY_RUN:
        return assemble(runtime, request, made, [], started=started, plan_s=plan_s)
    return run(
        runtime, request.run_id, check_untouched=check_untouched, verbose=verbose, plan_s=plan_s
    )


def run(
    runtime: Runtime,
    run_id: str,
    *,
    mode: Mode | None = None,
    check_untouched: bool = False,
    verbose: bool = False,
    plan_s: float = 0.0,
    tags: Sequence[str] = (),
) -> ContainmentReport:
    """Run the plan kept under `run_id`, exactly: as the `contain` (or `decommission`) flow
    in this process (its flow run tagged `tags`), or break-glass (`mode`, else the mode it
    was planned with)."""
    request, kept, state = Plans(runtime.inventory).load(run_id)
    if state is not PlanState.PLANNED:
        raise PlanNotRunnableError(f"plan {run_id[:12]} cannot run: it is {state}")
    if mode is not None and mode is not request.mode:
        request = replace(request, mode=mode)
    if request.mode is Mode.BREAK_GLASS:
        return engine.run_plan(runtime, request, kept, untouched=check_untouched, plan_s=plan_s)
    prefect_environment(runtime.settings, verbose=verbose)
    from prefect import tags as tagged

    from flows import handover
    from flows.contain import ContainmentNotProven, run_kept

    with (
        reaching_orchestrator(runtime.settings),
        handover.fast(),
        handover.using(runtime),
        tagged(*tags),
    ):
        try:
            return run_kept(request, check_untouched=check_untouched, plan_s=plan_s)
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
            return contain(runtime, replace(req, mode=Mode.BREAK_GLASS))

        return sweeping.run(runtime, request, contain_directly)
    prefect_environment(runtime.settings, verbose=verbose)
    from flows import handover
    from flows.zombie_sweep import SweepIncomplete, zombie_sweep

    with reaching_orchestrator(runtime.settings), handover.fast(), handover.using(runtime):
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


def sweep_via_deployment(
    runtime: Runtime,
    request: sweeping.SweepRequest,
    *,
    deployment: str = "zombie-sweep/scheduled",
    timeout_s: float = 600.0,
    verbose: bool = False,
) -> tuple[str, str]:
    """The `zombie-sweep` flow as a run of its deployment (the runner of `killswitch serve`
    executes it), carrying a ticket signed for this request; (flow run id, final state)."""
    prefect_environment(runtime.settings, verbose=verbose)
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    from flows.zombie_sweep import zombie_sweep
    from killswitch.ledger_key import derived_key
    from killswitch.run_tickets import PURPOSE, arguments, mint

    args = arguments(
        zombie_sweep.fn,
        {
            "dry_run": request.dry_run,
            "actor": request.actor,
            "trigger": request.trigger,
            "providers": list(request.providers) or None,
            "agents": list(request.agents) or None,
            "run_id": request.run_id,
        },
    )
    ticket = mint(
        derived_key(runtime.settings, PURPOSE),
        flow="zombie-sweep",
        args=args,
        actor=request.actor,
        trigger=request.trigger,
    )
    with reaching_orchestrator(runtime.settings):
        flow_run = run_deployment(
            deployment,
            parameters={**args, "ticket": ticket},
            timeout=timeout_s,
            tags=["killswitch"],
        )
    assert isinstance(flow_run, FlowRun)  # noqa: S101  (called synchronously)
    state = flow_run.state.type.value if flow_run.state else "UNKNOWN"
    return str(flow_run.id), state


def restore(runtime: Runtime, request: Request, *, verbose: bool = False) -> RestoreReport:
    """Authorize and list what would be reversed (refusing when nothing), then reverse it:
    the `restore` flow in this process, or break-glass."""
    restoration.pending(runtime, request)  # refuse before an orchestrator is involved
    if request.mode is Mode.BREAK_GLASS:
        return restoration.restore(runtime, request)
    prefect_environment(runtime.settings, verbose=verbose)
    from flows import handover
    from flows.restore import RestoreIncomplete
    from flows.restore import restore as restore_flow

    with reaching_orchestrator(runtime.settings), handover.fast(), handover.using(runtime):
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
