"""The `fleet-contain` flow and its lanes: contain a planned fleet over the work pool's workers
and report every credential of every agent, from the ledger, as each agent finishes.

A fleet runs in *lanes*: one `fleet-lane` flow run per online worker (`scale.lanes_per_worker`
each), routed to that worker's own work queue (named after the worker), each one process that
contains `scale.agents_per_lane` agents at a time, every agent one `contain` subflow run. A
lane takes its own share of the fleet first, then any agent still waiting (a plan runs once:
`Plans.claim`), so the agents of a slow or lost worker are taken by the others. One process
per lane, not per agent: a process costs seconds of imports, an agent's run a fraction of one."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from flows import handover
from killswitch import progress
from killswitch.engine import WORKER_ENV
from killswitch.errors import RefusedError
from killswitch.fleet.report import AgentResult, FleetReport, from_ledger, load, report_of
from killswitch.ledger_key import derived_key
from killswitch.models import Plan
from killswitch.orchestrator import NoWorkersError
from killswitch.plans import PlanNotRunnableError, Plans, PlanState
from killswitch.recorder import Recorder
from killswitch.request import Request
from killswitch.run_tickets import MAX_TTL_S, PURPOSE, mint
from killswitch.runtime import Runtime

LANE_DEPLOYMENT = "fleet-lane/fleet-lane"
POLL_S = 0.5
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
LANE = "fleet-lane"  # the ledger action of a lane's own entries (run id: the fleet's)


class FleetNotProven(Exception):  # noqa: N818  (the name is what the flow run shows)
    """Raised at the end of a fleet run with an agent not proven, so the flow run fails."""

    def __init__(self, report: FleetReport) -> None:
        names = ", ".join(a.agent_id for a in report.not_proven) or "(the ledger)"
        super().__init__(f"fleet {report.fleet_id[:12]} not proven: {names}")
        self.report = report


def _ready(runtime: Runtime) -> list[str]:
    """The online workers of the lanes' pool (the `fleet-lane` deployment must exist and a
    worker must poll its pool: else the runs would wait forever). NoWorkersError (exit 3)
    with the remedies."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from killswitch.scale.registration import online_workers

    remedy = "Run `killswitch scale up` (or start workers on the pool), or use --break-glass."
    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(LANE_DEPLOYMENT)
        except ObjectNotFound:
            raise NoWorkersError(
                f"the Prefect server has no {LANE_DEPLOYMENT} deployment", remediation=remedy
            ) from None
    pool = deployment.work_pool_name or runtime.settings.scale.work_pool
    workers = online_workers(pool)
    if not workers:
        raise NoWorkersError(f"no worker is polling the work pool {pool!r}", remediation=remedy)
    return workers


def lanes_for(workers: Sequence[str], agents: int, per_worker: int) -> list[str]:
    """The work queue of each lane: round robin over the online workers' own queues, no more
    lanes than agents."""
    count = max(1, min(agents, len(workers) * per_worker))
    return [workers[i % len(workers)] for i in range(count)]


def order(run_ids: Sequence[str], lane: int, lanes: int) -> list[str]:
    """The plans lane `lane` of `lanes` tries, in turn: its own share (every `lanes`-th from its
    index), then the others' shares from their ends (which their own lanes reach last)."""
    own = list(run_ids[lane::lanes])
    rest = [r for i in range(1, lanes) for r in reversed(run_ids[(lane + i) % lanes :: lanes])]
    return own + rest


def _start_lane(
    runtime: Runtime,
    request: Request,
    args: dict[str, Any],
    queue: str,
) -> str:
    """One lane's run through the deployment, on `queue`, with a ticket for exactly it."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    ticket = mint(
        derived_key(runtime.settings, PURPOSE),
        flow=LANE,
        args=args,
        actor=request.actor,
        trigger=request.trigger,
        ttl_s=min(MAX_TTL_S, runtime.settings.scale.agent_timeout_s),
    )
    run = run_deployment(
        LANE_DEPLOYMENT,
        parameters={**args, "ticket": ticket},
        timeout=0,
        work_queue_name=queue,
        tags=["killswitch", f"fleet-{str(args['fleet_id'])[:12]}"],
    )
    assert isinstance(run, FlowRun)  # noqa: S101  (called synchronously)
    return str(run.id)


def _pid_gone(detail: dict[str, Any]) -> bool:
    """A run that started on this host in a process that is gone (a worker killed)."""
    if detail.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(detail["pid"]), 0)
    except (ProcessLookupError, KeyError, ValueError):
        return True
    except PermissionError:
        return False
    return False


def fan_out(runtime: Runtime, kept: list[tuple[Request, Plan]], fleet_id: str) -> list[AgentResult]:
    """Start the lanes, then follow every agent in the ledger: its result as soon as its run
    closed — or its process is gone, or the lane that ran it ended first, or every lane
    ended before it started, or it outlived `scale.agent_timeout_s`."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.states import Cancelled, Crashed

    scale = runtime.settings.scale
    workers = _ready(runtime)
    queues = lanes_for(workers, len(kept), scale.lanes_per_worker)
    run_ids = [plan.run_id for _, plan in kept]
    lanes: dict[str, str] = {}  # lane flow run -> its queue
    for index, queue in enumerate(queues):
        args = {"fleet_id": fleet_id, "run_ids": run_ids, "lane": index, "lanes": len(queues)}
        lanes[_start_lane(runtime, kept[0][0], args, queue)] = queue
    progress.emit(
        "fleet",
        f"{len(kept)} agents in {len(lanes)} lane(s) on {', '.join(sorted(set(queues)))}",
        run_id=fleet_id,
    )
    plans = {plan.run_id: plan for _, plan in kept}
    deadline = time.monotonic() + scale.agent_timeout_s
    results: dict[str, AgentResult] = {}
    running: set[str] = set()

    def done(plan: Plan, ended: str) -> None:
        result = from_ledger(runtime, plan, ended=ended)
        results[plan.run_id] = result
        progress.emit(
            "agent",
            f"{plan.agent.id}: {result.state.upper()} ({result.count('dead')}/{len(result.rows)}"
            f" dead{', on ' + result.worker if result.worker else ''})",
            run_id=plan.run_id,
            agent=plan.agent.id,
            state=result.state,
            done=len(results),
            total=len(plans),
        )

    with get_client(sync_client=True) as client:
        states: dict[str, str] = {}
        while len(results) < len(plans):
            for run in client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(r) for r in lanes])),
                limit=len(lanes),
            ):
                states[str(run.id)] = run.state.type.value if run.state else "UNKNOWN"
            # One read for the lanes and every agent still open (not one per agent).
            open_runs = [r for r in plans if r not in results]
            where: dict[tuple[Any, Any], str] = {}  # (host, pid) -> the lane's flow run
            contains: dict[str, list[dict[str, Any]]] = {r: [] for r in open_runs}
            for e in runtime.ledger.rows(run_ids=[fleet_id, *open_runs]):
                if e["action"] == LANE and e["outcome"] == "started":
                    where[(e["detail"].get("host"), e["detail"].get("pid"))] = str(
                        e["detail"].get("flow_run")
                    )
                elif e["action"] == "contain" and e["run_id"] in contains:
                    contains[e["run_id"]].append(e)
            every_lane_ended = all(states.get(r) in FINAL for r in lanes)
            for run_id in open_runs:
                plan = plans[run_id]
                entries = contains[run_id]
                if any(e["outcome"] in ("proven", "not-proven") for e in entries):
                    done(plan, "")
                    continue
                start = next((e["detail"] for e in entries if e["outcome"] == "started"), None)
                if start is None:
                    if every_lane_ended:
                        done(plan, "every lane ended before it started")
                    continue
                if run_id not in running:
                    running.add(run_id)
                    progress.emit("agent", f"{plan.agent.id}: running", run_id=run_id)
                lane = where.get((start.get("host"), start.get("pid")), "")
                if _pid_gone(start):
                    if lane and states.get(lane) not in FINAL:
                        client.set_flow_run_state(
                            UUID(lane),
                            Crashed(message="its process is gone (the worker was lost)"),
                            force=True,
                        )
                        states[lane] = "CRASHED"
                    done(plan, "CRASHED: its process is gone (the worker was lost)")
                elif every_lane_ended or (lane and states.get(lane) in FINAL):
                    done(plan, f"its lane ended {states.get(lane, 'first')} before it closed")
            if time.monotonic() > deadline:
                for run_id, plan in plans.items():
                    if run_id not in results:
                        done(plan, f"not closed after {scale.agent_timeout_s:g}s")
            if len(results) < len(plans):
                time.sleep(POLL_S)
        for lane, state in states.items():  # a lane not yet picked up has nothing left to do
            if state in ("SCHEDULED", "PENDING", "LATE"):
                client.set_flow_run_state(
                    UUID(lane), Cancelled(message="the fleet finished without it"), force=True
                )
    return [results[r] for r in run_ids]


def _contain_one(runtime: Runtime, plan: Plan) -> str:
    """One agent as a `contain` subflow run in this lane's process: how it ended."""
    from flows.contain import ContainmentNotProven, contain

    try:
        contain(plan.run_id, plan.agent.id)
    except PlanNotRunnableError:
        return "taken"  # another lane claimed it first
    except ContainmentNotProven:
        return "not-proven"
    except Exception as exc:  # one agent's crash is that agent's row, not the lane's
        get_run_logger().exception("agent %s: %s", plan.agent.id, type(exc).__name__)
        return f"error: {type(exc).__name__}"
    return "proven"


@flow(name="fleet-lane", flow_run_name="fleet-lane-{fleet_id}-{lane}", persist_result=False)
def fleet_lane(
    fleet_id: str, run_ids: list[str], lane: int = 0, lanes: int = 1, ticket: str | None = None
) -> dict[str, str]:
    """One lane of a fleet: contain the fleet's agents that no other lane has claimed, its
    own share first, `scale.agents_per_lane` at a time; run id -> how it ended (`taken`:
    another lane's). Started through the API, it needs a ticket from the plans' actor."""
    if not run_ids or not 0 <= lane < lanes:
        raise RefusedError("a lane needs the fleet's plans and an index below its count")
    from prefect.context import FlowRunContext

    args = {"fleet_id": fleet_id, "run_ids": run_ids, "lane": lane, "lanes": lanes}
    with (
        handover.fast(),
        handover.admitted(LANE, args, ticket, plan=run_ids[0]) as (runtime, _),
    ):
        kept = {plan.run_id: (request, plan) for request, plan in load(runtime, run_ids)}
        context = FlowRunContext.get()
        first = kept[run_ids[0]][0]
        recorder = Recorder(
            runtime,
            Request("-", first.reason, first.actor, first.trigger, run_id=fleet_id),
        )
        recorder.write(
            LANE,
            "started",
            lane=lane,
            lanes=lanes,
            flow_run=str(context.flow_run.id) if context and context.flow_run else "",
            host=socket.gethostname(),
            pid=os.getpid(),
            worker=os.environ.get(WORKER_ENV, ""),
        )
        waiting = order(run_ids, lane, lanes)
        lock = threading.Lock()
        ended: dict[str, str] = {}
        plans = Plans(runtime.inventory)

        def take() -> str | None:
            with lock:
                while waiting:
                    run_id = waiting.pop(0)
                    if plans.state(run_id) is PlanState.PLANNED:
                        return run_id
            return None

        def work() -> None:
            while (run_id := take()) is not None:
                ended[run_id] = _contain_one(runtime, kept[run_id][1])

        threads = max(1, min(runtime.settings.scale.agents_per_lane, len(waiting)))
        with (
            handover.lane(),
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lane") as pool,
        ):
            for future in [pool.submit(copy_context().run, work) for _ in range(threads)]:
                future.result()
        ran = sum(v != "taken" for v in ended.values())
        recorder.write(LANE, "finished", lane=lane, agents=ran)
    return ended


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
