"""`killswitch playbook explain`: what one alert would do — its playbook, its agents, the
plan — changing nothing. The on-call's way to test a playbook before trusting it.

The alert is read as its source would parse it (no signature: the file is the operator's),
traced with the same attribution, guarded with the same rules, and the agents' providers
are searched (discovery only reads); nothing is contained, asked, ledgered or kept.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from killswitch import planning
from killswitch.alerts import fingerprints as prints
from killswitch.alerts.attribution import attribute
from killswitch.alerts.decisions import decide
from killswitch.alerts.guard import StormBreaker
from killswitch.alerts.models import Alert
from killswitch.alerts.playbooks import Book
from killswitch.alerts.sources.enriching import enriched
from killswitch.alerts.unsigned import unsigned
from killswitch.errors import KillSwitchError, RefusedError
from killswitch.fleet_yaml import read
from killswitch.guards import resolve_agent
from killswitch.models import AgentStatus
from killswitch.runtime import Runtime


def explain(runtime: Runtime, book: Book, source: str, path: Path) -> dict[str, Any]:
    """The explanation of every alert the file holds, as JSON-ready data."""
    body = read(path).encode()
    alerts = unsigned(runtime.settings.alerts, source, body, datetime.now(UTC))
    known = prints.opened(runtime.settings, runtime.inventory)
    breaker = StormBreaker(
        runtime.inventory,
        runtime.settings.alerts.guards.storm_max_agents,
        runtime.settings.alerts.guards.storm_window_s,
    ).state()
    return {
        "alerts": [_one(runtime, book, alert, known, breaker.tripped) for alert in alerts],
        "changed": False,
    }


def _one(
    runtime: Runtime, book: Book, alert: Alert, known: prints.Fingerprints, tripped: bool
) -> dict[str, Any]:
    said: dict[str, Any] = {
        "source": alert.source,
        "event": alert.event,
        "finding_type": alert.finding_type,
        "severity": alert.severity,
        "summary": alert.summary,
        "credentials": [c.describe() for c in alert.credentials],
        "playbook": None,
        "traced": [],
        "untraced": [],
        "agents": [],
    }
    matched = book.match(alert)
    if matched is None:
        return said
    alert, fetched = enriched(alert, runtime.settings.alerts)  # a read of the sender's API
    if fetched:
        said["fetched"] = fetched
    said["playbook"] = {
        "name": matched.playbook.name,
        "where": matched.where,
        "do": matched.playbook.do,
    }
    attribution = attribute(runtime, alert, known)
    said["traced"] = list(attribution.traced)
    said["untraced"] = list(attribution.untraced)
    for agent_id in attribution.agents:
        try:
            agent = resolve_agent(runtime.inventory, agent_id, runtime.settings.protected_agents)
        except RefusedError as exc:
            said["agents"].append({"agent": agent_id, "decision": "refused", "why": exc.message})
            continue
        if agent.status is not AgentStatus.ACTIVE:
            said["agents"].append(
                {"agent": agent_id, "decision": "nothing", "why": f"it is {agent.status.value}"}
            )
            continue
        do, why = decide(matched.playbook, agent, len(attribution.agents))
        if do == "contain" and tripped:
            do, why = "ask", "the storm breaker is open: a human decides"
        leaked = attribution.leaked_keys.get(agent_id, [])
        said["agents"].append(
            {
                "agent": agent_id,
                "decision": do,
                "why": why,
                "plan": _plan(runtime, agent_id) if do != "notify" else {},
                "proven_with_leaked_value": leaked,
            }
        )
    return said


def _plan(runtime: Runtime, agent_id: str) -> dict[str, str]:
    """Per provider, what discovery finds (read-only; nothing is kept or ledgered)."""
    agent = runtime.inventory.get_agent(agent_id)
    assert agent is not None  # noqa: S101  (resolved just before)
    shown: dict[str, str] = {}
    for name, found in planning.discover(runtime, agent).items():
        if isinstance(found, KillSwitchError):
            shown[name] = f"discovery failed: {found.code}: {found.message}"
            continue
        acting = sum(not a.in_place for a in found.actions)
        shown[name] = (
            f"{len(found.credentials)} credentials, {len(found.grants)} grants, {acting} actions"
        )
    return shown
