"""Plans kept by run id: computed once, shown (a dry run, a confirmation button), and then
run exactly as shown — by the warm process, break-glass, or a flow in another process.

A plan runs at most once: `claim` moves it from `planned` to `running` atomically, so a
double click, a replayed button or a second replica cannot run it twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, fields
from datetime import UTC, datetime
from enum import Enum, StrEnum
from typing import Any

from killswitch.codec import action_from_dict, action_to_dict
from killswitch.errors import RefusedError
from killswitch.inventory import Inventory
from killswitch.models import Agent, AgentStatus, Credential, Grant, Plan, Unsearched
from killswitch.request import Mode, Request, Workflow

_SCHEMA = """
CREATE TABLE IF NOT EXISTS plans (
    run_id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    state TEXT NOT NULL,
    request TEXT NOT NULL,
    plan TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS plans_by_agent ON plans (agent_id, created_at);
"""


class PlanState(StrEnum):
    PLANNED = "planned"
    DRY_RUN = "dry-run"  # shown, never to be run
    RUNNING = "running"
    FINISHED = "finished"


class PlanNotRunnableError(RefusedError):
    code = "plan-not-runnable"
    remediation = "Plan again (a new dry run, or the command again): a plan runs once."


class Plans:
    """The plans table, beside the inventory (same database, same connection)."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        with inventory.transaction() as db:
            db.executescript(_SCHEMA)

    def save(self, request: Request, plan: Plan) -> None:
        """Keep the plan under its run id (once; a second save of the same id is an error)."""
        state = PlanState.DRY_RUN if request.mode is Mode.DRY_RUN else PlanState.PLANNED
        now = _now()
        with self.inventory.transaction() as db:
            db.execute(
                "INSERT INTO plans VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    plan.run_id,
                    plan.agent.id,
                    state.value,
                    json.dumps(_request_to_dict(request)),
                    json.dumps(plan_to_record(plan)),
                    now,
                    now,
                ),
            )

    def load(self, run_id: str) -> tuple[Request, Plan, PlanState]:
        """The request and plan kept under `run_id`, and where it stands."""
        with self.inventory.transaction() as db:
            row = db.execute(
                "SELECT request, plan, state FROM plans WHERE run_id = ?", (run_id,)
            ).fetchone()
        if row is None:
            raise PlanNotRunnableError(f"no plan {run_id!r} is kept here")
        return (
            _request_from_dict(json.loads(row[0])),
            plan_from_record(json.loads(row[1])),
            PlanState(row[2]),
        )

    def state(self, run_id: str) -> PlanState | None:
        """Where the plan kept under `run_id` stands (None: no such plan)."""
        with self.inventory.transaction() as db:
            row = db.execute("SELECT state FROM plans WHERE run_id = ?", (run_id,)).fetchone()
        return PlanState(row[0]) if row else None

    def claim(self, run_id: str) -> None:
        """`planned` → `running`, atomically; refuse a plan that is not waiting to run."""
        with self.inventory.transaction() as db:
            moved = db.execute(
                "UPDATE plans SET state = ?, updated_at = ? WHERE run_id = ? AND state = ?",
                (PlanState.RUNNING.value, _now(), run_id, PlanState.PLANNED.value),
            ).rowcount
            row = db.execute("SELECT state FROM plans WHERE run_id = ?", (run_id,)).fetchone()
        if not moved:
            where = f"it is {row[0]}" if row else "there is no such plan"
            raise PlanNotRunnableError(f"plan {run_id[:12]} cannot run: {where}")

    def clear(self) -> None:
        """Forget every plan (the sandbox's reset; never used on a live inventory)."""
        with self.inventory.transaction() as db:
            db.execute("DELETE FROM plans")

    def finish(self, run_id: str) -> None:
        with self.inventory.transaction() as db:
            db.execute(
                "UPDATE plans SET state = ?, updated_at = ? WHERE run_id = ?",
                (PlanState.FINISHED.value, _now(), run_id),
            )

    def last_known(
        self, agent_id: str, provider: str, *, plans: int = 50
    ) -> tuple[Credential, ...]:
        """The provider's credentials in the agent's newest kept plan that has any (a dry run
        counts: it is a discovery too); () when none of its last `plans` plans has."""
        with self.inventory.transaction() as db:
            rows = db.execute(
                "SELECT plan FROM plans WHERE agent_id = ? ORDER BY created_at DESC LIMIT ?",
                (agent_id, plans),
            ).fetchall()
        for (record,) in rows:
            kept = plan_from_record(json.loads(record))
            found = tuple(c for c in kept.credentials if c.provider == provider)
            found = found or tuple(
                c for u in kept.unsearched if u.provider == provider for c in u.known
            )
            if found:
                return found
        return ()

    def latest(self, agent_id: str) -> str | None:
        """The run id of the agent's newest plan that was (or is being) run."""
        with self.inventory.transaction() as db:
            row = db.execute(
                "SELECT run_id FROM plans WHERE agent_id = ? AND state IN (?, ?) "
                "ORDER BY created_at DESC LIMIT 1",
                (agent_id, PlanState.RUNNING.value, PlanState.FINISHED.value),
            ).fetchone()
        return str(row[0]) if row else None


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _record(item: Agent | Credential | Grant) -> dict[str, Any]:
    """A frozen model as JSON values: datetimes as ISO strings, enums as their values."""
    return {
        f.name: v.isoformat() if isinstance(v, datetime) else v.value if isinstance(v, Enum) else v
        for f in fields(item)
        for v in [getattr(item, f.name)]
    }


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


def _request_to_dict(request: Request) -> dict[str, Any]:
    return {**asdict(request), "mode": str(request.mode), "workflow": str(request.workflow)}


def _request_from_dict(data: Mapping[str, Any]) -> Request:
    return Request(
        agent_id=str(data["agent_id"]),
        reason=str(data["reason"]),
        actor=str(data["actor"]),
        trigger=str(data["trigger"]),
        mode=Mode(data["mode"]),
        run_id=str(data["run_id"]),
        workflow=Workflow(data["workflow"]),
    )


def plan_to_record(plan: Plan) -> dict[str, Any]:
    """Everything in a plan, losslessly (the `--json` shape is `codec.plan_to_dict`)."""
    return {
        "run_id": plan.run_id,
        "agent": _record(plan.agent),
        "target": plan.target,
        "created_at": plan.created_at.isoformat(),
        "credentials": [_record(c) for c in plan.credentials],
        "grants": [_record(g) for g in plan.grants],
        "actions": [action_to_dict(a) for a in plan.actions],
        "protected_skipped": list(plan.protected_skipped),
        "errors": list(plan.errors),
        "unsearched": [
            {"provider": u.provider, "reason": u.reason, "known": [_record(c) for c in u.known]}
            for u in plan.unsearched
        ],
    }


def plan_from_record(data: Mapping[str, Any]) -> Plan:
    """The plan `plan_to_record` wrote."""
    agent = dict(data["agent"])
    return Plan(
        run_id=str(data["run_id"]),
        agent=Agent(
            **{
                **agent,
                "status": AgentStatus(agent["status"]),
                "expires_at": _when(agent["expires_at"]),
            }
        ),
        target=str(data["target"]),
        created_at=datetime.fromisoformat(str(data["created_at"])),
        credentials=tuple(_credential(c) for c in data["credentials"]),
        grants=tuple(Grant(**g) for g in data["grants"]),
        actions=tuple(action_from_dict(a) for a in data["actions"]),
        protected_skipped=tuple(str(s) for s in data["protected_skipped"]),
        errors=tuple(str(e) for e in data["errors"]),
        unsearched=tuple(
            Unsearched(
                str(u["provider"]), str(u["reason"]), tuple(_credential(c) for c in u["known"])
            )
            for u in data.get("unsearched", ())  # plans kept before it was recorded
        ),
    )


def _credential(data: Mapping[str, Any]) -> Credential:
    return Credential(
        **{
            **data,
            "created_at": _when(data["created_at"]),
            "last_used_at": _when(data["last_used_at"]),
        }
    )
