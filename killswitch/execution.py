"""One provider's share of a run: perform its actions in parallel, then prove each credential.

Plain functions over the revoker contract, so that the Prefect flow (one task per provider)
and break-glass (no orchestrator) run exactly the same code. Only `TransientError` is
retried, with jittered backoff, inside the action deadline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from typing import TypeVar

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
)
from killswitch.retry import retrying_transient
from killswitch.secrets import Material, SecretSource
from revokers.base import ProbeAttempt, ProbeOutcome, Revoker

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Timing:
    """How long to keep trying: provider calls and probes each have their own deadline."""

    action_deadline_s: float
    probe_deadline_s: float
    probe_interval_s: float


def perform(
    revoker: Revoker, action: Action, deadline_s: float, materials: Sequence[Material] = ()
) -> ActionResult:
    """Perform one action, retrying transient errors; a failure is a result, not a raise."""

    def gated(a: Action) -> ActionResult:
        with revoker.gate:
            return revoker.perform(a, materials)

    return attempt(gated, action, action, deadline_s)


def attempt(
    call: Callable[[T], ActionResult], arg: T, action: Action, deadline_s: float
) -> ActionResult:
    """Call a revoker verb with retries inside the deadline; errors become FAILED results."""
    started = time.monotonic()
    try:
        result: ActionResult = retrying_transient(deadline_s)(call, arg)
        return result
    except KillSwitchError as exc:
        detail = f"{exc.code}: {exc.message}"
    except Exception as exc:
        log.exception("unexpected error in %s %s", action.operation, action.target)
        detail = f"unexpected {type(exc).__name__} (see the log)"
    return ActionResult(action, Outcome.FAILED, detail, None, time.monotonic() - started)


def _attempt(revoker: Revoker, credential: Credential, material: Material) -> ProbeAttempt:
    """One probe; whatever goes wrong in it is inconclusive, never a crash of the run."""
    try:
        with revoker.gate:
            return revoker.probe(credential, material)
    except KillSwitchError as exc:
        return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, f"{exc.code}: {exc.message}")
    except Exception as exc:
        log.exception("unexpected error probing %s", credential.key)
        return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, f"unexpected {type(exc).__name__}")


def poll(
    revoker: Revoker,
    credential: Credential,
    materials: Sequence[Material],
    *,
    until: ProbeOutcome,
    deadline_s: float,
    interval_s: float,
) -> tuple[list[ProbeAttempt], int, float]:
    """Probe every piece of material until each answers `until` or the deadline passes."""
    started = time.monotonic()
    pending = list(materials)
    final: dict[int, ProbeAttempt] = {}
    attempts, wait = 0, interval_s
    while True:
        still = []
        for material in pending:
            attempt = _attempt(revoker, credential, material)
            attempts += 1
            final[id(material)] = attempt
            if attempt.outcome is not until:
                still.append(material)
        pending = still
        elapsed = time.monotonic() - started
        if not pending or elapsed >= deadline_s:
            return [final[id(m)] for m in materials], attempts, elapsed
        time.sleep(min(wait, max(deadline_s - elapsed, 0.0)))
        wait = min(wait * 1.5, 10.0)


STATUS = {ProbeOutcome.REJECTED: VerdictStatus.DEAD, ProbeOutcome.ACCEPTED: VerdictStatus.ALIVE}


def probe_until(
    revoker: Revoker,
    credential: Credential,
    materials: Sequence[Material],
    *,
    want: ProbeOutcome,
    deadline_s: float,
    interval_s: float,
) -> Verdict:
    """Poll until every probe answers `want`: that status when all do; the opposite one when
    any probe answered the opposite; `unknown` when the provider never said either."""
    finals, attempts, elapsed = poll(
        revoker, credential, materials, until=want, deadline_s=deadline_s, interval_s=interval_s
    )
    outcomes = {a.outcome for a in finals}
    opposite = ProbeOutcome.ACCEPTED if want is ProbeOutcome.REJECTED else ProbeOutcome.REJECTED
    if outcomes == {want}:
        status = STATUS[want]
    elif opposite in outcomes:
        status = STATUS[opposite]
    else:
        status = VerdictStatus.UNKNOWN
    evidence = "; ".join(dict.fromkeys(a.evidence for a in finals)) or "no probe material"
    return Verdict(status, evidence, attempts, elapsed)


def prove_dead(
    revoker: Revoker, credential: Credential, materials: Sequence[Material], timing: Timing
) -> Verdict:
    """`dead` only when every probe saw the provider reject the credential."""
    if not materials:
        try:
            return revoker.read_back(credential)
        except KillSwitchError as exc:
            return Verdict(VerdictStatus.UNKNOWN, f"read-back failed: {exc.code}: {exc.message}")
    verdict = probe_until(
        revoker,
        credential,
        materials,
        want=ProbeOutcome.REJECTED,
        deadline_s=timing.probe_deadline_s,
        interval_s=timing.probe_interval_s,
    )
    if verdict.status is VerdictStatus.ALIVE:
        lead = f"still authenticates after {verdict.elapsed_s:.1f}s: "
    elif verdict.status is VerdictStatus.UNKNOWN:
        lead = f"no rejection seen within {verdict.elapsed_s:.1f}s: "
    else:
        return verdict
    return replace(verdict, evidence=lead + verdict.evidence)


def check_alive(
    revoker: Revoker,
    credential: Credential,
    materials: Sequence[Material],
    *,
    deadline_s: float,
    interval_s: float,
) -> Verdict:
    """The inverse proof (untouched agents, restores): `alive` when every probe authenticates."""
    return probe_until(
        revoker,
        credential,
        materials,
        want=ProbeOutcome.ACCEPTED,
        deadline_s=deadline_s,
        interval_s=interval_s,
    )


def materials_for(
    revoker: Revoker, secrets: SecretSource, credential: Credential
) -> Sequence[Material]:
    """What to probe a credential with: the provider itself for self-probing kinds (a lease
    lookup needs no secret), else whatever the secret sources hold."""
    if credential.kind in revoker.self_probing_kinds:
        return [Material("provider", {})]
    return secrets.materials(credential)


def run_provider(
    revoker: Revoker,
    plan: Plan,
    *,
    secrets: SecretSource,
    timing: Timing,
    on_result: Callable[[ActionResult], None],
    on_verdict: Callable[[Credential, Verdict], None],
    on_phase: Callable[[str], None] = lambda phase: None,
) -> ProviderOutcome:
    """Contain and detach in parallel, then probe every credential in parallel."""
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
    with (
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix=revoker.provider) as pool,
        ThreadPoolExecutor(max_workers=lookups, thread_name_prefix="material") as reads,
    ):
        # Probe material (a secrets store is a round trip too) is read while the actions run.
        prefetched = {
            c.key: reads.submit(materials_for, revoker, secrets, c) for c in plan.credentials
        }
        by_ref = {c.ref: c for c in plan.credentials}

        def perform_one(action: Action) -> ActionResult:
            # Some providers revoke *with* the secret (Slack auth.revoke, GitHub's revoke
            # API): the revoker says which operations, the engine hands the material over.
            credential = by_ref.get(action.target)
            needed = action.operation in revoker.material_operations and credential is not None
            materials = prefetched[credential.key].result() if needed and credential else ()
            return perform(revoker, action, timing.action_deadline_s, materials)

        def run(actions: Sequence[Action]) -> None:
            for future in as_completed([pool.submit(perform_one, a) for a in actions]):
                result = future.result()
                results.append(result)
                on_result(result)

        # Containment first: what stops every credential authenticating. Grants come off
        # while the probes run (a detach changes no verdict), unless a decommission must
        # delete things first, in phases, and probe what is left after.
        destroying = any(a.verb is Verb.DESTROY for a in pending)
        run([a for a in pending if a.verb is Verb.CONTAIN])
        detaching = [a for a in pending if a.verb is Verb.DETACH]
        if destroying:
            run(detaching)
            for phase in sorted({a.phase for a in pending if a.verb is Verb.DESTROY}):
                run([a for a in pending if a.verb is Verb.DESTROY and a.phase == phase])
        contain_s = time.monotonic() - started
        on_phase("probing")
        verifying = time.monotonic()

        def verdict_for(credential: Credential) -> tuple[Credential, Verdict]:
            verdict = prove_dead(revoker, credential, prefetched[credential.key].result(), timing)
            on_verdict(credential, verdict)
            return credential, verdict

        # Probes are queued first: they decide the verdicts; the detach actions follow them
        # into the pool from a driver thread of its own (not a pool worker: with one worker,
        # the serial mode, a worker waiting on the pool's own queue would wait forever).
        probing = [pool.submit(verdict_for, c) for c in plan.credentials]
        detach = threading.Thread(target=run, args=([] if destroying else detaching,))
        detach.start()
        verdicts = [future.result() for future in probing]
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
