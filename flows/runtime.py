"""Hand a warm `Runtime` to flows running in this process, and keep Prefect's overhead low."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from killswitch.runtime import Runtime
from killswitch.settings import load_settings

# A context variable, not a global: the warm service runs flows on several threads at once.
_current: ContextVar[Runtime | None] = ContextVar("killswitch_runtime", default=None)
_runs: dict[str, Any] = {}
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


def stash(run_id: str, value: Any) -> None:
    """Per-run objects for this run's tasks (tasks get only the run id as a parameter)."""
    with _lock:
        _runs[run_id] = value


def unstash(run_id: str) -> Any:
    with _lock:
        return _runs[run_id]


def drop(run_id: str) -> None:
    with _lock:
        _runs.pop(run_id, None)


@contextmanager
def fast() -> Iterator[None]:
    """No flow heartbeats: they add ~0.9 s to every short flow (the ledger knows which runs
    started and never finished: `killswitch audit unfinished`)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
