"""Plans kept by run id: a lossless round trip, and a plan that runs at most once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from killswitch.models import Action, Agent, AgentStatus, Credential, Grant, Plan, Verb
from killswitch.plans import PlanNotRunnableError, Plans, PlanState
from killswitch.request import Mode, Request, Workflow
from tests.conftest import InventoryAt


def a_plan(run_id: str) -> Plan:
    agent = Agent(
        "agent-1", "team", AgentStatus.ACTIVE, "p", "prod", datetime(2027, 1, 1, tzinfo=UTC)
    )
    return Plan(
        run_id=run_id,
        agent=agent,
        target="sandbox",
        created_at=datetime.now(UTC),
        credentials=(
            Credential("p1", "p1.key", "k-1", "user-1", agent.id, "Active", datetime.now(UTC)),
        ),
        grants=(Grant("p1", "p1.group", "user-1", "g-1", agent.id),),
        actions=(
            Action("p1", Verb.CONTAIN, "deactivate", "user-1", "k-1", True, params={"a": "b"}),
            Action("p1", Verb.DESTROY, "delete", "user-1", "k-1", False, phase=2),
        ),
        protected_skipped=("p1.user admin",),
        errors=("p2: discovery failed: down",),
    )


@pytest.fixture
def plans(inventory_at: InventoryAt) -> Plans:
    """On SQLite and on PostgreSQL (where a fleet's lanes on other hosts claim the plans)."""
    return Plans(inventory_at("a"))


def test_a_kept_plan_comes_back_exactly(plans: Plans) -> None:
    request = Request("agent-1", "leak", "cli:me", workflow=Workflow.DECOMMISSION)
    plan = a_plan(request.run_id)
    plans.save(request, plan)
    assert plans.load(request.run_id) == (request, plan, PlanState.PLANNED)


def test_a_plan_runs_once_however_many_ask_at_once(plans: Plans) -> None:
    request = Request("agent-1", "leak", "cli:me")
    plans.save(request, a_plan(request.run_id))

    def claim(_: int) -> bool:
        try:
            plans.claim(request.run_id)
        except PlanNotRunnableError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert sorted(pool.map(claim, range(16))) == [False] * 15 + [True]
    with pytest.raises(PlanNotRunnableError, match="it is running"):
        plans.claim(request.run_id)
    plans.finish(request.run_id)
    assert plans.latest("agent-1") == request.run_id


def test_a_dry_run_or_unknown_plan_never_runs(plans: Plans) -> None:
    dry = Request("agent-1", "look", "cli:me", mode=Mode.DRY_RUN)
    plans.save(dry, a_plan(dry.run_id))
    with pytest.raises(PlanNotRunnableError, match="it is dry-run"):
        plans.claim(dry.run_id)
    with pytest.raises(PlanNotRunnableError, match="no such plan"):
        plans.claim("0" * 32)
    with pytest.raises(PlanNotRunnableError, match="no plan"):
        plans.load("0" * 32)
