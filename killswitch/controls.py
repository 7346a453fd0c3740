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
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from killswitch.models import Credential
from killswitch.secrets import Material, SecretSource
from killswitch.verdicts import Control, control
from revokers.base import Revoker

FRESH_S = 5.0


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
    """Begin reading material for, and probing, every credential of one provider's plan.
    Returns at once: the threads (one a credential: its material, then its baseline) are
    started by one thread of their own, so the provider's discovery answers without
    waiting for them (under load each start waits its turn for the interpreter: tens of
    credentials held a provider's answer for tenths of a second)."""
    from killswitch.execution import materials_for

    unique = list({c.key: c for c in credentials}.values())
    materials: dict[str, Future[Sequence[Material]]] = {c.key: Future() for c in unique}
    controls: dict[str, Future[tuple[Control, ...]]] = {c.key: Future() for c in unique}

    def one(credential: Credential) -> None:
        key = credential.key
        try:
            found = materials_for(revoker, secrets, credential)
        except BaseException as exc:  # handed to whoever waits
            materials[key].set_exception(exc)
            controls[key].set_exception(exc)
            return
        materials[key].set_result(found)
        try:
            controls[key].set_result(tuple(control(revoker, credential, m) for m in found))
        except BaseException as exc:
            controls[key].set_exception(exc)

    def every() -> None:
        # Daemon threads: a baseline nobody waits for (its run never came) must not hold
        # the process at exit, as an executor's threads would.
        for credential in unique:
            threading.Thread(
                target=one, args=(credential,), name="early-baseline", daemon=True
            ).start()

    now = time.monotonic()
    with _lock:
        for key in [k for k, e in _taken.items() if now - e.at > 4 * FRESH_S]:
            del _taken[key]  # plans that never ran (a button never pressed)
        _taken[(run_id, revoker.provider)] = Early(now, secrets, materials, controls)
    threading.Thread(target=every, name="early-controls", daemon=True).start()


def taken(run_id: str, provider: str, secrets: SecretSource) -> Early | None:
    """The provider's early baselines for this run, once, if they are still fresh and were
    read from the secret source the run reads from."""
    with _lock:
        early = _taken.pop((run_id, provider), None)
    if early is None or time.monotonic() - early.at > FRESH_S or early.secrets is not secrets:
        return None
    return early
