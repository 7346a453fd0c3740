"""The warm process's heap, kept out of the garbage collector's way.

A warm process holds ~300,000 long-lived objects: the imported modules (Prefect, pydantic,
the SDKs), botocore's service models, Prefect's client. CPython's full collection scans all
of them, and one came every second or third containment: 0.3-0.4 s with every thread
stopped, in the middle of someone's incident (measured: a K = 60 containment at L = 50
took 1.9-2.3 s with one, 1.35-1.7 s without). `gc.freeze()` moves what exists into a
permanent generation that no collection scans; what a run creates is still collected.

The service settles the heap at start (after importing the flows) and once more after the
first run, when the lazily made objects (SDK clients, service models, what Prefect imports
at its first flow run) exist. Only once: a frozen object that later becomes cyclic garbage
is never freed, so freezing after every run would leak what each run leaves behind.
A one-shot process (the CLI) never calls `keep_warm` and is left as Python makes it.
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_warm = False
_after_first_run = False


def settle() -> int:
    """Collect what is garbage now, then freeze the rest (no later collection scans it);
    the number of objects frozen so far."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def keep_warm() -> int:
    """This process lives on and serves many runs: settle the heap now, and once more after
    its first run (`ran`)."""
    global _warm
    with _lock:
        _warm = True
    return settle()


def ran() -> None:
    """A run of this process ended: the first one in a warm process settles the heap."""
    global _after_first_run
    with _lock:
        if not _warm or _after_first_run:
            return
        _after_first_run = True
    settle()
