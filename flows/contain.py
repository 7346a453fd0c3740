"""The `contain` flow: plan → guard → one task per provider (fanning out inside) → report."""

from __future__ import annotations

import re
import time
import uuid

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows import runtime as handover
from killswitch import containment
from killswitch.containment import Request
from killswitch.models import ContainmentReport, Plan, ProviderOutcome, VerdictStatus


class ContainmentNotProven(Exception):  # noqa: N818  (the name is what the flow run shows)
    """Raised at the end of a run with an alive/unknown credential so the flow run fails."""

    def __init__(self, report: ContainmentReport) -> None:
        bad = report.count(VerdictStatus.ALIVE) + report.count(VerdictStatus.UNKNOWN)
        super().__init__(
            f"containment of {report.agent.id} not proven: {bad} credential(s) alive or unknown, "
            f"{len(report.errors)} error(s)"
        )
        self.report = report


@task(
    name="contain-provider",
    task_run_name="contain-{provider}",
    cache_policy=NO_CACHE,
    persist_result=False,
)
def contain_provider(run_id: str, provider: str) -> ProviderOutcome:
    """One provider: contain + detach in parallel, then probe each credential until dead."""
    runtime, request, plan = handover.unstash(run_id)
    return containment.execute(runtime, request, plan, provider)


def _artifact(report: ContainmentReport) -> None:
    rows = [
        {
            "provider": c.credential.provider,
            "kind": c.credential.kind,
            "credential": c.credential.ref,
            "verdict": c.verdict.status.value,
            "evidence": c.verdict.evidence,
        }
        for c in report.credentials
    ]
    noun = "containment" if report.verb == "contain" else report.verb
    key = re.sub(r"[^a-z0-9-]", "-", f"{noun}-{report.agent.id}")
    create_table_artifact(
        rows,
        key=key,
        description=f"{report.agent.id}: {'PROVEN' if report.ok else 'NOT PROVEN'} — "
        f"reason: {report.reason} (run {report.run_id})",
    )


def run_in_flow(request: Request, *, check_untouched: bool = False) -> ContainmentReport:
    """The steps of a containment (or decommission) inside the current flow run: plan, one
    task per provider, report; raise ContainmentNotProven so that the flow run fails."""
    logger = get_run_logger()
    started = time.monotonic()
    with handover.current() as runtime:
        plan: Plan = containment.prepare(runtime, request)
        plan_s = time.monotonic() - started
        logger.info(
            "%s plan for %s: %d credentials, %d actions, providers %s",
            request.verb,
            request.agent_id,
            len(plan.credentials),
            len(plan.actions),
            ", ".join(plan.providers),
        )
        handover.stash(request.run_id, (runtime, request, plan))
        try:
            futures = [
                contain_provider.submit(request.run_id, p)
                for p in plan.providers
                if p in runtime.revokers
            ]
            outcomes = [f.result() for f in futures]
        finally:
            handover.drop(request.run_id)
        untouched = (
            containment.check_untouched(runtime, request.agent_id) if check_untouched else []
        )
        report = containment.finish(
            runtime, request, plan, outcomes, started=started, plan_s=plan_s, untouched=untouched
        )
    _artifact(report)
    if not report.ok:
        logger.error("%s of %s NOT PROVEN", request.verb, request.agent_id)
        raise ContainmentNotProven(report)
    logger.info("%s of %s proven in %.2fs", request.verb, request.agent_id, report.timings.total_s)
    return report


@flow(name="contain", flow_run_name="contain-{agent_id}", persist_result=False, log_prints=False)
def contain(
    agent_id: str,
    reason: str,
    actor: str = "prefect",
    trigger: str = "prefect",
    run_id: str | None = None,
    check_untouched: bool = False,
) -> ContainmentReport:
    """Contain one agent everywhere and prove every credential dead; fail loudly otherwise."""
    request = Request(
        agent_id=agent_id,
        reason=reason,
        actor=actor,
        trigger=trigger,
        mode="flow",
        run_id=run_id or uuid.uuid4().hex,
    )
    return run_in_flow(request, check_untouched=check_untouched)


if __name__ == "__main__":
    import sys

    with handover.fast():
        print(contain(sys.argv[1], " ".join(sys.argv[2:]) or "manual run", actor="flows.contain"))
