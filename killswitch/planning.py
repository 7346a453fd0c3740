"""Authorize and plan: the guards every run passes, then discovery across every provider at
once, computed one time per run. The plan is what a dry run or a confirmation shows, and
exactly what then runs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from killswitch import progress
from killswitch.codec import action_to_dict
from killswitch.errors import KillSwitchError, RefusedError
from killswitch.guards import resolve_agent, validate_reason
from killswitch.models import Action, Agent, Credential, Grant, Plan
from killswitch.plans import Plans
from killswitch.recorder import Recorder, refuse
from killswitch.request import Mode, Request
from killswitch.retry import retrying_transient
from killswitch.runtime import Runtime
from revokers.base import Discovery


def authorize(runtime: Runtime, request: Request) -> Agent:
    """The guards (id format, wildcard, protected, known agent, reason); refusals are ledgered."""
    try:
        validate_reason(request.reason)
        return resolve_agent(runtime.inventory, request.agent_id, runtime.settings.protected_agents)
    except RefusedError as exc:
        refuse(runtime, request, exc, str(request.workflow))
        raise


def discover(runtime: Runtime, agent: Agent) -> dict[str, Discovery | KillSwitchError]:
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


def plan(runtime: Runtime, request: Request, agent: Agent | None = None) -> Plan:
    """Discover across providers in parallel (the blast radius), ledger the plan once and
    keep it under the run id. `agent` is the one `authorize` returned, when the entry point
    authorized already; otherwise the guards run here."""
    agent = agent or authorize(runtime, request)
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
    for name, found in discover(runtime, agent).items():
        if isinstance(found, KillSwitchError):
            errors.append(f"{name}: discovery failed: {found.code}: {found.message}")
            continue
        credentials += found.credentials
        grants += found.grants
        actions += found.actions
        if request.destroys:
            actions += found.destroy
        skipped += found.protected_skipped
    made = Plan(
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
    Plans(runtime.inventory).save(request, made)
    Recorder(runtime, request).write(
        "plan",
        "dry-run" if request.mode is Mode.DRY_RUN else "planned",
        workflow=str(request.workflow),
        reason=request.reason,
        mode=str(request.mode),
        target=made.target,
        credentials=[c.key for c in made.credentials],
        actions=[action_to_dict(a) for a in made.actions],
        protected_skipped=list(skipped),
        errors=errors,
    )
    progress.emit(
        "plan",
        f"plan: {len(made.credentials)} credentials, "
        f"{sum(not a.in_place for a in made.actions)} actions to take",
        run_id=request.run_id,
        credentials=len(made.credentials),
        providers=list(made.providers),
    )
    return made
