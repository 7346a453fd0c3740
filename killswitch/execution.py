"""One provider's share of a run: perform its actions in parallel, and prove each credential
once its own containment is done.

Plain functions over the revoker contract, so that the Prefect flow (one task per provider)
and break-glass (no orchestrator) run exactly the same code. Only `TransientError` is
retried, with jittered backoff, inside the action deadline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from functools import partial
from typing import TypeVar

from tenacity import Retrying

from killswitch.controls import taken as taken_early
from killswitch.errors import KillSwitchError
from killswitch.models import (
    Action,
    ActionResult,
    Credential,
    Outcome,
    Plan,
    ProviderOutcome,
    Verb,
    Verdict,
    VerdictStatus,
    belongs,
)
from killswitch.retry import retrying_transient
from killswitch.secrets import CARRIED, Material, SecretSource
from killswitch.verdicts import Control, gathered, prove_dead, take_baselines
from revokers.base import Revoker

log = logging.getLogger(__name__)
MAX_BATCHED = 1000  # actions of one batched operation in flight at once
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Timing:
    """How long to keep trying: provider calls and probes each have their own deadline."""

    action_deadline_s: float
    probe_deadline_s: float
    probe_interval_s: float


Slot = Callable[[], AbstractContextManager[object]]
Controls = Mapping[str, tuple[Control, ...]]
# Blocked controls replaced by ones carried over from an earlier run (killswitch/carried.py).
Carry = Callable[[Controls], Controls]


def perform(
    revoker: Revoker,
    action: Action,
    deadline_s: float,
    materials: Sequence[Material] = (),
    slot: Slot = nullcontext,
) -> ActionResult:
    """Perform one action, retrying transient errors; a failure is a result, not a raise.
    `slot`: held around the call inside this process's gate (a fleet-wide provider limit)."""

    def gated(a: Action) -> ActionResult:
        if a.operation in revoker.batched_operations:  # gathered into the revoker's own calls
            return revoker.perform(a, materials)
        with revoker.gate, slot():
            return revoker.perform(a, materials)

    return attempt(gated, action, action, deadline_s)


def attempt(
    call: Callable[[T], ActionResult], arg: T, action: Action, deadline_s: float
) -> ActionResult:
    """Call a revoker verb with retries inside the deadline; errors become FAILED results."""
    started = time.monotonic()
    retrying = retrying_transient(deadline_s)
    try:
        result: ActionResult = retrying(call, arg)
        return replace(result, attempts=_attempts(retrying))
    except KillSwitchError as exc:
        detail = f"{exc.code}: {exc.message}"
    except Exception as exc:
        log.exception("unexpected error in %s %s", action.operation, action.target)
        detail = f"unexpected {type(exc).__name__} (see the log)"
    elapsed = time.monotonic() - started
    return ActionResult(action, Outcome.FAILED, detail, None, elapsed, _attempts(retrying))


def _attempts(retrying: Retrying) -> int:
    """How many calls a retry loop made (the ledger shows retries: issue 17)."""
    return int(retrying.statistics.get("attempt_number", 1))


def materials_for(
    revoker: Revoker, secrets: SecretSource, credential: Credential
) -> Sequence[Material]:
    """What to probe a credential with: the provider itself for self-probing kinds (a lease
    lookup needs no secret), else whatever the secret sources hold."""
    if credential.kind in revoker.self_probing_kinds:
        return [Material("provider", {})]
    return secrets.materials(credential)


class Unread(tuple[Material, ...]):
    """No material, because its read did not answer in time (not: the sources hold none)."""


def _due_by(
    reads: Mapping[str, Future[Sequence[Material]]], due: float
) -> dict[str, Future[Sequence[Material]]]:
    """Material reads as futures that answer by `due` at the latest: `Unread` for one that
    had not answered by then (the read itself goes on, unwaited for). One timer for all."""
    bounded: dict[str, Future[Sequence[Material]]] = {key: Future() for key in reads}
    lock = threading.Lock()

    def relay(key: str, read: Future[Sequence[Material]]) -> None:
        with lock:
            if bounded[key].done():
                return
            error = read.exception()
            if error is not None:
                bounded[key].set_exception(error)
            else:
                bounded[key].set_result(read.result())

    def expire() -> None:
        with lock:
            for future in bounded.values():
                if not future.done():
                    future.set_result(Unread())

    for key, read in reads.items():
        read.add_done_callback(partial(relay, key))
    timer = threading.Timer(max(0.0, due - time.monotonic()), expire)
    timer.daemon = True
    timer.start()
    return bounded


def run_provider(
    revoker: Revoker,
    plan: Plan,
    *,
    secrets: SecretSource,
    timing: Timing,
    on_result: Callable[[ActionResult], None],
    on_verdict: Callable[[Credential, Verdict], None],
    on_phase: Callable[[str], None] = lambda phase: None,
    on_start: Callable[[Action], None] = lambda action: None,
    on_baselines: Callable[[Controls], None] = lambda controls: None,
    carry: Carry | None = None,
    slot: Slot = nullcontext,
) -> ProviderOutcome:
    """Baseline-probe every credential, contain and detach in parallel, and prove every
    credential in parallel, each as soon as its own containment actions are back. `slot`:
    held around each gated provider call (see `perform`). `on_baselines` gets the controls
    before the first change is sent; `carry`, called once after containment and only when
    a control is blocked, may stand earlier runs' baselines in for them."""
    started = time.monotonic()
    results: list[ActionResult] = []
    for action in plan.actions:
        if action.in_place:
            result = ActionResult(action, Outcome.ALREADY, "already in place at discovery")
            results.append(result)
            on_result(result)
    pending = [a for a in plan.actions if not a.in_place]
    workers = max(1, min(revoker.max_workers, max(len(pending), len(plan.credentials))))
    lookups = max(1, min(16, len(plan.credentials)))
    # Probe material (a secrets store is a round trip too) is read while the actions run,
    # on threads nobody joins: a silent secret store holds no phase past the action deadline.
    # Taken while the plan was made (killswitch.controls), when the run follows it at once.
    early = taken_early(plan.run_id, revoker.provider, secrets)
    if early is not None and set(early.controls) >= {c.key for c in plan.credentials}:
        prefetched = dict(early.materials)
    else:
        early = None
        reads = ThreadPoolExecutor(max_workers=lookups, thread_name_prefix="material")
        prefetched = {
            c.key: reads.submit(materials_for, revoker, secrets, c) for c in plan.credentials
        }
        reads.shutdown(wait=False)
    due = started + timing.action_deadline_s
    with (
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix=revoker.provider) as pool,
        # Baselines on threads of their own: one that hangs must not hold a worker the
        # containment actions need.
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="baseline") as baselines,
    ):
        materials = _due_by(prefetched, due)
        by_ref = {c.ref: c for c in plan.credentials}
        # The control: each credential probed before anything is contained (its rejection
        # afterwards proves a kill only if this one could succeed). In parallel, bounded by
        # the action deadline; one that does not answer does not hold containment back.
        if early is not None:
            controls = gathered(
                {c.key: early.controls[c.key] for c in plan.credentials},
                timing.action_deadline_s,
            )
        else:
            controls = take_baselines(
                revoker, plan.credentials, materials, baselines, timing.action_deadline_s
            )
        on_baselines(controls)  # in the ledger before anything changes: a re-run may need it

        def perform_one(action: Action, *, started: bool = False) -> ActionResult:
            # Some providers revoke *with* the secret (Slack auth.revoke, GitHub's revoke
            # API): the revoker says which operations, the engine hands the material over.
            credential = by_ref.get(action.target)
            needed = action.operation in revoker.material_operations and credential is not None
            given = materials[credential.key].result() if needed and credential else ()
            if not started:
                on_start(action)  # recorded before the change (a kill mid-way is undoable)
            return perform(revoker, action, timing.action_deadline_s, given, slot)

        def run(
            actions: Sequence[Action], on_done: Callable[[ActionResult], None] | None = None
        ) -> None:
            batched = [a for a in actions if a.operation in revoker.batched_operations]
            # A batched operation's actions all go at once (the revoker gathers them into as
            # few provider calls as it may), on threads beyond the provider's worker count.
            together = ThreadPoolExecutor(
                max_workers=max(1, min(len(batched), MAX_BATCHED)), thread_name_prefix="batched"
            )
            # Their intents first, all of them: recorded one by one as each was sent, forty
            # commits outlasted the revoker's gathering window (GitHub's 0.2 s) on a busy
            # machine and the run's revocations went in two calls.
            for action in batched:
                on_start(action)
            # And their threads all started before the first is let go: started one by one
            # as each was submitted, forty threads on a busy machine (each waiting its turn
            # for the interpreter) also outlasted the window.
            go = threading.Event()

            def released(action: Action) -> ActionResult:
                go.wait()
                return perform_one(action, started=True)

            with together:
                try:
                    futures = [together.submit(released, a) for a in batched]
                finally:
                    go.set()
                alone = [a for a in actions if a.operation not in revoker.batched_operations]
                futures += [pool.submit(perform_one, a) for a in alone]
                for future in as_completed(futures):
                    result = future.result()
                    results.append(result)
                    if on_done is not None:
                        on_done(result)  # a probe it frees goes first: the ledger can wait
                    on_result(result)

        def verdict_for(
            credential: Credential, done: Sequence[ActionResult]
        ) -> tuple[Credential, Verdict]:
            found = materials[credential.key].result()
            if isinstance(found, Unread):
                verdict = Verdict(
                    VerdictStatus.UNKNOWN,
                    f"probe material not read within {timing.action_deadline_s:g}s (a secret "
                    "source did not answer): not probed",
                    to_prove="run the command again once the secret source answers",
                )
                on_verdict(credential, verdict)
                return credential, verdict
            verdict = prove_dead(
                revoker,
                credential,
                found,
                deadline_s=timing.probe_deadline_s,
                interval_s=timing.probe_interval_s,
                controls=controls[credential.key],
                results=[
                    r for r in done if r.action.target in (credential.ref, credential.principal)
                ],
            )
            if any(m.source == CARRIED for m in prefetched[credential.key].result()):
                verdict = replace(
                    verdict, evidence=f"{verdict.evidence} (probed with the leaked value itself)"
                )
            on_verdict(credential, verdict)
            return credential, verdict

        # Containment first: what stops every credential authenticating. Grants come off
        # while the probes run (a detach changes no verdict), unless a decommission must
        # delete things first, in phases, and probe what is left after.
        destroying = any(a.verb is Verb.DESTROY for a in pending)
        containing = [a for a in pending if a.verb is Verb.CONTAIN]
        probing: dict[str, Future[tuple[Credential, Verdict]]] = {}
        # Each credential is probed as soon as its own revocations have come back (its settle
        # window starts at the first rejection seen after them), while the provider's other
        # containment actions are still under way. Not in a decommission (it deletes first),
        # nor when a control is blocked (whether an earlier run's baseline stands in for it
        # is decided after the whole containment); and a credential none of whose actions
        # is known as its own waits for the whole containment, as before.
        owed: dict[str, set[str]] = {}
        if not destroying and not any(c.blocked for found in controls.values() for c in found):
            for credential in plan.credentials:
                own = {a.key for a in containing if belongs(a, credential)}
                if own:
                    owed[credential.key] = own

        def returned(result: ActionResult) -> None:
            for credential in plan.credentials:
                waiting = owed.get(credential.key)
                if waiting is None or result.action.key not in waiting:
                    continue
                waiting.discard(result.action.key)
                if not waiting:
                    # Queued behind the containment actions still waiting for a worker.
                    probing[credential.key] = pool.submit(verdict_for, credential, tuple(results))

        run(containing, returned)
        detaching = [a for a in pending if a.verb is Verb.DETACH]
        if destroying:
            run(detaching)
            for phase in sorted({a.phase for a in pending if a.verb is Verb.DESTROY}):
                run([a for a in pending if a.verb is Verb.DESTROY and a.phase == phase])
        contain_s = time.monotonic() - started
        done = tuple(results)
        if carry is not None and any(c.blocked for found in controls.values() for c in found):
            controls = dict(carry(controls))
        on_phase("probing")
        verifying = time.monotonic()
        # The rest are queued now: probes decide the verdicts; the detach actions follow them
        # into the pool from a driver thread of its own (not a pool worker: with one worker,
        # the serial mode, a worker waiting on the pool's own queue would wait forever).
        for credential in plan.credentials:
            if credential.key not in probing:
                probing[credential.key] = pool.submit(verdict_for, credential, done)
        detach = threading.Thread(target=run, args=([] if destroying else detaching,))
        detach.start()
        verdicts = [probing[c.key].result() for c in plan.credentials]
        proven = time.monotonic()
        verify_s = proven - verifying
        detach.join()
    return ProviderOutcome(
        provider=revoker.provider,
        results=tuple(results),
        verdicts=tuple(verdicts),
        contain_s=contain_s,
        verify_s=verify_s,
        started=started,
        finished=time.monotonic(),
        proven=proven,
    )
