"""The `restore` flow: reverse a containment's recorded changes, then prove the keys work."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows import handover
from killswitch import restoration
from killswitch.models import ActionResult, RestoreReport, UndoRecord
from killswitch.request import Request, Workflow
from killswitch.runtime import Runtime


class RestoreIncomplete(Exception):  # noqa: N818  (the name is what the flow run shows)
    """Raised when a change could not be reversed or a key does not work again."""

    def __init__(self, report: RestoreReport) -> None:
        super().__init__(f"restore of {report.agent.id} incomplete (run {report.run_id})")
        self.report = report


@task(name="restore-changes", cache_policy=NO_CACHE, persist_result=False)
def restore_changes(run_id: str) -> list[ActionResult]:
    """Reverse every recorded change in parallel (newest first)."""
    handed = handover.take(run_id)
    return restoration.reverse_all(handed.runtime, handed.records)


@flow(name="restore", flow_run_name="restore-{agent_id}", persist_result=False)
def restore(
    agent_id: str,
    reason: str,
    actor: str = "prefect",
    trigger: str = "prefect",
    run_id: str | None = None,
    ticket: str | None = None,
) -> RestoreReport:
    """Undo a containment of one agent (a false positive); irreversible changes are refused.
    Started through the API, it needs a ticket (the actor recorded is the ticket's)."""
    args = {
        "agent_id": agent_id,
        "reason": reason,
        "actor": actor,
        "trigger": trigger,
        "run_id": run_id,
    }
    with handover.admitted("restore", args, ticket, agent_id=agent_id) as (runtime, admission):
        request = Request(
            agent_id=agent_id,
            reason=reason,
            actor=admission.actor or actor,
            trigger=admission.trigger or trigger,
            run_id=run_id or uuid.uuid4().hex,
            workflow=Workflow.RESTORE,
        )

        def reverse(runtime: Runtime, records: Sequence[UndoRecord]) -> list[ActionResult]:
            handed = handover.Handed(runtime, request, records=records)
            with handover.handing(request.run_id, handed):
                return restore_changes(request.run_id)

        report = restoration.restore(runtime, request, reverse=reverse)
    if not report.ok:
        raise RestoreIncomplete(report)
    get_run_logger().info("restored %s in %.2fs", agent_id, report.total_s)
    return report
