"""The `zombie-sweep` flow: enumerate every NHI, classify, notify → grace → contain →
destroy per policy; the findings as a table artifact. `killswitch serve` runs it on the
cron schedule of `sweep.cron`; `killswitch sweep` runs it once, in process."""

from __future__ import annotations

from dataclasses import replace

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from flows import handover
from flows.contain import ContainmentNotProven, run_in_flow
from killswitch import planning, sweep
from killswitch.models import ContainmentReport
from killswitch.request import Request
from killswitch.runtime import Runtime
from killswitch.sweep.models import Contain
from killswitch.sweep.report import FINDING_COLUMNS, findings_rows


class SweepIncomplete(Exception):  # noqa: N818  (the name is what the flow run shows)
    """Raised at the end of a sweep that could not list a provider or prove a containment."""

    def __init__(self, report: sweep.SweepReport) -> None:
        failed = [s for s in report.steps if not s.ok]
        super().__init__(
            f"sweep incomplete: {len(report.errors)} provider error(s), "
            f"{len(failed)} failed step(s)"
        )
        self.report = report


def _contain_here(runtime: Runtime) -> Contain:
    """Containments (or decommissions) as part of this flow run, visible in its tree: the
    same plan → run steps as every other trigger."""

    def contain(request: Request) -> ContainmentReport:
        plan = planning.plan(runtime, request)
        try:
            return run_in_flow(plan.run_id, plan.agent.id)
        except ContainmentNotProven as exc:
            return exc.report

    return contain


def _artifact(report: sweep.SweepReport) -> None:
    rows = [dict(zip(FINDING_COLUMNS, row, strict=True)) for row in findings_rows(report, 1000)]
    done = ", ".join(f"{s.action} {s.case}" for s in report.steps if s.action != "protected")
    create_table_artifact(
        rows,
        key="zombie-sweep",
        description=f"{len(report.findings)} finding(s), riskiest first"
        + (" — DRY RUN" if report.dry_run else "")
        + (f"; did: {done}" if done and not report.dry_run else "")
        + f" (run {report.run_id})",
    )


@flow(name="zombie-sweep", flow_run_name="zombie-sweep-{trigger}", persist_result=False)
def zombie_sweep(
    dry_run: bool | None = None,
    actor: str = "schedule",
    trigger: str = "schedule",
    providers: list[str] | None = None,
    agents: list[str] | None = None,
    run_id: str | None = None,
    ticket: str | None = None,
) -> sweep.SweepReport:
    """Find zombies, orphans, stale, expired, long-lived and reused credentials; act per
    the `sweep` settings; fail the run loudly when something could not be done or proven.
    Started through the API, it needs a `ticket` (or to be the schedule's own run)."""
    logger = get_run_logger()
    args = {
        "dry_run": dry_run,
        "actor": actor,
        "trigger": trigger,
        "providers": providers,
        "agents": agents,
        "run_id": run_id,
    }
    with handover.admitted("zombie-sweep", args, ticket) as (runtime, admission):
        request = sweep.SweepRequest(
            actor=admission.actor or actor,
            trigger=admission.trigger or trigger,
            dry_run=dry_run,
            providers=tuple(providers or ()),
            agents=tuple(agents or ()),
        )
        if run_id:
            request = replace(request, run_id=run_id)
        report = sweep.run(runtime, request, _contain_here(runtime))
    _artifact(report)
    logger.info(
        "sweep %s (%s, admitted %s): %d finding(s), %d step(s)%s",
        report.run_id,
        request.actor,
        admission.how,
        len(report.findings),
        len(report.steps),
        " (dry run)" if report.dry_run else "",
    )
    if not report.ok:
        raise SweepIncomplete(report)
    return report


if __name__ == "__main__":
    # A local run by whoever holds the profile: in-process, with the runtime handed over.
    with handover.fast(), handover.current() as opened, handover.using(opened):
        print(zombie_sweep(actor="flows.zombie_sweep", trigger="manual").run_id)
