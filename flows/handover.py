"""Hand a warm `Runtime` to flows running in this process, and keep Prefect's overhead low.

Flows and tasks take only JSON parameters (a run id); what they need beyond that — the
open runtime, the kept plan, the undo records — is handed over here, typed, per run.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from killswitch.models import Plan, UndoRecord
from killswitch.request import Request
from killswitch.runtime import Runtime
from killswitch.settings import load_settings

# A context variable, not a global: the warm service runs flows on several threads at once.
_current: ContextVar[Runtime | None] = ContextVar("killswitch_runtime", default=None)


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


@contextmanager
def fast() -> Iterator[None]:
    """No flow heartbeats: they add ~0.9 s to every short flow (the ledger knows which runs
    started and never finished: `killswitch audit unfinished`)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
