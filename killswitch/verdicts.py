"""Proving a verdict: a control probe before containment, then a rejection on the provider's
allow-list that holds over the provider's settle window.

A rejection proves a kill only when the same probe could succeed before containment (the
baseline). On eventually consistent providers it must also hold, probe after probe, for the
revoker's `settle_s`: an acceptance after a rejection is reported and restarts the window.
Whatever could not be shown within the probe deadline is `unknown`, never `dead`.
A re-run after a run killed mid-way may stand on that run's baseline instead of its own
rejected one: the same rule, "before containment" being before the killed run's revocation
(killswitch/carried.py says when).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass, field
from enum import StrEnum

from killswitch.errors import KillSwitchError
from killswitch.models import ActionResult, Credential, Outcome, Verdict, VerdictStatus
from killswitch.secrets import Material
from revokers.base import ProbeAttempt, ProbeOutcome, Revoker

log = logging.getLogger(__name__)
Probe = Callable[[Credential, Material], "ProbeAttempt | None"]
# Worst first: a credential's verdict is its worst material's.
RANK = (VerdictStatus.ALIVE, VerdictStatus.UNKNOWN, VerdictStatus.UNVERIFIED, VerdictStatus.DEAD)


def guarded(
    revoker: Revoker, probe: Probe, credential: Credential, material: Material
) -> ProbeAttempt | None:
    """One probe; whatever goes wrong in it is inconclusive, never a crash of the run (None:
    the probe does not exist, e.g. no alternative)."""
    try:
        with revoker.gate:
            return probe(credential, material)
    except KillSwitchError as exc:
        return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, f"{exc.code}: {exc.message}")
    except Exception as exc:
        log.exception("unexpected error probing %s", credential.key)
        return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, f"unexpected {type(exc).__name__}")


def safely(
    revoker: Revoker, probe: Probe, credential: Credential, material: Material
) -> ProbeAttempt:
    """`guarded`, where a missing probe is an inconclusive answer."""
    attempt = guarded(revoker, probe, credential, material)
    if attempt is None:
        return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, f"{revoker.provider} has no other probe")
    return attempt


class Answer(StrEnum):
    """What a baseline saw, as the ledger records it (killswitch/carried.py reads it back)."""

    ACCEPTED = "accepted"  # the main probe authenticated
    ALTERNATIVE = "alternative"  # only the alternative probe authenticated
    REJECTED = "rejected"  # every probe was rejected already (a blocked control)
    INCONCLUSIVE = "inconclusive"
    NONE = "none"  # not taken (no material, or not within the deadline)


@dataclass(frozen=True, slots=True)
class Control:
    """What one piece of material answered before containment, and how to probe it after."""

    said: str
    # Probe with the revoker's alternative probe (the main one was rejected already).
    alternative: bool = False
    # Every probe was rejected already: no later rejection can prove a kill.
    blocked: bool = False
    # What this run's own baseline saw (a carried control keeps it: `rejected`).
    answer: Answer = Answer.NONE


NO_BASELINE = Control("no baseline was taken before containment")


def control(revoker: Revoker, credential: Credential, material: Material) -> Control:
    """The baseline of one piece of material: the probe, and the alternative if it is rejected."""
    first = safely(revoker, revoker.baseline, credential, material)
    if first.outcome is ProbeOutcome.ACCEPTED:
        return Control("baseline: authenticated before containment", answer=Answer.ACCEPTED)
    if first.outcome is ProbeOutcome.INCONCLUSIVE:
        return Control(
            f"baseline inconclusive before containment ({first.evidence}): contained anyway, "
            "without a success to compare the rejection with",
            answer=Answer.INCONCLUSIVE,
        )
    other = guarded(revoker, revoker.alternative_probe, credential, material)
    if other is None:
        return Control(
            f"baseline already rejected before containment ({first.evidence}): "
            "a later rejection proves nothing",
            blocked=True,
            answer=Answer.REJECTED,
        )
    if other.outcome is not ProbeOutcome.ACCEPTED:
        # Only an alternative that authenticated now is a control: one already rejected, or
        # one that cannot tell (GetCallerIdentity under a deny), could never show a kill.
        return Control(
            f"baseline already rejected before containment ({first.evidence}; "
            f"alternative probe {other.outcome}: {other.evidence}): a later rejection "
            "proves nothing",
            blocked=True,
            answer=Answer.REJECTED,
        )
    return Control(
        f"baseline already rejected before containment ({first.evidence}); proven with the "
        f"alternative probe instead, which authenticated before containment ({other.evidence})",
        alternative=True,
        answer=Answer.ALTERNATIVE,
    )


def take_baselines(
    revoker: Revoker,
    credentials: Sequence[Credential],
    materials: Mapping[str, Future[Sequence[Material]]],
    pool: Executor,
    deadline_s: float,
) -> dict[str, tuple[Control, ...]]:
    """Every credential's baseline, in parallel, before containment starts. One that has not
    answered within `deadline_s` does not hold containment back: it counts as not taken."""

    def one(credential: Credential) -> tuple[Control, ...]:
        return tuple(control(revoker, credential, m) for m in materials[credential.key].result())

    return gathered({c.key: pool.submit(one, c) for c in credentials}, deadline_s)


def gathered(
    futures: Mapping[str, Future[tuple[Control, ...]]], deadline_s: float
) -> dict[str, tuple[Control, ...]]:
    """Baselines being taken, as they stand after at most `deadline_s`: one not answered by
    then counts as not taken (containment is not held back for it)."""
    done, _ = wait(futures.values(), timeout=deadline_s)
    late = Control(f"no baseline within {deadline_s:g}s: contained without one")
    controls: dict[str, tuple[Control, ...]] = {}
    for key, future in futures.items():
        if future in done and future.exception() is None:
            controls[key] = future.result()
        else:
            controls[key] = (late,)  # (prove_dead repeats a credential's last control)
    return controls


@dataclass(slots=True)
class Track:
    """One material's answers after containment: when its rejections began, and every
    acceptance that interrupted them."""

    settle_s: float
    since: float | None = None
    last_rejected: float = 0.0
    probes: int = 0
    rejection: ProbeAttempt | None = None
    last: ProbeAttempt | None = None
    conclusive: ProbeAttempt | None = None
    flaps: list[str] = field(default_factory=list)

    def see(self, at: float, attempt: ProbeAttempt) -> None:
        """Record one answer, `at` seconds after the probing began."""
        self.last = attempt
        if attempt.outcome is ProbeOutcome.INCONCLUSIVE:
            return  # says nothing: neither continues nor breaks a run of rejections
        self.conclusive = attempt
        if attempt.outcome is ProbeOutcome.REJECTED:
            if self.since is None:
                self.since, self.probes = at, 0
            self.last_rejected, self.probes, self.rejection = at, self.probes + 1, attempt
        elif self.since is not None:
            self.flaps.append(f"rejected at {self.since:.1f}s, accepted again at {at:.1f}s")
            self.since = None

    @property
    def settled(self) -> bool:
        """The current run of rejections has lasted the whole settle window."""
        return self.since is not None and self.last_rejected - self.since >= self.settle_s

    def pause(self, elapsed: float, interval_s: float) -> float | None:
        """How long until the next probe is due while a window runs (None: none runs)."""
        if self.since is None:
            return None
        return min(max(interval_s, self.settle_s / 4), max(self.since + self.settle_s - elapsed, 0))

    def verdict(self, elapsed: float, deadline_s: float, said: str) -> Verdict:
        """This material's verdict when the probing stopped."""
        flaps = "; ".join(self.flaps)
        since = self.since
        if self.settled and since is not None and self.rejection is not None:
            held = ""
            if self.settle_s > 0:
                held = (
                    f"rejected since {since:.1f}s, held {self.last_rejected - since:.1f}s"
                    f" over the {self.settle_s:g}s settle window ({self.probes} probes)"
                )
            return Verdict(VerdictStatus.DEAD, _join(self.rejection.evidence, flaps, held, said))
        if self.conclusive is not None and self.conclusive.outcome is ProbeOutcome.ACCEPTED:
            lead = f"still authenticates after {elapsed:.1f}s: {self.conclusive.evidence}"
            return Verdict(VerdictStatus.ALIVE, _join(lead, flaps, said))
        if self.since is not None and self.rejection is not None:
            lead = (
                f"{self.rejection.evidence}; rejected since {self.since:.1f}s, but the "
                f"{self.settle_s:g}s settle window could not complete within the "
                f"{deadline_s:g}s probe deadline"
            )
            return Verdict(VerdictStatus.UNKNOWN, _join(lead, flaps, said))
        words = self.last.evidence if self.last is not None else "no probe answered"
        lead = f"no rejection seen within {elapsed:.1f}s: {words}"
        return Verdict(VerdictStatus.UNKNOWN, _join(lead, flaps, said))


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def blocked(
    revoker: Revoker, credential: Credential, said: str, results: Sequence[ActionResult]
) -> Verdict:
    """A material whose baseline was rejected already: `unverified` when this run's own
    actions on the credential all went through, `unknown` when one failed."""
    to_prove = (
        f"a probe that authenticates before containment: check that the secret source holds "
        f"the live {credential.kind} and that its probe call is allowed, then re-run; or "
        f"confirm the revocation in the {revoker.provider} console"
    )
    failed = [r.action.operation for r in results if r.outcome is Outcome.FAILED]
    if failed:
        lead = f"{said}, and {', '.join(failed)} failed: nothing shows it dead"
        return Verdict(VerdictStatus.UNKNOWN, lead, to_prove=to_prove)
    return Verdict(VerdictStatus.UNVERIFIED, said, to_prove=to_prove)


def _admitted(
    revoker: Revoker, credential: Credential, attempt: ProbeAttempt, results: Sequence[ActionResult]
) -> ProbeAttempt:
    try:
        return revoker.admit(credential, attempt, results)
    except Exception:
        log.exception("unexpected error judging a probe of %s", credential.key)
        return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, f"{attempt.evidence} (could not be judged)")


def settle(
    revoker: Revoker,
    credential: Credential,
    materials: Sequence[Material],
    controls: Sequence[Control],
    results: Sequence[ActionResult],
    *,
    deadline_s: float,
    interval_s: float,
) -> Verdict:
    """Probe every unblocked material until its rejection has held for the settle window,
    or the deadline passes; each material's verdict, the worst one for the credential."""
    started = time.monotonic()
    tracks = [Track(max(revoker.settle_s, 0.0)) for _ in materials]
    pending = [i for i, c in enumerate(controls) if not c.blocked]
    attempts, wait_s, elapsed = 0, interval_s, 0.0
    while pending:
        for i in pending:
            probe = revoker.alternative_probe if controls[i].alternative else revoker.probe
            answer = safely(revoker, probe, credential, materials[i])
            tracks[i].see(
                time.monotonic() - started, _admitted(revoker, credential, answer, results)
            )
            attempts += 1
        pending = [i for i in pending if not tracks[i].settled]
        elapsed = time.monotonic() - started
        if not pending or elapsed >= deadline_s:
            break
        pause = min(wait_s, deadline_s - elapsed)
        for i in pending:
            due = tracks[i].pause(elapsed, interval_s)
            pause = pause if due is None else min(pause, due)
        time.sleep(max(pause, 0.0))
        wait_s = min(wait_s * 1.5, 10.0)
    verdicts = [
        blocked(revoker, credential, c.said, results)
        if c.blocked
        else tracks[i].verdict(elapsed, deadline_s, c.said)
        for i, c in enumerate(controls)
    ]
    worst = min(verdicts, key=lambda v: RANK.index(v.status))
    held = [t.since for t in tracks if t.settled and t.since is not None]
    return Verdict(
        worst.status,
        "; ".join(dict.fromkeys(v.evidence for v in verdicts)),
        attempts,
        elapsed,
        "; ".join(dict.fromkeys(v.to_prove for v in verdicts if v.to_prove)),
        converged_s=max(held) if held and worst.status is VerdictStatus.DEAD else None,
        flaps=sum(len(t.flaps) for t in tracks),
    )


def prove_dead(
    revoker: Revoker,
    credential: Credential,
    materials: Sequence[Material],
    *,
    deadline_s: float,
    interval_s: float,
    controls: Sequence[Control] = (),
    results: Sequence[ActionResult] = (),
) -> Verdict:
    """`dead` only when every probe saw an allow-listed rejection that the baseline did not
    already show and that held over the settle window; without material, the read-back."""
    if not materials:
        try:
            return revoker.read_back(credential)
        except KillSwitchError as exc:
            return Verdict(VerdictStatus.UNKNOWN, f"read-back failed: {exc.code}: {exc.message}")
    # Each material has its control; missing ones repeat the last (one late baseline stands
    # for all of its credential's), or say none was taken.
    last = controls[-1] if controls else NO_BASELINE
    controls = [*controls, *[last] * (len(materials) - len(controls))]
    return settle(
        revoker,
        credential,
        materials,
        controls[: len(materials)],
        results,
        deadline_s=deadline_s,
        interval_s=interval_s,
    )


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
    attempts, wait_s = 0, interval_s
    while True:
        still = []
        for material in pending:
            attempt = safely(revoker, revoker.probe, credential, material)
            attempts += 1
            final[id(material)] = attempt
            if attempt.outcome is not until:
                still.append(material)
        pending = still
        elapsed = time.monotonic() - started
        if not pending or elapsed >= deadline_s:
            return [final[id(m)] for m in materials], attempts, elapsed
        time.sleep(min(wait_s, max(deadline_s - elapsed, 0.0)))
        wait_s = min(wait_s * 1.5, 10.0)


def check_alive(
    revoker: Revoker,
    credential: Credential,
    materials: Sequence[Material],
    *,
    deadline_s: float,
    interval_s: float,
) -> Verdict:
    """The inverse proof (untouched agents, restores): `alive` when every probe authenticates,
    `dead` when one is rejected, `unknown` when the provider never said either."""
    finals, attempts, elapsed = poll(
        revoker,
        credential,
        materials,
        until=ProbeOutcome.ACCEPTED,
        deadline_s=deadline_s,
        interval_s=interval_s,
    )
    outcomes = {a.outcome for a in finals}
    if outcomes == {ProbeOutcome.ACCEPTED}:
        status = VerdictStatus.ALIVE
    elif ProbeOutcome.REJECTED in outcomes:
        status = VerdictStatus.DEAD
    else:
        status = VerdictStatus.UNKNOWN
    evidence = "; ".join(dict.fromkeys(a.evidence for a in finals)) or "no probe material"
    return Verdict(status, evidence, attempts, elapsed)
