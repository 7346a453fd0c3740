"""Hand a warm `Runtime` to flows running in this process, and keep Prefect's overhead low.

Flows and tasks take only JSON parameters (a run id); what they need beyond that — the
open runtime, the kept plan, the undo records — is handed over here, typed, per run.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from killswitch import run_admission
from killswitch.models import Plan, UndoRecord
from killswitch.request import Request
from killswitch.runtime import Runtime
from killswitch.settings import load_settings

# A context variable, not a global: the warm service runs flows on several threads at once.
_current: ContextVar[Runtime | None] = ContextVar("killswitch_runtime", default=None)
# Inside a fleet's lane: many agents' runs in one process (see `in_lane`).
_lane: ContextVar[bool] = ContextVar("killswitch_lane", default=False)


@dataclass(frozen=True, slots=True)
class Handed:
    """What one run's tasks need: the runtime, the request, and the plan or undo records."""

    runtime: Runtime
    request: Request
    plan: Plan | None = None
    records: Sequence[UndoRecord] = ()


_runs: dict[str, Handed] = {}
_lock = threading.Lock()


@contextmanager
def using(runtime: Runtime) -> Iterator[Runtime]:
    """Flows started inside this block use `runtime` instead of opening their own."""
    token = _current.set(runtime)
    try:
        yield runtime
    finally:
        _current.reset(token)


@contextmanager
def lane() -> Iterator[None]:
    """Runs started inside this block are one agent among many of a fleet's lane: their
    providers run on threads of the agent's own flow run rather than as a task each (a
    lane's Prefect bookkeeping then grows with its agents, not agents × providers: eight
    task runs an agent were most of the Prefect server's work in a fleet)."""
    token = _lane.set(True)
    try:
        yield
    finally:
        _lane.reset(token)


def in_lane() -> bool:
    return _lane.get()


@contextmanager
def current() -> Iterator[Runtime]:
    """The runtime handed over with `using`, else one opened from settings for this flow."""
    handed = _current.get()
    if handed is not None:
        yield handed
        return
    runtime = Runtime.open(load_settings())
    try:
        yield runtime
    finally:
        runtime.close()


@contextmanager
def admitted(
    flow: str,
    args: dict[str, Any],
    ticket: str | None,
    *,
    agent_id: str = "-",
    plan: str | None = None,
) -> Iterator[tuple[Runtime, run_admission.Admitted]]:
    """The runtime (handed over, or opened) once this flow run is admitted: in-process when
    our own process handed its runtime over (that hand-over is the proof), else by its
    ticket or as the schedule's run (`killswitch.run_admission`); refused before anything
    else is done otherwise. Nested flows and steps inside the block use the same runtime."""
    handed = _current.get() is not None
    with current() as runtime:
        admission = run_admission.admit(
            runtime,
            flow=flow,
            args=args,
            ticket=ticket,
            facts=None if handed else _facts(),
            agent_id=agent_id,
            plan=plan,
        )
        with using(runtime):
            yield runtime, admission


def _facts() -> run_admission.RunFacts:
    """What Prefect says of the flow run this process is running."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    run = context.flow_run if context else None
    if run is None:
        return run_admission.RunFacts(flow_run_id="?")
    return run_admission.RunFacts(
        flow_run_id=str(run.id),
        deployment_id=str(run.deployment_id) if run.deployment_id else None,
        auto_scheduled=bool(run.auto_scheduled),
        expected_start=(
            datetime.fromtimestamp(run.expected_start_time.timestamp(), UTC)
            if run.expected_start_time
            else None
        ),
    )


@contextmanager
def handing(run_id: str, handed: Handed) -> Iterator[None]:
    """Make `handed` available to this run's tasks (`take(run_id)`) inside the block."""
    with _lock:
        _runs[run_id] = handed
    try:
        yield
    finally:
        with _lock:
            _runs.pop(run_id, None)


def take(run_id: str) -> Handed:
    """What was handed over for `run_id`."""
    with _lock:
        return _runs[run_id]


# Prefect's settings without heartbeats, per settings object and PREFECT_* environment.
_quiet: dict[tuple[int, tuple[tuple[str, str], ...]], tuple[Any, Any]] = {}


@contextmanager
def untagged() -> Iterator[None]:
    """Task runs started inside carry no tags; the flow run keeps the ones it was created
    with (an alert's `alert-source:…`, `alert:…`). Prefect's task engine asks the API for a
    slot of the tag concurrency limits of every tagged task run before its body runs: a
    write (`increment-with-lease`), which a SQLite server busy with the run's own events
    answers `database is locked` (503), retried by the client 2 s later — every alert's
    first revocation waited for it. Untagged task runs make no such call."""
    from prefect.context import TagsContext

    with TagsContext(current_tags=set()):
        yield


@contextmanager
def fast() -> Iterator[None]:
    """No flow heartbeats: they add ~0.9 s to every short flow (the ledger knows which runs
    started and never finished: `killswitch audit unfinished`). The settings without them
    are made once per settings and PREFECT_* environment, not per run: a copy re-validates
    Prefect's whole settings model (~0.2 s of CPU in front of every flow of the warm
    service)."""
    from prefect.context import SettingsContext, get_settings_context
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY

    context = get_settings_context()
    environment = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("PREFECT_")))
    key = (id(context.settings), environment)
    with _lock:
        made = _quiet.get(key)
    if made is None or made[0] is not context.settings:
        quiet = context.settings.copy_with_update(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})
        made = (context.settings, quiet)  # the original kept: its id is not reused meanwhile
        with _lock:
            if len(_quiet) >= 16:
                _quiet.clear()
            _quiet[key] = made
    with SettingsContext(profile=context.profile, settings=made[1]):
        yield
