"""Calls that must answer within a deadline, or be given up on.

Retrying inside a deadline bounds how long a run *retries*, not how long one call blocks: a
silent provider (a black hole, a hung connection) holds a call for its client's read timeout,
and a retry loop that started just before its deadline runs one more. Here each call runs on
a daemon thread and the caller waits for it no longer than the deadline: one that has not
answered by then is abandoned (it stops at its own deadline; as a daemon it never holds the
process at exit) and reported as silent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TypeVar

T = TypeVar("T")
_abandoned: list[threading.Thread] = []


def abandoned() -> int:
    """Calls given up on that are still running (read-only work nobody waits for: the CLI
    need not wait for them either when it exits)."""
    return sum(1 for thread in _abandoned if thread.is_alive())


def answered_within(
    calls: Mapping[str, Callable[[], T]], *, deadline_s: float, workers: int
) -> dict[str, T | None]:
    """Run every call (at most `workers` at once), each allowed `deadline_s` from its own
    start; its result, or None for one that did not answer in time. A call's exception is
    raised here (callers turn their own errors into results)."""
    gate = threading.Semaphore(max(1, workers))
    futures: dict[str, Future[T]] = {name: Future() for name in calls}
    started: dict[str, float] = {}

    def run(name: str) -> None:
        with gate:
            started[name] = time.monotonic()
            future = futures[name]
            try:
                future.set_result(calls[name]())
            except BaseException as exc:  # handed to the waiting caller
                future.set_exception(exc)

    threads = {
        name: threading.Thread(target=run, args=(name,), name=f"within-{name}", daemon=True)
        for name in calls
    }
    for thread in threads.values():
        thread.start()
    answers: dict[str, T | None] = {}
    while len(answers) < len(futures):
        now = time.monotonic()
        pending: list[Future[T]] = []
        waits: list[float] = []
        for name, future in futures.items():
            if name in answers:
                continue
            if future.done():
                answers[name] = future.result()
            elif name in started and now - started[name] >= deadline_s:
                answers[name] = None
                _abandoned.append(threads[name])
            else:
                pending.append(future)
                waits.append(started[name] + deadline_s - now if name in started else 0.05)
        if pending:
            wait(pending, timeout=max(0.01, min(waits)), return_when=FIRST_COMPLETED)
    return {name: answers[name] for name in calls}
