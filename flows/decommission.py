"""The `decommission` flow: run a kept decommission plan — contain, then destroy for good."""

from __future__ import annotations

from prefect import flow

from flows import handover
from flows.contain import run_in_flow
from killswitch.models import ContainmentReport


@flow(name="decommission", flow_run_name="decommission-{agent_id}", persist_result=False)
def decommission(
    run_id: str, agent_id: str, plan_s: float = 0.0, ticket: str | None = None
) -> ContainmentReport:
    """Retire an agent: containment first (so nothing works while deletion proceeds), then
    irreversible deletion in the order each provider accepts; every credential probed dead.
    Started through the API, it needs a ticket from the plan's actor."""
    args = {"run_id": run_id, "agent_id": agent_id, "plan_s": plan_s}
    with handover.admitted("decommission", args, ticket, agent_id=agent_id, plan=run_id):
        return run_in_flow(run_id, agent_id, plan_s=plan_s)
