"""One way in for every trigger (the CLI, the Slack app, the alert receiver, the schedule):
parse (at the entry point) → **authorize** → **plan** (discovery once; kept by run id) →
**run** (the kept plan: a Prefect flow in this process, or break-glass) → report.

Entry points parse and call these; one run id goes from the first ledger entry to the last.
Prefect is imported only when a flow runs, after `prefect_environment` pointed it at the API.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import replace

from killswitch import engine, heap, planning, restoration
from killswitch import sweep as sweeping
from killswitch.assembly import assemble
from killswitch.fleet.report import FleetReport
from killswitch.models import ContainmentReport, Plan, RestoreReport
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
    if request.mode is Mode.FLOW:
        # The orchestrator answers before anything is planned: a run refused for want of it
        # leaves no plan and no baseline probe half-done (a probe login killed at exit before
        # it revoked its own token would leave one behind).
        prefect_environment(runtime.settings, verbose=verbose)
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
    try:
        return _run(runtime, run_id, mode, check_untouched, verbose, plan_s, tags)
    finally:
        heap.ran()


def _run(
    runtime: Runtime,
    run_id: str,
    mode: Mode | None,
    check_untouched: bool,
    verbose: bool,
    plan_s: float,
    tags: Sequence[str],
) -> ContainmentReport:
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


def plan_fleet(
    runtime: Runtime, agent_ids: Sequence[str], request: Request
) -> tuple[str, list[Plan]]:
    """One plan per agent, discovery once for the whole fleet; `request` is the template
    (reason, actor, trigger, mode) each agent's request copies. (fleet id, plans)."""
    fleet_id = uuid.uuid4().hex
    requests = [
        replace(request, agent_id=agent_id, run_id=uuid.uuid4().hex)
        for agent_id in dict.fromkeys(agent_ids)
    ]
    return fleet_id, planning.plan_fleet(runtime, requests, fleet_id=fleet_id)


def run_fleet(
    runtime: Runtime,
    fleet_id: str,
    plans: Sequence[Plan],
    *,
    mode: Mode,
    verbose: bool = False,
) -> FleetReport:
    """Run a planned fleet: the `fleet-contain` flow in this process, which starts one
    `fleet-lane` run per online worker (each containing many agents, `flows.fleet`);
    break-glass: the agents on threads
    here (`scale.break_glass_agents` at once), no orchestrator. One report either way,
    from the ledger."""
    run_ids = [p.run_id for p in plans]
    if mode is Mode.BREAK_GLASS:
        return _fleet_break_glass(runtime, fleet_id, run_ids)
    prefect_environment(runtime.settings, verbose=verbose)
    from flows import handover
    from flows.fleet import FleetNotProven, fleet_contain

    with reaching_orchestrator(runtime.settings), handover.fast(), handover.using(runtime):
        try:
            return fleet_contain(fleet_id, run_ids)
        except FleetNotProven as exc:
            return exc.report


def _fleet_break_glass(runtime: Runtime, fleet_id: str, run_ids: Sequence[str]) -> FleetReport:
    from concurrent.futures import ThreadPoolExecutor

    from killswitch import progress
    from killswitch.fleet.report import AgentResult, from_ledger, load, report_of

    started = time.monotonic()
    kept = load(runtime, list(run_ids))

    def one(item: tuple[Request, Plan]) -> AgentResult:
        request, kept_plan = item
        request = replace(request, mode=Mode.BREAK_GLASS)
        try:
            engine.run_plan(runtime, request, kept_plan)
            ended = ""
        except Exception as exc:  # one agent's crash is that agent's row, not the fleet's
            ended = f"with an error: {type(exc).__name__}"
        result = from_ledger(runtime, kept_plan, ended=ended)
        progress.emit(
            "agent",
            f"{kept_plan.agent.id}: {result.state.upper()} "
            f"({result.count('dead')}/{len(result.rows)} dead)",
            run_id=kept_plan.run_id,
            agent=kept_plan.agent.id,
            state=result.state,
        )
        return result

    workers = max(1, min(runtime.settings.scale.break_glass_agents, len(kept)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="agent") as pool:
        results = list(pool.map(one, kept))
    return report_of(
        runtime, kept, fleet_id, results, mode="break-glass", elapsed_s=time.monotonic() - started
    )
