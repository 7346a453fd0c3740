"""Running a kept plan: one provider's share (what a Prefect task wraps), every provider on
plain threads (break-glass), and the check that other agents were left untouched."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from contextvars import copy_context
from datetime import UTC, datetime

from killswitch import carried, progress
from killswitch.assembly import assemble
from killswitch.errors import KillSwitchError
from killswitch.execution import Controls, materials_for, run_provider
from killswitch.models import (
    Agent,
    AgentStatus,
    ContainmentReport,
    Credential,
    Plan,
    ProviderOutcome,
    UntouchedCheck,
    VerdictStatus,
)
from killswitch.planning import discover
from killswitch.plans import Plans
from killswitch.recorder import Recorder
from killswitch.request import Request
from killswitch.runtime import Runtime
from killswitch.scale import slots
from killswitch.verdicts import check_alive

# A plan older than this when its run starts (a confirmation button, a queued flow run) is
# checked again after the run for credentials that appeared since it was made.
STALE_PLAN_S = 5.0
# Set by `killswitch scale up` on each worker it starts (its flow runs inherit it).
WORKER_ENV = "KILLSWITCH_WORKER"


def begin(runtime: Runtime, request: Request, plan: Plan) -> float:
    """Claim the kept plan (it runs once) and open the run in the ledger, naming where it
    runs (host, process, worker); the plan's age. In a flow on a server whose provider
    limits are enforced, every provider's limit must exist first (else nothing is done)."""
    if slots.enforced(runtime.settings):
        slots.check(providers_of(runtime, plan))
    Plans(runtime.inventory).claim(request.run_id)
    Recorder(runtime, request).write(
        str(request.workflow),
        "started",
        reason=request.reason,
        mode=str(request.mode),
        target=plan.target,
        credentials=len(plan.credentials),
        actions=len(plan.actions),
        host=socket.gethostname(),
        pid=os.getpid(),
        worker=os.environ.get(WORKER_ENV, ""),
    )
    return (datetime.now(UTC) - plan.created_at).total_seconds()


def appeared_since(runtime: Runtime, plan: Plan, age_s: float) -> tuple[Credential, ...]:
    """Credentials of the agent that a stale plan does not know (minted after it was made,
    by an attacker, say): they were not contained, and the report must name them."""
    if age_s < STALE_PLAN_S:
        return ()
    known = {c.key for c in plan.credentials} | {c.key for u in plan.unsearched for c in u.known}
    late: list[Credential] = []
    for found in discover(runtime, plan.agent).values():
        if not isinstance(found, KillSwitchError):
            late += [c for c in found.credentials if c.key not in known]
    if late:
        progress.emit(
            "plan",
            f"{len(late)} credential(s) appeared after the plan was made: not contained",
            run_id=plan.run_id,
        )
    return tuple(late)


def execute(runtime: Runtime, request: Request, plan: Plan, provider: str) -> ProviderOutcome:
    """One provider's contain + detach + probes (what a Prefect task wraps): its baselines
    in the ledger before the first change; a blocked one carried over from an earlier run
    of the agent where killswitch/carried.py allows."""
    recorder = Recorder(runtime, request)
    share = plan.for_provider(provider)

    def carry(controls: Controls) -> Controls:
        return carried.carry(
            runtime,
            run_id=request.run_id,
            agent_id=request.agent_id,
            provider=provider,
            credentials=share.credentials,
            controls=controls,
        )

    def phase(name: str) -> None:
        progress.emit("provider", name, provider=provider, run_id=request.run_id, phase=name)

    phase("containing")
    slot = (
        slots.ProviderSlot(provider, timeout_s=runtime.settings.scale.slot_timeout_s)
        if slots.enforced(runtime.settings)
        else None
    )
    outcome = run_provider(
        runtime.revokers[provider],
        share,
        secrets=runtime.secrets,
        timing=runtime.timing,
        on_result=recorder.result,
        on_verdict=recorder.verdict,
        on_phase=phase,
        on_start=recorder.intent,
        on_baselines=lambda controls: recorder.baselines(provider, controls),
        carry=carry,
        slot=slot or nullcontext,
    )
    if slot is not None and slot.held:
        # When each call held the provider's fleet-wide slot (wall clock): the record that
        # the limit held across workers.
        recorder.write(
            "provider-calls",
            "limited",
            provider=provider,
            limit=slot.name,
            held=[[round(a, 4), round(b, 4), round(w, 4)] for a, b, w in slot.held],
        )
    dead = sum(v.status is VerdictStatus.DEAD for _, v in outcome.verdicts)
    progress.emit(
        "provider",
        f"done: {dead}/{len(outcome.verdicts)} dead",
        provider=provider,
        run_id=request.run_id,
        phase="done",
        dead=dead,
        total=len(outcome.verdicts),
    )
    return outcome


def providers_of(runtime: Runtime, plan: Plan) -> list[str]:
    """The plan's providers this runtime can act on."""
    return [p for p in plan.providers if p in runtime.revokers]


def threads(runtime: Runtime, request: Request, plan: Plan) -> list[ProviderOutcome]:
    """Every provider in parallel on plain threads: break-glass, or an agent of a fleet's
    lane (each thread in the caller's context: the flow run its provider slots belong to)."""
    providers = providers_of(runtime, plan)
    if not providers:
        return []
    contexts = [(copy_context(), p) for p in providers]
    with ThreadPoolExecutor(max_workers=runtime.provider_workers(len(providers))) as pool:
        return list(
            pool.map(lambda cp: cp[0].run(execute, runtime, request, plan, cp[1]), contexts)
        )


def check_untouched(runtime: Runtime, exclude: str, *, per_agent: int = 4) -> list[UntouchedCheck]:
    """Probe a few credentials of every other active agent once each: they must still work.

    Up to `per_agent` per agent, taken in turn from each provider, so that collateral damage
    anywhere (a shared group, a shared role, a wrong prefix) shows up."""
    agents = [
        a
        for a in runtime.inventory.list_agents()
        if a.id != exclude
        and a.status is AgentStatus.ACTIVE
        and a.id not in runtime.settings.protected_agents
    ]

    def sample(agent: Agent) -> list[tuple[str, Credential]]:
        pools: list[list[tuple[str, Credential]]] = []
        for name, found in discover(runtime, agent).items():
            if not isinstance(found, KillSwitchError):
                revoker = runtime.revokers[name]
                pools.append(
                    [
                        (name, c)
                        for c in found.credentials
                        if materials_for(revoker, runtime.secrets, c)
                    ]
                )
        picked: list[tuple[str, Credential]] = []
        while len(picked) < per_agent and any(pools):
            for pool_ in pools:
                if pool_ and len(picked) < per_agent:
                    picked.append(pool_.pop(0))
        return picked

    def one(job: tuple[str, Credential]) -> UntouchedCheck:
        name, credential = job
        revoker = runtime.revokers[name]
        materials = materials_for(revoker, runtime.secrets, credential)
        verdict = check_alive(revoker, credential, materials, deadline_s=0.0, interval_s=0.0)
        return UntouchedCheck(credential.agent_id, credential, verdict)

    with ThreadPoolExecutor(max_workers=8) as pool:
        jobs = [job for picked in pool.map(sample, agents) for job in picked]
        return list(pool.map(one, jobs))


Runner = Callable[[Runtime, Request, Plan], list[ProviderOutcome]]


def run_plan(
    runtime: Runtime,
    request: Request,
    plan: Plan,
    *,
    runner: Runner = threads,
    untouched: bool = False,
    plan_s: float = 0.0,
) -> ContainmentReport:
    """Run a kept plan without Prefect (break-glass): claim, every provider, report."""
    started = time.monotonic() - plan_s
    age_s = begin(runtime, request, plan)
    outcomes = runner(runtime, request, plan)
    late = appeared_since(runtime, plan, age_s)
    checks = check_untouched(runtime, request.agent_id) if untouched else []
    return assemble(
        runtime,
        request,
        plan,
        outcomes,
        started=started,
        plan_s=plan_s,
        untouched=checks,
        late=late,
        plan_age_s=age_s,
    )
