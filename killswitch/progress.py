"""Progress events of a run, for whoever is watching (the CLI's stderr, a Slack thread).

In-process listeners only; the ledger is the durable record. Listeners must be quick and
must never raise into the run; events carry references, never secret material.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    message: str
    provider: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


Listener = Callable[[Event], None]
_listeners: list[Listener] = []
_lock = threading.Lock()


def emit(kind: str, message: str, *, provider: str = "", **data: Any) -> None:
    event = Event(kind, message, provider, data)
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(event)
        except Exception:  # noqa: S110  (a broken watcher must not stop a containment)
            pass


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)
