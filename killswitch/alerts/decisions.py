"""What an alert decided, per agent and as a whole, and the rules that decide it — shared by
the desk (which acts) and `playbook explain` (which only says)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from killswitch.alerts.models import Alert
from killswitch.alerts.playbooks import Playbook
from killswitch.models import Agent


@dataclass(frozen=True, slots=True)
class AgentDecision:
    """What one alert did for one agent."""

    agent_id: str
    decision: str  # contain | ask | notify | held | already-contained | refused
    why: str = ""
    run_id: str | None = None
    plan_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent_id,
            "decision": self.decision,
            "why": self.why,
            "run_id": self.run_id,
            "plan_s": round(self.plan_s, 4),
        }


@dataclass
class Outcome:
    """The whole answer for one alert (what the receiver returns, as JSON)."""

    alert_ref: str
    decision: str
    playbook: str | None = None
    agents: list[AgentDecision] = field(default_factory=list)
    note: str = ""
    linked_runs: tuple[str, ...] = ()
    attribution_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "alert": self.alert_ref,
            "attribution_s": round(self.attribution_s, 4),
            "decision": self.decision,
            "playbook": self.playbook,
            "agents": [a.as_dict() for a in self.agents],
            "note": self.note,
            "linked_runs": list(self.linked_runs),
        }


def decide(playbook: Playbook, agent: Agent, agents: int) -> tuple[str, str]:
    """The playbook's action for one agent after its guards: a containment the guards do not
    allow becomes a question to the on-call (never a silent drop)."""
    guards = playbook.guards
    if playbook.do == "contain" and agents > guards.max_agents:
        return "ask", (
            f"the alert resolves to {agents} agents (playbook {playbook.name} allows "
            f"{guards.max_agents})"
        )
    if (
        playbook.do == "contain"
        and guards.environments
        and (agent.environment not in guards.environments)
    ):
        return "ask", (
            f"{agent.id} is in environment {agent.environment or '(none)'}, not one of "
            f"{', '.join(guards.environments)}"
        )
    return playbook.do, f"playbook {playbook.name}"


def alert_run(alert: Alert) -> str:
    """The ledger's run id for the alert's own entries: stable for its copies."""
    return "alert-" + uuid.uuid5(uuid.NAMESPACE_URL, alert.dedup_key).hex


def trigger(alert: Alert) -> str:
    return f"alert:{alert.source}:{(alert.alert_id or alert.fingerprint())[:64]}"


def described(alert: Alert) -> dict[str, Any]:
    """The alert as the ledger keeps it: never a secret."""
    return {
        "source": alert.source,
        "alert_id": alert.alert_id,
        "event": alert.event,
        "finding_type": alert.finding_type,
        "severity": alert.severity,
        "agent_named": alert.agent_id,
        "environment": alert.environment,
        "credentials": [c.describe() for c in alert.credentials],
        "summary": alert.summary,
        "fingerprint": alert.fingerprint(),
        "dedup_key": alert.dedup_key,
        "labels": dict(alert.labels),
    }
