"""What a sweep is asked to do, each decision it takes, and its report."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from killswitch.models import ContainmentReport
from killswitch.request import Request
from killswitch.sightings import Recorded
from killswitch.sweep.classify import Finding

Contain = Callable[[Request], ContainmentReport]


@dataclass(frozen=True, slots=True)
class SweepRequest:
    actor: str
    trigger: str = "cli"
    # None: a dry run until one sweep has been recorded (first runs never act), then act.
    dry_run: bool | None = None
    providers: tuple[str, ...] = ()
    # Only findings of these agents are acted on and reported (empty: every NHI).
    agents: tuple[str, ...] = ()
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # The sweep's clock: grace deadlines, ages and expiry are judged as of this instant
    # (None: the wall clock when the run starts). A sweep as of a later time sees the grace
    # periods that will have passed by then; the deadlines it stores are relative to it.
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One decision the sweep took (or, in a dry run, would take)."""

    case: str
    action: str  # notify · wait · contain · destroy · report · protected · close
    agent_id: str
    category: str
    detail: str
    ok: bool = True
    containment_run: str = ""


@dataclass(frozen=True, slots=True)
class SweepReport:
    run_id: str
    dry_run: bool
    first_run: bool
    discovered: tuple[Recorded, ...]
    errors: tuple[str, ...]
    findings: tuple[Finding, ...]
    steps: tuple[Step, ...]
    started_at: datetime
    total_s: float

    @property
    def ok(self) -> bool:
        """False when a provider could not be enumerated or an action failed or was not
        proven; findings alone are not a failure (they are the sweep's output)."""
        return not self.errors and all(s.ok for s in self.steps)
