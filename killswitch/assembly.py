"""The report of a run: every planned credential with the actions that were its and its
verdict; the agent's new state; the run closed in the ledger and the chain checked."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace

from killswitch import progress
from killswitch.models import (
    AgentStatus,
    ContainmentReport,
    Credential,
    CredentialReport,
    Plan,
    ProviderOutcome,
    ProviderTiming,
    Timings,
    UntouchedCheck,
    Verb,
    Verdict,
    VerdictStatus,
    belongs,
)
from killswitch.plans import Plans
from killswitch.recorder import Recorder
from killswitch.request import Mode, Request
from killswitch.runtime import Runtime

log = logging.getLogger(__name__)


def converged(verdicts: Sequence[tuple[Credential, Verdict]]) -> tuple[float | None, int]:
    """A provider's convergence: its slowest proven credential's, and every flap seen."""
    times = [v.converged_s for _, v in verdicts if v.converged_s is not None]
    return (max(times) if times else None), sum(v.flaps for _, v in verdicts)


def unsearched_rows(plan: Plan) -> tuple[CredentialReport, ...]:
    """A provider whose discovery failed: each credential known there is `unknown` (neither
    contained nor probed), and with none known the provider itself is one `unknown` row — the
    report never hides what could not be searched."""
    rows: list[CredentialReport] = []
    for u in plan.unsearched:
        again = f"run the command again once {u.provider} answers"
        for c in u.known:
            rows.append(
                CredentialReport(
                    c,
                    (),
                    Verdict(
                        VerdictStatus.UNKNOWN,
                        f"{u.provider} {u.reason}: not contained, not probed",
                        to_prove=again,
                    ),
                )
            )
        if not u.known:
            anything = Credential(
                u.provider, f"{u.provider}.*", "(could not be searched)", "", plan.agent.id
            )
            rows.append(
                CredentialReport(
                    anything,
                    (),
                    Verdict(
                        VerdictStatus.UNKNOWN,
                        f"{u.provider} {u.reason}; nothing is known of the agent's credentials "
                        "there (neither the inventory nor an earlier discovery names any)",
                        to_prove=again,
                    ),
                )
            )
    return tuple(rows)


def assemble(
    runtime: Runtime,
    request: Request,
    plan: Plan,
    outcomes: Sequence[ProviderOutcome],
    *,
    started: float,
    plan_s: float,
    untouched: Sequence[UntouchedCheck] = (),
    late: Sequence[Credential] = (),
    plan_age_s: float = 0.0,
) -> ContainmentReport:
    """Assemble the report, mark the agent, close the run in the ledger and verify the chain.
    `late`: credentials that appeared after the plan was made — named, never contained."""
    dry = request.mode is Mode.DRY_RUN
    order = {a.key: i for i, a in enumerate(plan.actions)}
    results = sorted(
        (r for o in outcomes for r in o.results), key=lambda r: order.get(r.action.key, len(order))
    )
    verdicts = {c.key: v for o in outcomes for c, v in o.verdicts}
    credentials = (
        ()
        if dry
        else tuple(
            CredentialReport(
                c,
                tuple(r for r in results if belongs(r.action, c)),
                verdicts.get(c.key, Verdict(VerdictStatus.UNKNOWN, "provider step did not run")),
            )
            for c in plan.credentials
        )
        + tuple(
            CredentialReport(
                c,
                (),
                Verdict(
                    VerdictStatus.UNKNOWN,
                    f"appeared after the plan was made ({plan_age_s:.0f}s before the run): "
                    "not in the plan, not contained",
                    to_prove="run the command again: a new plan includes it",
                ),
            )
            for c in late
        )
        + unsearched_rows(plan)
    )
    claimed = {id(r) for c in credentials for r in c.actions}
    grants = tuple(r for r in results if r.action.verb is Verb.DETACH)
    others = tuple(r for r in results if r.action.verb is not Verb.DETACH and id(r) not in claimed)
    if not dry and plan.actions:
        # A retired agent stays retired when a sweep contains what it left behind.
        retired = request.destroys or plan.agent.status is AgentStatus.DECOMMISSIONED
        status = AgentStatus.DECOMMISSIONED if retired else AgentStatus.CONTAINED
        runtime.inventory.set_status(plan.agent.id, status)
    report = ContainmentReport(
        run_id=request.run_id,
        agent=runtime.inventory.get_agent(plan.agent.id) or plan.agent,
        reason=request.reason,
        actor=request.actor,
        trigger=request.trigger,
        mode=str(request.mode),
        target=plan.target,
        plan=plan,
        credentials=credentials,
        grants_detached=grants,
        other_actions=others,
        untouched_agents_checked=tuple(untouched),
        errors=plan.errors,
        workflow=str(request.workflow),
        timings=Timings(
            plan_s=plan_s,
            contain_s=max((o.contain_s for o in outcomes), default=0.0),
            verify_s=max((o.verify_s for o in outcomes), default=0.0),
            total_s=time.monotonic() - started,
            proven_s=max((o.proven - started for o in outcomes), default=0.0),
            providers=tuple(
                ProviderTiming(
                    o.provider,
                    o.started - started,
                    o.contain_s,
                    o.verify_s,
                    o.finished - started,
                    *converged(o.verdicts),
                )
                for o in outcomes
            ),
        ),
    )
    if not dry:
        for late_one in credentials[len(plan.credentials) :]:
            Recorder(runtime, request).verdict(late_one.credential, late_one.verdict)
        Recorder(runtime, request).write(
            str(request.workflow),
            "proven" if report.ok else "not-proven",
            summary={s.value: report.count(s) for s in VerdictStatus},
            errors=list(report.errors),
            total_s=round(report.timings.total_s, 4),
        )
        Plans(runtime.inventory).finish(request.run_id)
    if dry:
        return replace(report, ledger_verified=runtime.ledger.verify_new().ok)
    # The run's closing entry is in: checkpoint the head outside the database (a rollback
    # of this run's entries is then visible to `audit verify`).
    anchored = runtime.ledger.anchor()
    broken = any(name == "ledger" for name, _ in anchored.failed)
    for name, problem in anchored.failed:
        log.warning("ledger anchor %s failed: %s", name, problem)
        progress.emit("ledger", f"anchor {name} failed: {problem}", run_id=request.run_id)
    return replace(report, ledger_verified=not broken)
