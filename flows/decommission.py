"""The `decommission` flow: contain, then destroy every credential of the agent for good."""

from __future__ import annotations

import uuid

from prefect import flow

from flows.contain import run_in_flow
from killswitch.containment import Request
from killswitch.models import ContainmentReport


@flow(name="decommission", flow_run_name="decommission-{agent_id}", persist_result=False)
def decommission(
    agent_id: str,
    reason: str,
    actor: str = "prefect",
    trigger: str = "prefect",
    run_id: str | None = None,
) -> ContainmentReport:
    """Retire an agent: containment first (so nothing works while deletion proceeds), then
    irreversible deletion in the order each provider accepts; every credential probed dead."""
    request = Request(
        agent_id=agent_id,
        reason=reason,
        actor=actor,
        trigger=trigger,
        mode="flow",
        run_id=run_id or uuid.uuid4().hex,
        verb="decommission",
    )
    return run_in_flow(request)
