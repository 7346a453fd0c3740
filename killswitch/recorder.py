"""A run's ledger entries and undo records, written as results arrive, with progress events."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

from killswitch import carried, progress
from killswitch.errors import RefusedError
from killswitch.ledger import Entry
from killswitch.models import Action, ActionResult, Credential, Outcome, Verb, Verdict
from killswitch.request import Request
from killswitch.runtime import Runtime
from killswitch.verdicts import Control

# The undo data of a change made by a run that did not live to record what it did.
IN_FLIGHT = "in_flight"


class Recorder:
    """Everything one run writes to the ledger goes through here, under the run's id."""

    def __init__(self, runtime: Runtime, request: Request) -> None:
        self.runtime = runtime
        self.request = request
        self._intents: dict[str, int] = {}
        self._lock = threading.Lock()

    def intent(self, action: Action) -> None:
        """Before a contain or detach is made: an undo record marked in flight, so that a run
        killed while the change is under way leaves restore something to reverse (or to say
        why it cannot); `result` completes it."""
        if action.verb not in (Verb.CONTAIN, Verb.DETACH):
            return
        record_id = self.runtime.inventory.record_undo(
            run_id=self.request.run_id,
            agent_id=self.request.agent_id,
            action=action,
            data={IN_FLIGHT: True},
        )
        with self._lock:
            self._intents[action.key] = record_id

    def entry(self, action: str, outcome: str, **kw: object) -> Entry:
        r = self.request
        return Entry(
            run_id=r.run_id,
            actor=r.actor,
            trigger=r.trigger,
            agent=r.agent_id,
            action=action,
            outcome=outcome,
            provider=str(kw.pop("provider", "")),
            credential=str(kw.pop("credential", "")),
            detail=kw,
        )

    def write(self, action: str, outcome: str, **kw: object) -> None:
        self.runtime.ledger.append(self.entry(action, outcome, **kw))

    def result(self, result: ActionResult) -> None:
        a = result.action
        undo_id = None
        with self._lock:
            intended = self._intents.pop(a.key, None)
        undo = result.undo if result.outcome is Outcome.DONE else None
        if intended is not None:
            self.runtime.inventory.settle_undo(intended, undo)
            undo_id = intended if undo is not None else None
        elif undo is not None:
            undo_id = self.runtime.inventory.record_undo(
                run_id=self.request.run_id,
                agent_id=self.request.agent_id,
                action=a,
                data=undo,
            )
        self.write(
            a.operation,
            result.outcome.value,
            provider=a.provider,
            credential=a.target,
            verb=a.verb.value,
            principal=a.principal,
            detail=result.detail,
            reversible=a.reversible,
            undo_record=undo_id,
            undo=dict(result.undo or {}),
            elapsed_s=round(result.elapsed_s, 4),
            attempts=result.attempts,
        )
        progress.emit(
            "action",
            f"{a.operation} {a.target}: {result.outcome.value}",
            provider=a.provider,
            run_id=self.request.run_id,
            outcome=result.outcome.value,
        )

    def baselines(self, provider: str, controls: Mapping[str, Sequence[Control]]) -> None:
        """Once per provider, before its first change is sent: what each credential's
        baseline answered (by credential key, never material), so that a re-run after this
        run is killed can stand on it (killswitch/carried.py)."""
        self.write(
            carried.ACTION,
            carried.TAKEN,
            provider=provider,
            controls={key: carried.summary(found) for key, found in controls.items()},
        )

    def verdict(self, credential: Credential, verdict: Verdict) -> None:
        self.write(
            "probe",
            verdict.status.value,
            provider=credential.provider,
            credential=credential.ref,
            kind=credential.kind,
            evidence=verdict.evidence,
            attempts=verdict.attempts,
            probe_s=round(verdict.elapsed_s, 4),
            **(
                {}
                if verdict.converged_s is None
                else {"converged_s": round(verdict.converged_s, 4)}
            ),
            **({"flaps": verdict.flaps} if verdict.flaps else {}),
        )
        progress.emit(
            "verdict",
            f"{credential.kind} {credential.ref}: {verdict.status.value}",
            provider=credential.provider,
            run_id=self.request.run_id,
            verdict=verdict.status.value,
        )


def refuse(runtime: Runtime, request: Request, error: RefusedError, action: str) -> None:
    """Put a refusal in the ledger (who tried what, and why it was refused)."""
    Recorder(runtime, request).write(
        action,
        "refused",
        code=error.code,
        message=error.message,
        reason=request.reason,
        mode=str(request.mode),
    )
