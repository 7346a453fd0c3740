"""A containment, step by step: prepare (guard + plan) → per provider → finish (report).

The Prefect flow runs each provider step as a task; break-glass (`run`) runs the same
steps on threads. Both write the same ledger entries and undo records.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from killswitch import progress
from killswitch.codec import action_to_dict
from killswitch.errors import KillSwitchError, RefusedError
from killswitch.execution import check_alive, materials_for, run_provider
from killswitch.guards import resolve_agent, validate_reason
from killswitch.ledger import Entry
from killswitch.models import (
    Action,
    ActionResult,
    Agent,
    AgentStatus,
    ContainmentReport,
    Credential,
    CredentialReport,
    Grant,
    Outcome,
    Plan,
    ProviderOutcome,
    ProviderTiming,
    Timings,
    UntouchedCheck,
    Verb,
    Verdict,
    VerdictStatus,
)
from killswitch.retry import retrying_transient
from killswitch.runtime import Runtime
from revokers.base import Discovery


@dataclass(frozen=True, slots=True)
class Request:
    """Who asked to contain which agent, why, and how."""

    agent_id: str
    reason: str
    actor: str
    trigger: str = "cli"
    mode: str = "flow"
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    verb: str = "contain"  # or "decommission": contain, then destroy for good

    @property
    def destroys(self) -> bool:
        return self.verb == "decommission"


class Recorder:
    """Writes a run's ledger entries and undo records as results arrive, and reports progress."""

    def __init__(self, runtime: Runtime, request: Request) -> None:
        self.runtime = runtime
        self.request = request

    def entry(self, action: str, outcome: str, **kw: object) -> Entry:
        r = self.request
        return Entry(
            run_id=r.run_id,
            actor=r.actor,
            trigger=r.trigger,
            agent=r.agent_id,
            action=action,
            outcome=outcome,
            provider=str(kw.pop("provider", "")),
            credential=str(kw.pop("credential", "")),
            detail=kw,
        )

    def write(self, action: str, outcome: str, **kw: object) -> None:
        self.runtime.ledger.append(self.entry(action, outcome, **kw))

    def result(self, result: ActionResult) -> None:
        a = result.action
        undo_id = None
        if result.outcome is Outcome.DONE and result.undo is not None:
            undo_id = self.runtime.inventory.record_undo(
                run_id=self.request.run_id,
                agent_id=self.request.agent_id,
                action=a,
                data=result.undo,
            )
        self.write(
            a.operation,
            result.outcome.value,
            provider=a.provider,
            credential=a.target,
            verb=a.verb.value,
            principal=a.principal,
            detail=result.detail,
            reversible=a.reversible,
            undo_record=undo_id,
            undo=dict(result.undo or {}),
            elapsed_s=round(result.elapsed_s, 4),
        )
        progress.emit(
            "action",
            f"{a.operation} {a.target}: {result.outcome.value}",
            provider=a.provider,
            run_id=self.request.run_id,
            outcome=result.outcome.value,
        )

    def verdict(self, credential: Credential, verdict: Verdict) -> None:
        self.write(
            "probe",
            verdict.status.value,
            provider=credential.provider,
            credential=credential.ref,
            kind=credential.kind,
            evidence=verdict.evidence,
            attempts=verdict.attempts,
            probe_s=round(verdict.elapsed_s, 4),
        )
        progress.emit(
            "verdict",
            f"{credential.kind} {credential.ref}: {verdict.status.value}",
            provider=credential.provider,
            run_id=self.request.run_id,
            verdict=verdict.status.value,
        )


def refuse(runtime: Runtime, request: Request, error: RefusedError, action: str) -> None:
    """Put a refusal in the ledger (who tried what, and why it was refused)."""
    Recorder(runtime, request).write(
        action,
        "refused",
        code=error.code,
        message=error.message,
        reason=request.reason,
        mode=request.mode,
    )


def _discover(runtime: Runtime, agent: Agent) -> dict[str, Discovery | KillSwitchError]:
    """Every provider's discovery in parallel; transient errors retried inside the deadline."""
    declared = runtime.inventory.declared(agent.id)

    def one(name: str) -> tuple[str, Discovery | KillSwitchError]:
        retrying = retrying_transient(runtime.settings.action_deadline_s)
        try:
            return name, retrying(runtime.revokers[name].discover, agent, declared)
        except KillSwitchError as exc:
            return name, exc

    with ThreadPoolExecutor(max_workers=runtime.provider_workers(len(runtime.revokers))) as pool:
        return dict(pool.map(one, runtime.revokers))


def authorize(runtime: Runtime, request: Request, action: str = "contain") -> Agent:
    """The guards (id format, wildcard, protected, known agent, reason); refusals are ledgered."""
    try:
        validate_reason(request.reason)
        return resolve_agent(runtime.inventory, request.agent_id, runtime.settings.protected_agents)
    except RefusedError as exc:
        refuse(runtime, request, exc, action)
        raise


def prepare(runtime: Runtime, request: Request) -> Plan:
    """Guard, then discover across providers in parallel: the plan (blast radius)."""
    agent = authorize(runtime, request, request.verb)
    progress.emit(
        "plan",
        f"discovering {agent.id} across {', '.join(runtime.revokers)}",
        run_id=request.run_id,
    )
    credentials: list[Credential] = []
    grants: list[Grant] = []
    actions: list[Action] = []
    skipped: list[str] = []
    errors: list[str] = []
    for name, found in _discover(runtime, agent).items():
        if isinstance(found, KillSwitchError):
            errors.append(f"{name}: discovery failed: {found.code}: {found.message}")
            continue
        credentials += found.credentials
        grants += found.grants
        actions += found.actions
        if request.destroys:
            actions += found.destroy
        skipped += found.protected_skipped
    plan = Plan(
        run_id=request.run_id,
        agent=agent,
        target=runtime.settings.target,
        created_at=datetime.now(UTC),
        credentials=tuple(credentials),
        grants=tuple(grants),
        actions=tuple(actions),
        protected_skipped=tuple(skipped),
        errors=tuple(errors),
    )
    Recorder(runtime, request).write(
        request.verb,
        "dry-run" if request.mode == "dry-run" else "started",
        reason=request.reason,
        mode=request.mode,
        target=plan.target,
        credentials=[c.key for c in plan.credentials],
        actions=[action_to_dict(a) for a in plan.actions],
        protected_skipped=list(skipped),
        errors=errors,
    )
    progress.emit(
        "plan",
        f"plan: {len(plan.credentials)} credentials, "
        f"{sum(not a.in_place for a in plan.actions)} actions to take",
        run_id=request.run_id,
        credentials=len(plan.credentials),
        providers=list(plan.providers),
    )
    return plan


def execute(runtime: Runtime, request: Request, plan: Plan, provider: str) -> ProviderOutcome:
    """One provider's contain + detach + probes (what a Prefect task wraps)."""
    recorder = Recorder(runtime, request)

    def phase(name: str) -> None:
        progress.emit("provider", name, provider=provider, run_id=request.run_id, phase=name)

    phase("containing")
    outcome = run_provider(
        runtime.revokers[provider],
        plan.for_provider(provider),
        secrets=runtime.secrets,
        timing=runtime.timing,
        on_result=recorder.result,
        on_verdict=recorder.verdict,
        on_phase=phase,
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


def belongs(action: Action, credential: Credential) -> bool:
    """An action is a credential's when it targets the credential itself, its principal as a
    whole (a deny-all, a disabled entity), or a prefix it lives under (a lease prefix)."""
    target = action.target
    return (
        target == credential.ref
        or (action.verb is Verb.CONTAIN and target == credential.principal)
        or (target.endswith("/") and credential.ref.startswith(target))
    )


def finish(
    runtime: Runtime,
    request: Request,
    plan: Plan,
    outcomes: Sequence[ProviderOutcome],
    *,
    started: float,
    plan_s: float,
    untouched: Sequence[UntouchedCheck] = (),
) -> ContainmentReport:
    """Assemble the report, mark the agent, close the run in the ledger and verify the chain."""
    order = {a.key: i for i, a in enumerate(plan.actions)}
    results = sorted(
        (r for o in outcomes for r in o.results), key=lambda r: order.get(r.action.key, len(order))
    )
    verdicts = {c.key: v for o in outcomes for c, v in o.verdicts}
    credentials = (
        ()
        if request.mode == "dry-run"
        else tuple(
            CredentialReport(
                c,
                tuple(r for r in results if belongs(r.action, c)),
                verdicts.get(c.key, Verdict(VerdictStatus.UNKNOWN, "provider step did not run")),
            )
            for c in plan.credentials
        )
    )
    claimed = {id(r) for c in credentials for r in c.actions}
    grants = tuple(r for r in results if r.action.verb is Verb.DETACH)
    others = tuple(r for r in results if r.action.verb is not Verb.DETACH and id(r) not in claimed)
    if request.mode != "dry-run" and plan.actions:
        # A retired agent stays retired when a sweep contains what it left behind.
        retired = request.destroys or plan.agent.status is AgentStatus.DECOMMISSIONED
        status = AgentStatus.DECOMMISSIONED if retired else AgentStatus.CONTAINED
        runtime.inventory.set_status(plan.agent.id, status)
    report = ContainmentReport(
        run_id=request.run_id,
        agent=runtime.inventory.get_agent(plan.agent.id) or plan.agent,
        reason=request.reason,
        actor=request.actor,
        trigger=request.trigger,
        mode=request.mode,
        target=plan.target,
        plan=plan,
        credentials=credentials,
        grants_detached=grants,
        other_actions=others,
        untouched_agents_checked=tuple(untouched),
        errors=plan.errors,
        verb=request.verb,
        timings=Timings(
            plan_s=plan_s,
            contain_s=max((o.contain_s for o in outcomes), default=0.0),
            verify_s=max((o.verify_s for o in outcomes), default=0.0),
            total_s=time.monotonic() - started,
            proven_s=max((o.proven - started for o in outcomes), default=0.0),
            providers=tuple(
                ProviderTiming(
                    o.provider, o.started - started, o.contain_s, o.verify_s, o.finished - started
                )
                for o in outcomes
            ),
        ),
    )
    if request.mode != "dry-run":
        Recorder(runtime, request).write(
            request.verb,
            "proven" if report.ok else "not-proven",
            summary={s.value: report.count(s) for s in VerdictStatus},
            errors=list(report.errors),
            total_s=round(report.timings.total_s, 4),
        )
    return replace(report, ledger_verified=runtime.ledger.verify_new().ok)


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
        for name, found in _discover(runtime, agent).items():
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


def threads(runtime: Runtime, request: Request, plan: Plan) -> list[ProviderOutcome]:
    """Break-glass: every provider in parallel on plain threads, no orchestrator."""
    providers = [p for p in plan.providers if p in runtime.revokers]
    if not providers:
        return []
    with ThreadPoolExecutor(max_workers=runtime.provider_workers(len(providers))) as pool:
        return list(pool.map(lambda p: execute(runtime, request, plan, p), providers))


def run(
    runtime: Runtime, request: Request, *, runner: Runner = threads, untouched: bool = False
) -> ContainmentReport:
    """The whole containment without Prefect (break-glass, and the dry run)."""
    started = time.monotonic()
    plan = prepare(runtime, request)
    plan_s = time.monotonic() - started
    if request.mode == "dry-run":
        return finish(runtime, request, plan, [], started=started, plan_s=plan_s)
    outcomes = runner(runtime, request, plan)
    checks = check_untouched(runtime, request.agent_id) if untouched else []
    return finish(
        runtime, request, plan, outcomes, started=started, plan_s=plan_s, untouched=checks
    )
