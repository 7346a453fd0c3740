"""The baselines, taken while the plan is being made: each provider's credentials are probed
as soon as its discovery answers — while slower providers are still being searched — so the
containment that follows does not wait for its controls.

Kept in this process by (run id, provider) for `FRESH_S`: a run that starts right after its
plan (the CLI, an alert, a Slack command under the confirmation threshold) takes them; one
that starts later (a button clicked after a while, another process) takes its own, as a
control must show the probe could succeed *just before* containment.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TypeVar

from killswitch.models import Credential
from killswitch.secrets import Material, SecretSource
from killswitch.verdicts import Control, control
from revokers.base import Revoker

FRESH_S = 5.0

T = TypeVar("T")


def _spawn(name: str, fn: Callable[..., T], *args: object) -> Future[T]:
    """`fn(*args)` on a daemon thread of its own: a baseline nobody waits for (its run never
    came) must not hold the process at exit, as an executor's threads would."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # handed to whoever waits
            future.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


@dataclass(frozen=True, slots=True)
class Early:
    """One provider's probe material and controls, as they were being taken at plan time."""

    at: float
    secrets: SecretSource  # what the material was read from: a run reading others takes its own
    materials: Mapping[str, Future[Sequence[Material]]]
    controls: Mapping[str, Future[tuple[Control, ...]]]


_lock = threading.Lock()
_taken: dict[tuple[str, str], Early] = {}


def start(
    run_id: str, revoker: Revoker, credentials: Sequence[Credential], secrets: SecretSource
) -> None:
    """Begin reading material for, and probing, every credential of one provider's plan."""
    from killswitch.execution import materials_for

    materials = {
        c.key: _spawn("early-material", materials_for, revoker, secrets, c) for c in credentials
    }

    def one(credential: Credential) -> tuple[Control, ...]:
        return tuple(control(revoker, credential, m) for m in materials[credential.key].result())

    controls = {c.key: _spawn("early-baseline", one, c) for c in credentials}
    now = time.monotonic()
    with _lock:
        for key in [k for k, e in _taken.items() if now - e.at > 4 * FRESH_S]:
            del _taken[key]  # plans that never ran (a button never pressed)
        _taken[(run_id, revoker.provider)] = Early(now, secrets, materials, controls)


def taken(run_id: str, provider: str, secrets: SecretSource) -> Early | None:
    """The provider's early baselines for this run, once, if they are still fresh and were
    read from the secret source the run reads from."""
    with _lock:
        early = _taken.pop((run_id, provider), None)
    if early is None or time.monotonic() - early.at > FRESH_S or early.secrets is not secrets:
        return None
    return early
