"""The `contain` flow: run a kept plan — one task per provider (fanning out inside) → report."""

from __future__ import annotations

import re
import time

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows import handover
from killswitch import engine
from killswitch.assembly import assemble
from killswitch.errors import RefusedError
from killswitch.models import ContainmentReport, ProviderOutcome, VerdictStatus
from killswitch.plans import Plans
from killswitch.request import Request, Workflow


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
    handed = handover.take(run_id)
    assert handed.plan is not None  # noqa: S101  (run_in_flow hands the plan over)
    return engine.execute(handed.runtime, handed.request, handed.plan, provider)


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
    noun = "containment" if report.workflow == "contain" else report.workflow
    key = re.sub(r"[^a-z0-9-]", "-", f"{noun}-{report.agent.id}")
    create_table_artifact(
        rows,
        key=key,
        description=f"{report.agent.id}: {'PROVEN' if report.ok else 'NOT PROVEN'} — "
        f"reason: {report.reason} (run {report.run_id})",
    )


def run_in_flow(
    run_id: str, agent_id: str, *, check_untouched: bool = False, plan_s: float = 0.0
) -> ContainmentReport:
    """Run the plan kept under `run_id` inside the current flow run: one task per provider,
    then the report; raise ContainmentNotProven so that the flow run fails."""
    logger = get_run_logger()
    started = time.monotonic() - plan_s
    with handover.current() as runtime:
        request, plan, _ = Plans(runtime.inventory).load(run_id)
        if plan.agent.id != agent_id:
            raise RefusedError(f"plan {run_id[:12]} is for {plan.agent.id!r}, not {agent_id!r}")
        age_s = engine.begin(runtime, request, plan)
        logger.info(
            "%s plan %s for %s: %d credentials, %d actions, providers %s",
            request.workflow,
            run_id[:12],
            agent_id,
            len(plan.credentials),
            len(plan.actions),
            ", ".join(plan.providers),
        )
        if handover.in_lane():
            outcomes = engine.threads(runtime, request, plan)
        else:
            with (
                handover.handing(run_id, handover.Handed(runtime, request, plan)),
                handover.untagged(),
            ):
                futures = [
                    contain_provider.submit(run_id, p) for p in engine.providers_of(runtime, plan)
                ]
                outcomes = [f.result() for f in futures]
        late = engine.appeared_since(runtime, plan, age_s)
        untouched = engine.check_untouched(runtime, agent_id) if check_untouched else []
        report = assemble(
            runtime,
            request,
            plan,
            outcomes,
            started=started,
            plan_s=plan_s,
            untouched=untouched,
            late=late,
            plan_age_s=age_s,
        )
    _artifact(report)
    if not report.ok:
        logger.error("%s of %s NOT PROVEN", request.workflow, agent_id)
        raise ContainmentNotProven(report)
    logger.info("%s of %s proven in %.2fs", request.workflow, agent_id, report.timings.total_s)
    return report


@flow(name="contain", flow_run_name="contain-{agent_id}", persist_result=False, log_prints=False)
def contain(
    run_id: str,
    agent_id: str,
    check_untouched: bool = False,
    plan_s: float = 0.0,
    ticket: str | None = None,
) -> ContainmentReport:
    """Contain one agent everywhere, as its kept plan says, and prove every credential dead;
    fail loudly otherwise. Started through the API, it needs a ticket from the plan's actor."""
    args = {
        "run_id": run_id,
        "agent_id": agent_id,
        "check_untouched": check_untouched,
        "plan_s": plan_s,
    }
    with handover.admitted("contain", args, ticket, agent_id=agent_id, plan=run_id):
        return run_in_flow(run_id, agent_id, check_untouched=check_untouched, plan_s=plan_s)


def run_kept(
    request: Request, *, check_untouched: bool = False, plan_s: float = 0.0
) -> ContainmentReport:
    """The flow for the kept plan's workflow (`contain` or `decommission`), in this process."""
    if request.workflow is Workflow.DECOMMISSION:
        from flows.decommission import decommission

        return decommission(request.run_id, request.agent_id, plan_s=plan_s)
    return contain(request.run_id, request.agent_id, check_untouched=check_untouched, plan_s=plan_s)


if __name__ == "__main__":
    import sys

    from killswitch.pipeline import plan as make_plan

    with handover.fast(), handover.current() as opened:
        kept = make_plan(
            opened, Request(sys.argv[1], " ".join(sys.argv[2:]) or "manual run", "flows.contain")
        )
        with handover.using(opened):
            print(contain(kept.run_id, kept.agent.id))
