"""The `fleet-contain` flow: contain a planned fleet — one `contain` flow run per agent through
the `contain` deployment, so the work pool's workers (on any host) share the agents — and
report every credential of every agent, from the ledger, as each agent finishes."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from flows import handover
from flows.contain import contain
from killswitch import progress
from killswitch.errors import ConfigurationError, RefusedError
from killswitch.fleet.report import AgentResult, FleetReport, from_ledger, load, report_of
from killswitch.ledger_key import derived_key
from killswitch.models import Plan
from killswitch.request import Request
from killswitch.run_tickets import MAX_TTL_S, PURPOSE, arguments, mint
from killswitch.runtime import Runtime

CONTAIN_DEPLOYMENT = "contain/contain"
POLL_S = 0.5
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


class FleetNotProven(Exception):  # noqa: N818  (the name is what the flow run shows)
    """Raised at the end of a fleet run with an agent not proven, so the flow run fails."""

    def __init__(self, report: FleetReport) -> None:
        names = ", ".join(a.agent_id for a in report.not_proven) or "(the ledger)"
        super().__init__(f"fleet {report.fleet_id[:12]} not proven: {names}")
        self.report = report


def _ready(runtime: Runtime) -> None:
    """The `contain` deployment exists and a worker polls its pool: else the runs would
    wait forever. ConfigurationError (exit 3) with the remedies."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from killswitch.scale.registration import online_workers

    remedy = "Run `killswitch scale up` (or start workers on the pool), or use --break-glass."
    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(CONTAIN_DEPLOYMENT)
        except ObjectNotFound:
            raise ConfigurationError(
                f"the Prefect server has no {CONTAIN_DEPLOYMENT} deployment", remediation=remedy
            ) from None
    pool = deployment.work_pool_name or runtime.settings.scale.work_pool
    if not online_workers(pool):
        raise ConfigurationError(f"no worker is polling the work pool {pool!r}", remediation=remedy)


def _start(runtime: Runtime, request: Request, plan: Plan, fleet_id: str) -> str:
    """One agent's `contain` run through the deployment, with a ticket for exactly it."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    args = arguments(contain.fn, {"run_id": plan.run_id, "agent_id": plan.agent.id})
    ticket = mint(
        derived_key(runtime.settings, PURPOSE),
        flow="contain",
        args=args,
        actor=request.actor,
        trigger=request.trigger,
        ttl_s=min(MAX_TTL_S, runtime.settings.scale.agent_timeout_s),
    )
    run = run_deployment(
        CONTAIN_DEPLOYMENT,
        parameters={**args, "ticket": ticket},
        timeout=0,
        tags=["killswitch", f"fleet-{fleet_id[:12]}"],
    )
    assert isinstance(run, FlowRun)  # noqa: S101  (called synchronously)
    return str(run.id)


def _gone(runtime: Runtime, run_id: str) -> bool:
    """The agent's run started on this host and its process is gone (a worker killed)."""
    for entry in runtime.ledger.rows(run_id=run_id):
        detail = entry.get("detail") or {}
        if entry["outcome"] == "started" and detail.get("host") == socket.gethostname():
            try:
                os.kill(int(detail["pid"]), 0)
            except (ProcessLookupError, KeyError, ValueError):
                return True
            except PermissionError:
                return False
    return False


def fan_out(runtime: Runtime, kept: list[tuple[Request, Plan]], fleet_id: str) -> list[AgentResult]:
    """Start every agent's run, then follow them all: an agent's result as soon as its run
    is final — or its process is gone, or it outlived `scale.agent_timeout_s`."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    _ready(runtime)
    started = {_start(runtime, request, plan, fleet_id): plan for request, plan in kept}
    progress.emit("fleet", f"{len(started)} agent runs submitted to the work pool", run_id=fleet_id)
    deadline = time.monotonic() + runtime.settings.scale.agent_timeout_s
    results: dict[str, AgentResult] = {}
    running: set[str] = set()

    def done(flow_run: str, plan: Plan, ended: str) -> None:
        result = from_ledger(runtime, plan, ended=ended, flow_run=flow_run)
        results[flow_run] = result
        dead = result.count("dead")
        progress.emit(
            "agent",
            f"{plan.agent.id}: {result.state.upper()} ({dead}/{len(result.rows)} dead"
            f"{', on ' + result.worker if result.worker else ''})",
            run_id=plan.run_id,
            agent=plan.agent.id,
            state=result.state,
            done=len(results),
            total=len(started),
        )

    with get_client(sync_client=True) as client:
        while len(results) < len(started):
            pending = [UUID(r) for r in started if r not in results]
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=pending)), limit=len(pending)
            )
            for run in runs:
                key, plan = str(run.id), started[str(run.id)]
                kind = run.state.type.value if run.state else "UNKNOWN"
                if kind in FINAL:
                    done(key, plan, kind)
                elif kind == "RUNNING" and key not in running:
                    running.add(key)
                    progress.emit("agent", f"{plan.agent.id}: running", run_id=plan.run_id)
                elif (
                    run.state
                    and run.state.type is StateType.RUNNING
                    and _gone(runtime, plan.run_id)
                ):
                    client.set_flow_run_state(
                        run.id,
                        Crashed(message="its process is gone (the worker was lost)"),
                        force=True,
                    )
                    done(key, plan, "CRASHED: its process is gone (the worker was lost)")
            if time.monotonic() > deadline:
                for key, plan in started.items():
                    if key not in results:
                        done(
                            key,
                            plan,
                            f"still {kind} after {runtime.settings.scale.agent_timeout_s:g}s",
                        )
            if len(results) < len(started):
                time.sleep(POLL_S)
    return [results[key] for key in started]


def _artifact(report: FleetReport) -> None:
    rows: list[dict[str, Any]] = [
        {
            "agent": r.agent_id,
            "provider": r.provider,
            "credential": r.ref,
            "verdict": r.verdict,
            "evidence": r.evidence,
        }
        for a in report.agents
        for r in a.rows
    ]
    create_table_artifact(
        rows,
        key=f"fleet-{report.fleet_id[:12]}",
        description=f"fleet {report.fleet_id[:12]}: {'PROVEN' if report.ok else 'NOT PROVEN'}",
    )


@flow(name="fleet-contain", flow_run_name="fleet-contain-{fleet_id}", persist_result=False)
def fleet_contain(fleet_id: str, run_ids: list[str], ticket: str | None = None) -> FleetReport:
    """Contain every agent of a planned fleet, one `contain` run each over the workers, and
    prove every credential dead; fail loudly otherwise. Started through the API, it needs a
    ticket from the plans' actor."""
    if not run_ids:
        raise RefusedError("a fleet of no agents")
    started = time.monotonic()
    logger = get_run_logger()
    args = {"fleet_id": fleet_id, "run_ids": run_ids}
    with handover.admitted("fleet-contain", args, ticket, plan=run_ids[0]) as (runtime, _):
        kept = load(runtime, run_ids)
        logger.info("fleet %s: %d agents", fleet_id[:12], len(kept))
        results = fan_out(runtime, kept, fleet_id)
        report = report_of(
            runtime, kept, fleet_id, results, mode="flow", elapsed_s=time.monotonic() - started
        )
    _artifact(report)
    if not report.ok:
        logger.error("fleet %s NOT PROVEN", fleet_id[:12])
        raise FleetNotProven(report)
    return report
