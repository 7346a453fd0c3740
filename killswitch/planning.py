"""Authorize and plan: the guards every run passes, then discovery across every provider at
once, computed one time per run. The plan is what a dry run or a confirmation shows, and
exactly what then runs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial

from killswitch import controls, progress
from killswitch.carried import vanished
from killswitch.codec import action_to_dict
from killswitch.deadlines import answered_within
from killswitch.errors import (
    KillSwitchError,
    ProviderError,
    RefusedError,
    SilentProviderError,
)
from killswitch.guards import resolve_agent, validate_reason
from killswitch.models import Action, Agent, Credential, Grant, Plan, Unsearched
from killswitch.plans import Plans
from killswitch.recorder import Recorder, refuse
from killswitch.request import Mode, Request
from killswitch.retry import due_within, retrying_transient
from killswitch.runtime import Runtime
from killswitch.sightings import Sightings
from revokers.base import Discovery

log = logging.getLogger(__name__)


def authorize(runtime: Runtime, request: Request) -> Agent:
    """The guards (id format, wildcard, protected, known agent, reason); refusals are ledgered."""
    try:
        validate_reason(request.reason)
        return resolve_agent(runtime.inventory, request.agent_id, runtime.settings.protected_agents)
    except RefusedError as exc:
        refuse(runtime, request, exc, str(request.workflow))
        raise


def discover(
    runtime: Runtime,
    agent: Agent,
    on_found: Callable[[str, Discovery], None] = lambda name, found: None,
) -> dict[str, Discovery | KillSwitchError]:
    """Every provider's discovery in parallel; transient errors retried inside the action
    deadline, and no provider waited for past it (a silent one is a SilentProviderError).
    Whatever else goes wrong is that provider's error, never a crash of the run."""
    declared = runtime.inventory.declared(agent.id)
    deadline_s = runtime.settings.action_deadline_s

    def one(name: str) -> Discovery | KillSwitchError:
        try:
            with due_within(deadline_s):
                found: Discovery = retrying_transient(deadline_s)(
                    runtime.revokers[name].discover, agent, declared
                )
            on_found(name, found)  # while the other providers are still being searched
            return found
        except KillSwitchError as exc:
            return exc
        except Exception as exc:
            log.exception("unexpected error discovering %s at %s", agent.id, name)
            return ProviderError(f"unexpected {type(exc).__name__} (see the log)", provider=name)

    answers = answered_within(
        {name: partial(one, name) for name in runtime.revokers},
        deadline_s=deadline_s,
        workers=runtime.provider_workers(len(runtime.revokers)),
    )
    return {
        name: found
        if found is not None
        else SilentProviderError(f"did not answer within {deadline_s:g}s", provider=name)
        for name, found in answers.items()
    }


def known_credentials(runtime: Runtime, agent: Agent, provider: str) -> tuple[Credential, ...]:
    """What is known of the agent's credentials at a provider that cannot be searched now:
    its newest kept plan's (an earlier discovery), the sweep's sightings tagged with it, and
    what the inventory declares; each once."""
    revoker = runtime.revokers.get(provider)
    kinds = set(revoker.credential_kinds) if revoker is not None else None
    known: dict[str, Credential] = {}
    for c in Plans(runtime.inventory).last_known(agent.id, provider):
        known.setdefault(c.key, c)
    for nhi in Sightings(runtime.inventory).nhis(provider):
        if nhi.agent_tag == agent.id and (kinds is None or nhi.kind in kinds):
            known.setdefault(
                nhi.key, Credential(provider, nhi.kind, nhi.ref, nhi.principal, agent.id)
            )
    for ref in runtime.inventory.declared(agent.id):
        if ref.provider == provider and (kinds is None or ref.kind in kinds):
            known.setdefault(
                f"{ref.kind}:{ref.ref}", Credential(provider, ref.kind, ref.ref, "", agent.id)
            )
    return tuple(known.values())


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

    def baselines(name: str, found: Discovery) -> None:
        """The controls of a run that contains, taken as soon as the provider answered."""
        if request.mode is not Mode.DRY_RUN and found.credentials:
            controls.start(
                request.run_id, runtime.revokers[name], found.credentials, runtime.secrets
            )

    return keep(runtime, request, agent, discover(runtime, agent, baselines))


def keep(
    runtime: Runtime,
    request: Request,
    agent: Agent,
    discovered: Mapping[str, Discovery | KillSwitchError],
    **ledgered: object,
) -> Plan:
    """The plan from what discovery found (or why a provider could not be searched): kept
    under the run id and ledgered once (`ledgered`: extra detail, e.g. the fleet's id)."""
    credentials: list[Credential] = []
    grants: list[Grant] = []
    actions: list[Action] = []
    skipped: list[str] = []
    errors: list[str] = []
    unsearched: list[Unsearched] = []
    for name, found in discovered.items():
        if isinstance(found, KillSwitchError):
            reason = f"discovery failed: {found.code}: {found.message}"
            errors.append(f"{name}: {reason}")
            unsearched.append(Unsearched(name, reason, known_credentials(runtime, agent, name)))
            progress.emit("plan", reason, provider=name, run_id=request.run_id)
            continue
        credentials += found.credentials
        if request.mode is not Mode.DRY_RUN:
            gone = vanished(runtime, agent.id, name, found.credentials)
            if gone:
                credentials += gone
                progress.emit(
                    "plan",
                    f"{len(gone)} credential(s) revoked by an earlier run and no longer "
                    "listed: probed again",
                    provider=name,
                    run_id=request.run_id,
                )
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
        unsearched=tuple(unsearched),
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
        unsearched={u.provider: [c.key for c in u.known] for u in unsearched},
        **ledgered,
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


FleetDiscovery = dict[str, dict[str, Discovery | KillSwitchError]]


def discover_fleet(runtime: Runtime, agents: Sequence[Agent]) -> FleetDiscovery:
    """Every agent's discovery at every provider, one pass per provider for the whole fleet:
    a revoker with `discover_fleet(agents, declared)` scans once (one tag scan, one accessor
    scan), the others are asked per agent on the provider's own workers. Providers in
    parallel; each inside the action deadline (a silent one: SilentProviderError for every
    agent); agent → provider → what was found, or why not."""
    declared = {a.id: runtime.inventory.declared(a.id) for a in agents}
    deadline_s = runtime.settings.action_deadline_s

    def one_agent(name: str, agent: Agent) -> Discovery | KillSwitchError:
        try:
            with due_within(deadline_s):
                found: Discovery = retrying_transient(deadline_s)(
                    runtime.revokers[name].discover, agent, declared[agent.id]
                )
            return found
        except KillSwitchError as exc:
            return exc
        except Exception as exc:
            log.exception("unexpected error discovering %s at %s", agent.id, name)
            return ProviderError(f"unexpected {type(exc).__name__} (see the log)", provider=name)

    def provider(name: str) -> dict[str, Discovery | KillSwitchError]:
        revoker = runtime.revokers[name]
        whole = getattr(revoker, "discover_fleet", None)
        if whole is not None:
            try:
                with due_within(deadline_s):
                    found: dict[str, Discovery] = retrying_transient(deadline_s)(
                        whole, list(agents), declared
                    )
                return {a.id: found[a.id] for a in agents}
            except KillSwitchError as exc:
                return {a.id: exc for a in agents}
            except Exception as exc:
                log.exception("unexpected error in the fleet discovery at %s", name)
                error = ProviderError(
                    f"unexpected {type(exc).__name__} (see the log)", provider=name
                )
                return {a.id: error for a in agents}
        with ThreadPoolExecutor(
            max_workers=max(1, min(revoker.max_workers, len(agents))), thread_name_prefix=name
        ) as pool:
            return dict(
                zip([a.id for a in agents], pool.map(partial(one_agent, name), agents), strict=True)
            )

    answers = answered_within(
        {name: partial(provider, name) for name in runtime.revokers},
        deadline_s=deadline_s,
        workers=runtime.provider_workers(len(runtime.revokers)),
    )
    fleet: FleetDiscovery = {a.id: {} for a in agents}
    for name, by_agent in answers.items():
        for agent in agents:
            fleet[agent.id][name] = (
                by_agent[agent.id]
                if by_agent is not None
                else SilentProviderError(f"did not answer within {deadline_s:g}s", provider=name)
            )
    return fleet


def plan_fleet(runtime: Runtime, requests: Sequence[Request], *, fleet_id: str) -> list[Plan]:
    """Authorize every request (one refusal refuses the fleet: nothing is planned), discover
    once for the whole fleet, and keep one plan per agent under its request's run id."""
    agents = [authorize(runtime, r) for r in requests]
    progress.emit(
        "plan",
        f"discovering {len(agents)} agents across {', '.join(runtime.revokers)} "
        "(one pass per provider)",
        run_id=fleet_id,
    )
    found = discover_fleet(runtime, agents)
    return [
        keep(runtime, request, agent, found[agent.id], fleet=fleet_id)
        for request, agent in zip(requests, agents, strict=True)
    ]
