"""The fleet's report: every credential of every agent with its verdict and evidence, read
back from the ledger (each agent's run may have run on any worker), and what was not proven."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from killswitch.errors import RefusedError
from killswitch.models import Plan, VerdictStatus
from killswitch.plans import Plans
from killswitch.request import Request
from killswitch.runtime import Runtime

NOT_OK = (VerdictStatus.ALIVE.value, VerdictStatus.UNKNOWN.value)


@dataclass(frozen=True, slots=True)
class Row:
    """One credential of one agent after the fleet's run."""

    agent_id: str
    provider: str
    kind: str
    ref: str
    verdict: str
    evidence: str


@dataclass(frozen=True, slots=True)
class AgentResult:
    """One agent's run: how it ended (`proven`, `not-proven`, `lost` …) and its rows."""

    agent_id: str
    run_id: str
    state: str
    rows: tuple[Row, ...]
    note: str = ""
    flow_run: str = ""
    worker: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "proven" and not any(r.verdict in NOT_OK for r in self.rows)

    def count(self, verdict: str) -> int:
        return sum(r.verdict == verdict for r in self.rows)


@dataclass(frozen=True, slots=True)
class Blast:
    """One provider's share of the fleet's plan."""

    provider: str
    agents: int
    credentials: int
    grants: int
    actions: int


@dataclass(frozen=True, slots=True)
class FleetReport:
    fleet_id: str
    reason: str
    mode: str
    agents: tuple[AgentResult, ...]
    blast: tuple[Blast, ...] = ()
    ledger_verified: bool = False
    skipped: tuple[str, ...] = field(default=())
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.agents) and all(a.ok for a in self.agents) and self.ledger_verified

    @property
    def not_proven(self) -> tuple[AgentResult, ...]:
        return tuple(a for a in self.agents if not a.ok)

    def count(self, verdict: str) -> int:
        return sum(a.count(verdict) for a in self.agents)


def blast_radius(plans: Sequence[Plan]) -> tuple[Blast, ...]:
    """Agents × credentials × grants × actions to take, per provider."""
    providers = dict.fromkeys(p for plan in plans for p in plan.providers)
    return tuple(
        Blast(
            provider=name,
            agents=sum(name in plan.providers for plan in plans),
            credentials=sum(c.provider == name for plan in plans for c in plan.credentials),
            grants=sum(g.provider == name for plan in plans for g in plan.grants),
            actions=sum(
                a.provider == name and not a.in_place for plan in plans for a in plan.actions
            ),
        )
        for name in providers
    )


def from_ledger(
    runtime: Runtime,
    plan: Plan,
    *,
    workflow: str = "contain",
    ended: str = "",
    flow_run: str = "",
) -> AgentResult:
    """One agent's result as the ledger has it: the last verdict of each credential its run
    probed; a planned credential without one is `unknown` (its run ended — `ended`, e.g.
    the flow run's state — before proving it), and a run without its closing entry is
    `lost`."""
    entries = list(runtime.ledger.rows(run_id=plan.run_id))
    verdicts: dict[tuple[str, str, str], tuple[str, str]] = {}
    closed = ""
    worker = ""
    for e in entries:
        detail = e.get("detail") or {}
        if e["action"] == "probe":
            key = (str(e["provider"]), str(detail.get("kind", "")), str(e["credential"]))
            verdicts[key] = (str(e["outcome"]), str(detail.get("evidence", "")))
        elif e["action"] == workflow and e["outcome"] in ("proven", "not-proven"):
            closed = str(e["outcome"])
        elif e["action"] == workflow and e["outcome"] == "started":
            worker = str(detail.get("worker") or f"pid {detail.get('pid', '?')}")
    why = f"its run ended {ended or 'without closing'} before proving it"
    rows: list[Row] = []
    seen: set[tuple[str, str, str]] = set()
    known = [*plan.credentials, *(c for u in plan.unsearched for c in u.known)]
    for c in known:
        key = (c.provider, c.kind, c.ref)
        seen.add(key)
        verdict, evidence = verdicts.get(key, (VerdictStatus.UNKNOWN.value, why))
        rows.append(Row(plan.agent.id, c.provider, c.kind, c.ref, verdict, evidence))
    for key, (verdict, evidence) in verdicts.items():
        if key not in seen:  # appeared after the plan, or a provider that was not searched
            rows.append(Row(plan.agent.id, key[0], key[1], key[2], verdict, evidence))
    state = closed or ("lost" if entries else "not-started")
    note = (
        "" if closed else f"run {plan.run_id[:12]} did not finish ({ended or 'no closing entry'})"
    )
    return AgentResult(plan.agent.id, plan.run_id, state, tuple(rows), note, flow_run, worker)


def summary_line(agents: Iterable[AgentResult]) -> str:
    """`3/4 proven; not proven: agent-x (lost)`."""
    agents = list(agents)
    bad = [a for a in agents if not a.ok]
    text = f"{len(agents) - len(bad)}/{len(agents)} agents proven"
    if bad:
        text += "; not proven: " + ", ".join(f"{a.agent_id} ({a.state})" for a in bad)
    return text


def load(runtime: Runtime, run_ids: list[str]) -> list[tuple[Request, Plan]]:
    """The kept plans, each for the same actor (a fleet is one person's request)."""
    kept = [Plans(runtime.inventory).load(r)[:2] for r in run_ids]
    actors = {request.actor for request, _ in kept}
    if len(actors) > 1:
        raise RefusedError("the fleet's plans were made by different actors")
    return kept


def report_of(
    runtime: Runtime,
    kept: list[tuple[Request, Plan]],
    fleet_id: str,
    results: list[AgentResult],
    *,
    mode: str,
    elapsed_s: float,
) -> FleetReport:
    """The fleet's one table, its blast radius, the ledger checked."""
    return FleetReport(
        fleet_id=fleet_id,
        reason=kept[0][0].reason if kept else "",
        mode=mode,
        agents=tuple(results),
        blast=blast_radius([plan for _, plan in kept]),
        ledger_verified=runtime.ledger.verify().ok,
        elapsed_s=elapsed_s,
    )
