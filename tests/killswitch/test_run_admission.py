"""Admitting a flow run: in-process (handed over), by ticket, or as the schedule's own run;
anything else refused before it acts, the refusal ledgered with the actor it claimed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from killswitch.ledger_key import derived_key
from killswitch.plans import Plans
from killswitch.request import Request
from killswitch.run_admission import SCHEDULE_PARAMETERS, RunFacts, admit, slot_problem
from killswitch.run_tickets import PURPOSE, UnverifiedRunError, mint
from killswitch.runtime import Runtime
from killswitch.settings import Settings, SweepSettings
from tests.killswitch.test_plans import a_plan

SWEEP_ARGS: dict[str, Any] = {
    "dry_run": None,
    "providers": None,
    "agents": None,
    "run_id": None,
    **SCHEDULE_PARAMETERS,
}
API_RUN = RunFacts(flow_run_id="fr-1", deployment_id="dep-1")


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(home=tmp_path, sweep=SweepSettings(cron="* * * * *"))
    opened = Runtime.open(settings)
    yield opened
    opened.close()


def refusals(runtime: Runtime) -> list[dict[str, Any]]:
    return [r for r in runtime.ledger.rows() if r["action"] == "flow-run"]


def ticket(runtime: Runtime, flow: str, args: dict[str, Any], actor: str) -> str:
    key = derived_key(runtime.settings, PURPOSE)
    return mint(key, flow=flow, args=args, actor=actor, trigger="test")


def test_in_process_runs_are_admitted_as_their_caller_said(runtime: Runtime) -> None:
    args = {**SWEEP_ARGS, "actor": "cli:bob", "trigger": "cli"}
    admitted = admit(runtime, flow="zombie-sweep", args=args, ticket=None, facts=None)
    assert (admitted.how, admitted.actor) == ("in-process", "cli:bob")
    assert refusals(runtime) == []


def test_an_api_run_without_a_ticket_is_refused_and_ledgered(runtime: Runtime) -> None:
    args = {**SWEEP_ARGS, "actor": "alice", "trigger": "slack", "dry_run": False}
    with pytest.raises(UnverifiedRunError, match="parameters are not the schedule's"):
        admit(runtime, flow="zombie-sweep", args=args, ticket=None, facts=API_RUN)
    with pytest.raises(UnverifiedRunError, match="needs a ticket"):
        admit(runtime, flow="restore", args={"actor": "eve"}, ticket=None, facts=API_RUN)
    first, second = refusals(runtime)
    assert first["actor"] == "prefect:unverified:alice" and first["outcome"] == "refused"
    assert first["detail"]["flow_run"] == "fr-1" and first["detail"]["code"] == "unverified-run"
    assert second["actor"] == "prefect:unverified:eve"


def test_a_ticket_admits_once_as_its_actor(runtime: Runtime) -> None:
    args = {**SWEEP_ARGS, "actor": "cli:bob", "trigger": "test", "dry_run": True}
    signed = ticket(runtime, "zombie-sweep", args, "cli:bob")
    admitted = admit(runtime, flow="zombie-sweep", args=args, ticket=signed, facts=API_RUN)
    assert (admitted.how, admitted.actor, admitted.trigger) == ("ticket", "cli:bob", "test")
    with pytest.raises(UnverifiedRunError, match="replayed"):
        admit(runtime, flow="zombie-sweep", args=args, ticket=signed, facts=API_RUN)
    lying = {**args, "actor": "alice"}
    with pytest.raises(UnverifiedRunError, match="actor is not the ticket's"):
        admit(
            runtime,
            flow="zombie-sweep",
            args=lying,
            ticket=ticket(runtime, "zombie-sweep", lying, "cli:bob"),
            facts=API_RUN,
        )
    assert [r["actor"] for r in refusals(runtime)] == ["prefect:unverified:cli:bob"] * 2


def test_a_contain_ticket_must_name_who_made_the_plan(runtime: Runtime) -> None:
    request = Request("agent-1", "leak", "cli:bob")
    Plans(runtime.inventory).save(request, a_plan(request.run_id))
    args = {"run_id": request.run_id, "agent_id": "agent-1", "check_untouched": False}

    def run_as(actor: str) -> str | None:
        signed = ticket(runtime, "contain", args, actor)
        facts, plan = API_RUN, request.run_id
        return admit(
            runtime, flow="contain", args=args, ticket=signed, facts=facts, plan=plan
        ).actor

    with pytest.raises(UnverifiedRunError, match="not the one who made the plan"):
        run_as("cli:mallory")
    assert run_as("cli:bob") == "cli:bob"
    with pytest.raises(UnverifiedRunError, match="needs a ticket"):
        admit(runtime, flow="contain", args=args, ticket=None, facts=API_RUN, plan=request.run_id)


def test_the_schedules_own_run_is_admitted_once_per_slot(runtime: Runtime) -> None:
    slot = datetime.now(UTC).replace(second=0, microsecond=0)
    scheduled = RunFacts("fr-2", "dep-1", auto_scheduled=True, expected_start=slot)
    admitted = admit(runtime, flow="zombie-sweep", args=SWEEP_ARGS, ticket=None, facts=scheduled)
    assert (admitted.how, admitted.actor) == ("schedule", "schedule")
    with pytest.raises(UnverifiedRunError, match="run already"):
        admit(runtime, flow="zombie-sweep", args=SWEEP_ARGS, ticket=None, facts=scheduled)
    cases = {
        "not created by a schedule": RunFacts("fr-3", "dep-1", expected_start=slot),
        "from now": RunFacts("fr-4", "dep-1", True, slot - timedelta(hours=2)),
        "not a slot": RunFacts("fr-5", "dep-1", True, slot + timedelta(seconds=30)),
    }
    for problem, facts in cases.items():
        with pytest.raises(UnverifiedRunError, match=problem):
            admit(runtime, flow="zombie-sweep", args=SWEEP_ARGS, ticket=None, facts=facts)
    with pytest.raises(UnverifiedRunError, match="parameters are not the schedule's"):
        admit(
            runtime,
            flow="zombie-sweep",
            args={**SWEEP_ARGS, "agents": ["a-1"]},
            ticket=None,
            facts=RunFacts("fr-6", "dep-1", True, slot),
        )
    assert len(refusals(runtime)) == 5


def test_a_slot_is_recognised_whatever_datetime_class_prefect_hands_over() -> None:
    import pendulum

    slot = pendulum.datetime(2026, 12, 2, 6, 0, tz="UTC")
    assert slot_problem("0 6 * * *", "UTC", slot, slot + timedelta(seconds=5)) is None
    assert slot_problem("0 7 * * *", "Europe/Berlin", slot, slot) is None
    assert "not a slot" in str(slot_problem("0 6 * * *", "Europe/Berlin", slot, slot))
