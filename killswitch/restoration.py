"""Undo a containment (a false positive): reverse exactly what the containments changed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from killswitch import progress
from killswitch.errors import (
    DecommissionedError,
    KillSwitchError,
    NothingToRestoreError,
    ProviderError,
)
from killswitch.execution import attempt, materials_for
from killswitch.models import (
    ActionResult,
    Agent,
    AgentStatus,
    Credential,
    Outcome,
    RestoreReport,
    UndoRecord,
    Verdict,
    belongs,
)
from killswitch.planning import authorize
from killswitch.recorder import IN_FLIGHT, Recorder, refuse
from killswitch.request import Request
from killswitch.runtime import Runtime
from killswitch.verdicts import check_alive
from revokers.base import Revoker

log = logging.getLogger(__name__)


def pending(runtime: Runtime, request: Request) -> tuple[Agent, list[UndoRecord]]:
    """Guard the request and list what would be reversed; refuse when there is nothing."""
    agent = authorize(runtime, request)
    if agent.status is AgentStatus.DECOMMISSIONED:
        gone = DecommissionedError(
            f"{agent.id!r} is decommissioned: its credentials were destroyed for good"
        )
        refuse(runtime, request, gone, "restore")
        raise gone
    records = runtime.inventory.pending_undo(agent.id)
    if not records:
        error = NothingToRestoreError(
            f"nothing to restore for {agent.id!r}: no containment change is waiting to be undone"
        )
        refuse(runtime, request, error, "restore")
        raise error
    return agent, records


def _refusal(record: UndoRecord, runtime: Runtime) -> str | None:
    a = record.action
    if not a.reversible:
        return (
            f"{a.provider} {a.operation} {a.target}: irreversible at the provider; "
            "issue a new credential instead"
        )
    if a.provider not in runtime.revokers:
        return f"{a.provider} {a.operation} {a.target}: provider {a.provider!r} is not configured"
    return None


def in_flight(revoker: Revoker, record: UndoRecord, deadline_s: float) -> ActionResult:
    """Reverse a change a run started and did not live to record (killed while it was under
    way): back to the state its plan saw, from the action alone — every inverse is
    idempotent, so this is exact whether or not the change was made. What cannot be rebuilt
    without what the run would have recorded is a failure that says so."""
    a = record.action

    def call(bare: UndoRecord) -> ActionResult:
        try:
            return revoker.restore(bare)
        except KeyError as exc:
            raise ProviderError(
                f"{a.operation} {a.target} needs {exc} as the run would have recorded it, and "
                "the run died first: check it at the provider and put it back by hand",
                provider=a.provider,
                provider_code="not-recorded",
            ) from exc

    result = attempt(call, replace(record, data={}), a, deadline_s)
    return replace(
        result, detail=f"in flight when run {record.run_id[:12]} died: {result.detail}".strip()
    )


def reverse_all(runtime: Runtime, records: Sequence[UndoRecord]) -> list[ActionResult]:
    def one(record: UndoRecord) -> ActionResult:
        revoker = runtime.revokers[record.action.provider]
        deadline_s = runtime.settings.action_deadline_s
        if record.data.get(IN_FLIGHT):
            return in_flight(revoker, record, deadline_s)
        return attempt(revoker.restore, record, record.action, deadline_s)

    if not records:
        return []
    workers = min(16, len(records))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, records))


def _checks(
    runtime: Runtime, agent: Agent, gone: Sequence[UndoRecord]
) -> list[tuple[Credential, Verdict]]:
    """Probe the agent's credentials that have material and that the restore brought back
    (not those killed for good): each must authenticate again."""
    declared = runtime.inventory.declared(agent.id)
    jobs: list[tuple[str, Credential]] = []
    for name, revoker in runtime.revokers.items():
        try:
            found = revoker.discover(agent, declared)
        except KillSwitchError:
            continue
        jobs += [
            (name, c)
            for c in found.credentials
            if materials_for(runtime.revokers[name], runtime.secrets, c)
            and not any(belongs(record.action, c) for record in gone)
        ]

    def one(job: tuple[str, Credential]) -> tuple[Credential, Verdict]:
        name, credential = job
        return credential, check_alive(
            runtime.revokers[name],
            credential,
            materials_for(runtime.revokers[name], runtime.secrets, credential),
            deadline_s=runtime.settings.probe_deadline_s,
            interval_s=runtime.settings.probe_interval_s,
        )

    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(jobs))) as pool:
        return list(pool.map(one, jobs))


Reverser = Callable[[Runtime, Sequence[UndoRecord]], list[ActionResult]]


def restore(
    runtime: Runtime, request: Request, *, reverse: Reverser = reverse_all
) -> RestoreReport:
    """Reverse every pending change of the agent, newest first, then prove its keys work."""
    started = time.monotonic()
    agent, records = pending(runtime, request)
    recorder = Recorder(runtime, request)
    refused = {r.id: msg for r in records if (msg := _refusal(r, runtime))}
    todo = [r for r in reversed(records) if r.id not in refused]
    recorder.write(
        "restore",
        "started",
        reason=request.reason,
        records=len(records),
        refused=list(refused.values()),
    )
    progress.emit("restore", f"reversing {len(todo)} change(s) on {agent.id}")
    results = reverse(runtime, todo)
    for result in results:
        a = result.action
        recorder.write(
            f"restore:{a.operation}",
            result.outcome.value,
            provider=a.provider,
            credential=a.target,
            principal=a.principal,
            detail=result.detail,
        )
    undone = [
        rec.id for rec, res in zip(todo, results, strict=True) if res.outcome is not Outcome.FAILED
    ]
    runtime.inventory.mark_restored(undone + list(refused), run_id=request.run_id)
    failed = [r for r in results if r.outcome is Outcome.FAILED]
    if not failed:
        runtime.inventory.set_status(agent.id, AgentStatus.ACTIVE)
    checks = _checks(runtime, agent, [r for r in records if r.id in refused])
    report = RestoreReport(
        run_id=request.run_id,
        agent=runtime.inventory.get_agent(agent.id) or agent,
        reason=request.reason,
        actor=request.actor,
        target=runtime.settings.target,
        results=tuple(results),
        refused=tuple(refused.values()),
        checks=tuple(checks),
        total_s=time.monotonic() - started,
    )
    recorder.write(
        "restore",
        "restored" if report.ok else "incomplete",
        failed=len(failed),
        checks={c.key: v.status.value for c, v in checks},
    )
    for name, problem in runtime.ledger.anchor().failed:  # the head, checkpointed outside
        log.warning("ledger anchor %s failed: %s", name, problem)
    return report
