"""The domain: agents, their credentials and grants, plans, verdicts and reports.

Plain frozen dataclasses: values in here are already valid (pydantic parses at the edges).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class AgentStatus(StrEnum):
    ACTIVE = "active"
    CONTAINED = "contained"
    DECOMMISSIONED = "decommissioned"


@dataclass(frozen=True, slots=True)
class Agent:
    """An AI agent identity as the inventory knows it."""

    id: str
    owner: str
    status: AgentStatus
    purpose: str = ""
    environment: str = ""
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CredentialRef:
    """A credential declared in the inventory by reference (never the secret)."""

    provider: str
    kind: str
    ref: str


@dataclass(frozen=True, slots=True)
class Credential:
    """One non-human identity the agent can authenticate with, e.g. `aws.access-key`."""

    provider: str
    kind: str
    ref: str
    principal: str
    agent_id: str
    state: str = ""
    created_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.ref}"


@dataclass(frozen=True, slots=True)
class Grant:
    """What gives the agent power beyond its credentials: a group, a policy, a role assignment."""

    provider: str
    kind: str
    principal: str
    ref: str
    agent_id: str


class Verb(StrEnum):
    CONTAIN = "contain"
    DETACH = "detach"
    DESTROY = "destroy"


@dataclass(frozen=True, slots=True)
class Action:
    """One (target, operation) pair of a plan; `in_place` when discovery saw it already done."""

    provider: str
    verb: Verb
    operation: str
    principal: str
    target: str
    reversible: bool
    in_place: bool = False
    params: Mapping[str, str] = field(default_factory=dict)
    # Actions of one phase run in parallel; phases run in order (destroy: keys before users).
    phase: int = 0

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.operation}:{self.principal}:{self.target}"

    def describe(self) -> str:
        return f"{self.operation} {self.target}" + ("" if self.reversible else " (irreversible)")


def belongs(action: Action, credential: Credential) -> bool:
    """An action is a credential's when it targets the credential itself, its principal as a
    whole (a deny-all, a disabled entity), or a prefix it lives under (a lease prefix)."""
    target = action.target
    return (
        target == credential.ref
        or (action.verb is Verb.CONTAIN and target == credential.principal)
        or (target.endswith("/") and credential.ref.startswith(target))
    )


@dataclass(frozen=True, slots=True)
class Unsearched:
    """A provider whose discovery failed: why, and the agent's credentials known there from
    the inventory or an earlier discovery (none of them contained: each reported unknown)."""

    provider: str
    reason: str
    known: tuple[Credential, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    """The exact list of actions a run will perform: the blast-radius preview."""

    run_id: str
    agent: Agent
    target: str
    created_at: datetime
    credentials: tuple[Credential, ...]
    grants: tuple[Grant, ...]
    actions: tuple[Action, ...]
    protected_skipped: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    unsearched: tuple[Unsearched, ...] = ()

    @property
    def providers(self) -> tuple[str, ...]:
        seen = dict.fromkeys(
            [c.provider for c in self.credentials] + [a.provider for a in self.actions]
        )
        return tuple(seen)

    def for_provider(self, provider: str) -> Plan:
        return Plan(
            run_id=self.run_id,
            agent=self.agent,
            target=self.target,
            created_at=self.created_at,
            credentials=tuple(c for c in self.credentials if c.provider == provider),
            grants=tuple(g for g in self.grants if g.provider == provider),
            actions=tuple(a for a in self.actions if a.provider == provider),
            protected_skipped=self.protected_skipped,
        )


class Outcome(StrEnum):
    DONE = "done"
    ALREADY = "already"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What performing one action did; `undo` holds what a restore needs (never secrets)."""

    action: Action
    outcome: Outcome
    detail: str = ""
    undo: Mapping[str, Any] | None = None
    elapsed_s: float = 0.0
    attempts: int = 1  # calls made, retries of transient errors included


class VerdictStatus(StrEnum):
    DEAD = "dead"
    ALIVE = "alive"
    UNVERIFIED = "unverified"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What we know about one credential: `dead` only when a live probe saw a rejection."""

    status: VerdictStatus
    evidence: str
    attempts: int = 0
    elapsed_s: float = 0.0
    to_prove: str = ""
    # Seconds from the first probe after containment to the rejection that held (`dead`
    # only); acceptances that interrupted a run of rejections (propagation flaps).
    converged_s: float | None = None
    flaps: int = 0


@dataclass(frozen=True, slots=True)
class UndoRecord:
    """A reversible change a containment made, kept so `restore` can reverse exactly it."""

    id: int
    run_id: str
    agent_id: str
    action: Action
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CredentialReport:
    credential: Credential
    actions: tuple[ActionResult, ...]
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class ProviderOutcome:
    """One provider's share of a run: every action result and every verdict."""

    provider: str
    results: tuple[ActionResult, ...]
    verdicts: tuple[tuple[Credential, Verdict], ...]
    contain_s: float
    verify_s: float
    started: float = 0.0
    finished: float = 0.0
    proven: float = 0.0  # when the last verdict came in (grants may still be coming off)


@dataclass(frozen=True, slots=True)
class ProviderTiming:
    """When one provider's step ran, in seconds from the start of the run."""

    provider: str
    start_s: float
    contain_s: float
    verify_s: float
    end_s: float
    converged_s: float | None = None  # its slowest proven credential's `converged_s`
    flaps: int = 0


@dataclass(frozen=True, slots=True)
class UntouchedCheck:
    """A credential of another agent probed after the run to show it still works."""

    agent_id: str
    credential: Credential
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class Timings:
    plan_s: float = 0.0
    contain_s: float = 0.0
    verify_s: float = 0.0
    total_s: float = 0.0
    # Time to containment: from the start to the last credential's verdict.
    proven_s: float = 0.0
    providers: tuple[ProviderTiming, ...] = ()


@dataclass(frozen=True, slots=True)
class ContainmentReport:
    """The outcome of a containment (or its dry run): every credential with its verdict."""

    run_id: str
    agent: Agent
    reason: str
    actor: str
    trigger: str
    mode: str
    target: str
    plan: Plan
    credentials: tuple[CredentialReport, ...]
    grants_detached: tuple[ActionResult, ...]
    other_actions: tuple[ActionResult, ...]
    timings: Timings
    untouched_agents_checked: tuple[UntouchedCheck, ...] = ()
    ledger_verified: bool | None = None
    errors: tuple[str, ...] = ()
    workflow: str = "contain"

    @property
    def dry_run(self) -> bool:
        return self.mode == "dry-run"

    @property
    def ok(self) -> bool:
        """True only when no credential is alive or unknown and nothing failed."""
        bad = {VerdictStatus.ALIVE, VerdictStatus.UNKNOWN}
        return (
            not self.errors
            and all(c.verdict.status not in bad for c in self.credentials)
            and all(r.outcome is not Outcome.FAILED for r in self.grants_detached)
            and all(r.outcome is not Outcome.FAILED for r in self.other_actions)
            and all(u.verdict.status is VerdictStatus.ALIVE for u in self.untouched_agents_checked)
        )

    def count(self, status: VerdictStatus) -> int:
        return sum(1 for c in self.credentials if c.verdict.status is status)


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """The outcome of undoing a containment: what was reversed and whether keys work again."""

    run_id: str
    agent: Agent
    reason: str
    actor: str
    target: str
    results: tuple[ActionResult, ...]
    refused: tuple[str, ...]
    checks: tuple[tuple[Credential, Verdict], ...]
    total_s: float
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return (
            not self.errors
            and all(r.outcome is not Outcome.FAILED for r in self.results)
            and all(v.status is VerdictStatus.ALIVE for _, v in self.checks)
        )


@dataclass(frozen=True, slots=True)
class Nhi:
    """One non-human identity a provider holds, as an enumeration saw it (never the secret).

    `agent_tag` is the agent its tag, metadata or name convention points at ("" when none);
    `works` is False when the provider already refuses it (an inactive key, a quarantined
    principal); `privileged` when it carries administrator-like power; `protected` when the
    provider's settings protect it (reported, never acted on)."""

    provider: str
    kind: str
    ref: str
    principal: str
    agent_tag: str = ""
    works: bool = True
    privileged: bool = False
    protected: bool = False
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    detail: str = ""

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.ref}"
