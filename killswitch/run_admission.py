"""Which flow runs the kill switch acts on, and as whom: before a flow does anything, it is
admitted one of three ways, or refused (and the refusal ledgered).

- **in-process**: run by our own process, which handed its runtime over (`flows.handover`);
  the caller already authorised the actor (the CLI's user, a verified Slack request).
- **ticket**: started through the orchestrator's API with a valid, unexpired, unused ticket
  (`killswitch.run_tickets`) for exactly these arguments; the actor is the ticket's.
- **schedule** (the zombie sweep only): no ticket, but the run is the one the schedule
  makes — auto-scheduled by Prefect for a deployment, expected on a slot of *our*
  `sweep.cron` (from the profile, not the deployment), started near that slot, with exactly
  the schedule's arguments, and the first run for that slot. The actor is `schedule`.
  Anyone with API access can still make such a run happen (`POST /deployments/{id}/schedule`
  creates auto-scheduled runs), but only the scheduled sweep itself, once per slot, at its time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

from killswitch.ledger_key import derived_key
from killswitch.plans import PlanNotRunnableError, Plans
from killswitch.recorder import Recorder
from killswitch.request import Request
from killswitch.run_tickets import PURPOSE, Nonces, UnverifiedRunError, claimed_actor, verify
from killswitch.runtime import Runtime

SCHEDULE_ACTOR = "schedule"
# What the deployment `killswitch serve` registers passes; anything else needs a ticket.
SCHEDULE_PARAMETERS = {"actor": SCHEDULE_ACTOR, "trigger": SCHEDULE_ACTOR}
SCHEDULED_FLOWS = ("zombie-sweep",)
SLOT_EARLY_S = 60.0  # a runner may start a run a little before its time
SLOT_LATE_S = 900.0  # or late, when it was busy or restarting


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What the orchestrator says of the flow run being started — its own record, which
    anyone with API access can shape; used only within the limits above."""

    flow_run_id: str
    deployment_id: str | None = None
    auto_scheduled: bool = False
    expected_start: datetime | None = None


@dataclass(frozen=True, slots=True)
class Admitted:
    """How a run was admitted and whom the ledger names (None: the kept plan's actor)."""

    how: str  # in-process · ticket · schedule
    actor: str | None
    trigger: str | None


def admit(
    runtime: Runtime,
    *,
    flow: str,
    args: Mapping[str, Any],
    ticket: str | None,
    facts: RunFacts | None,
    agent_id: str = "-",
    plan: str | None = None,
) -> Admitted:
    """Admit the run (`facts` None: in-process, handed over) or ledger its refusal and raise
    UnverifiedRunError, before anything else is done. `plan`: the kept plan the run would
    run, whose actor a ticket must name."""
    given_actor = args.get("actor")
    given_trigger = args.get("trigger")
    if facts is None:
        return Admitted("in-process", given_actor, given_trigger)
    try:
        if ticket:
            return _ticketed(runtime, flow, args, ticket, plan)
        if flow in SCHEDULED_FLOWS:
            return _scheduled(runtime, flow, args, facts)
        raise UnverifiedRunError(f"a {flow} flow run started through the API needs a ticket")
    except UnverifiedRunError as exc:
        claimed = claimed_actor(ticket) or _printable(given_actor or "?")
        refusal = Request(
            agent_id=_printable(agent_id),
            reason=f"{flow} flow run {facts.flow_run_id}",
            actor=f"prefect:unverified:{claimed}",
            trigger=f"prefect:{flow}",
        )
        Recorder(runtime, refusal).write(
            "flow-run",
            "refused",
            code=exc.code,
            message=exc.message,
            flow=flow,
            flow_run=facts.flow_run_id,
            deployment=facts.deployment_id or "",
            ticket="present" if ticket else "absent",
            plan=str(args.get("run_id") or ""),
        )
        raise


def _printable(value: object) -> str:
    """An unverified value for the ledger line of a refusal: printable, cut to size."""
    return "".join(c for c in str(value) if c.isprintable())[:64] or "?"


def _ticketed(
    runtime: Runtime, flow: str, args: Mapping[str, Any], token: str, plan: str | None
) -> Admitted:
    checked = verify(derived_key(runtime.settings, PURPOSE), token, flow=flow, args=args)
    if plan is not None:
        try:
            planned_by = Plans(runtime.inventory).load(plan)[0].actor
        except PlanNotRunnableError as exc:
            raise UnverifiedRunError(exc.message) from None
        if planned_by != checked.actor:
            raise UnverifiedRunError("the ticket's actor is not the one who made the plan")
    for name, said in (("actor", checked.actor), ("trigger", checked.trigger)):
        if name in args and args[name] != said:
            raise UnverifiedRunError(f"the run's {name} is not the ticket's")
    if not Nonces(runtime.inventory).first_time(checked.nonce, flow, checked.expires_at):
        raise UnverifiedRunError("replayed ticket (it started a run before)")
    return Admitted("ticket", checked.actor, checked.trigger)


def _scheduled(runtime: Runtime, flow: str, args: Mapping[str, Any], facts: RunFacts) -> Admitted:
    unticketed = "no ticket, and not the scheduled sweep"
    extra = {k: v for k, v in args.items() if k not in SCHEDULE_PARAMETERS and v is not None}
    if extra or any(args.get(k) != v for k, v in SCHEDULE_PARAMETERS.items()):
        raise UnverifiedRunError(f"{unticketed}: its parameters are not the schedule's")
    if not facts.auto_scheduled or facts.deployment_id is None or facts.expected_start is None:
        raise UnverifiedRunError(f"{unticketed}: the run was not created by a schedule")
    config = runtime.settings.sweep
    problem = slot_problem(config.cron, config.timezone, facts.expected_start, datetime.now(UTC))
    if problem:
        raise UnverifiedRunError(f"{unticketed}: {problem}")
    slot = facts.expected_start.isoformat()
    expires = facts.expected_start.timestamp() + SLOT_LATE_S + 86400
    if not Nonces(runtime.inventory).first_time(f"schedule:{flow}:{slot}", flow, expires):
        raise UnverifiedRunError(f"{unticketed}: the slot {slot} was run already")
    return Admitted("schedule", SCHEDULE_ACTOR, SCHEDULE_ACTOR)


def slot_problem(cron: str | None, timezone: str, expected: datetime, now: datetime) -> str | None:
    """Why `expected` is not a slot of `cron` that may start `now` (None: it is one)."""
    if not cron:
        return "sweep.cron is not set: no run is scheduled"
    zone = ZoneInfo(timezone)
    if expected.tzinfo is None:
        return "the run's expected start has no time zone"
    # A plain datetime: Prefect hands over pendulum's, which cronsim compares as naive.
    local = datetime.fromtimestamp(expected.timestamp(), tz=zone)
    try:
        following = next(CronSim(cron, local - timedelta(seconds=1)))
    except (CronSimError, StopIteration):
        return f"sweep.cron {cron!r} has no slot there"
    if following != local:
        return f"{local.isoformat()} is not a slot of sweep.cron {cron!r}"
    late = (now.astimezone(zone) - local).total_seconds()
    if not -SLOT_EARLY_S <= late <= SLOT_LATE_S:
        return f"the slot {local.isoformat()} is {late:.0f}s from now"
    return None
