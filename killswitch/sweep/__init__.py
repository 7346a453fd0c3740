"""The zombie sweep: enumerate every NHI, classify, and act per policy — notify the owner,
wait a grace period, contain, then destroy after a second grace period.

State (notified at, grace deadlines, contained at) lives in the inventory's database, so a
re-run after a crash continues where it stopped: nobody is notified twice and no grace
period is skipped. Grace starts only once a notice was delivered. Every decision goes into
the ledger. Protected identities are reported, never acted on.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from killswitch import progress
from killswitch.models import Nhi
from killswitch.runtime import Runtime
from killswitch.sightings import Sightings
from killswitch.sweep.classify import Category, Thresholds, classify
from killswitch.sweep.discovery import declared_alive, discover
from killswitch.sweep.models import Contain, Step, SweepReport, SweepRequest
from killswitch.sweep.policy import Acting

__all__ = ["Contain", "Step", "SweepReport", "SweepRequest", "declared_alive", "discover", "run"]


def run(runtime: Runtime, request: SweepRequest, contain: Contain) -> SweepReport:
    """Discover, classify, act. `contain` starts a containment (the flow, or break-glass).
    Every decision is taken as of `request.at` (default: now)."""
    started, clock = request.at or datetime.now(UTC), time.monotonic()
    sightings = Sightings(runtime.inventory)
    first = sightings.sweeps() == 0
    dry_run = first if request.dry_run is None else request.dry_run
    recorded, errors = discover(runtime, request.run_id, request.providers)
    config = runtime.settings.sweep
    agents = {a.id: a for a in runtime.inventory.list_agents()}
    nhis = _chain(
        (n for n in sightings.nhis() if not request.providers or n.provider in request.providers),
        declared_alive(runtime, request.providers, request.agents, now=started),
    )
    findings = classify(
        nhis,
        agents,
        runtime.inventory.declared_by(),
        Thresholds(started, config.stale_days, config.rotation_days),
        runtime.settings.protected_agents,
    )
    if request.agents:
        findings = [f for f in findings if set(f.agent_ids) & set(request.agents)]
    progress.emit("classify", f"{len(findings)} finding(s)", run_id=request.run_id)
    acting = Acting(runtime, request, contain, dry_run, sightings, now=started)
    steps = acting.act(findings)
    if not dry_run or first:
        sightings.record_sweep(request.run_id, dry_run=dry_run, findings=len(findings))
    report = SweepReport(
        run_id=request.run_id,
        dry_run=dry_run,
        first_run=first,
        discovered=tuple(recorded),
        errors=tuple(errors),
        findings=tuple(findings),
        steps=tuple(steps),
        started_at=started,
        total_s=time.monotonic() - clock,
    )
    acting.write(
        "sweep",
        "ok" if report.ok else "failed",
        dry_run=dry_run,
        findings=len(findings),
        by_category={c.value: sum(1 for f in findings if c in f.categories) for c in Category},
        steps={a: sum(1 for s in steps if s.action == a) for a in {s.action for s in steps}},
        errors=list(errors),
    )
    return report


def _chain(*streams: Iterable[Nhi]) -> Iterator[Nhi]:
    for stream in streams:
        yield from stream
