"""Classify every NHI for the sweep: zombie, orphan, stale, expired, long-lived, reused —
each with the OWASP Non-Human Identities Top 10 (2025) item it falls under and a risk score
(likelihood × impact, 1–5 each) that orders the report.

Pure functions over what enumeration recorded and what the inventory declares: no I/O.
Only NHIs that still work are findings (an inactive key or a quarantined principal is
already refused by its provider).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from killswitch.models import Agent, AgentStatus, Nhi


class Category(StrEnum):
    ZOMBIE = "zombie"
    ORPHAN = "orphan"
    EXPIRED = "expired"
    REUSED = "reused"
    STALE = "stale"
    LONG_LIVED = "long-lived"


OWASP = {
    Category.ZOMBIE: "NHI1:2025 Improper Offboarding",
    Category.ORPHAN: "NHI1:2025 Improper Offboarding",
    Category.EXPIRED: "NHI7:2025 Long-Lived Secrets",
    Category.LONG_LIVED: "NHI7:2025 Long-Lived Secrets",
    Category.REUSED: "NHI9:2025 NHI Reuse",
    Category.STALE: "NHI7:2025 Long-Lived Secrets",
}
# How likely an NHI of each category is to be abused (1–5), before age.
_LIKELIHOOD = {
    Category.ZOMBIE: 4,
    Category.REUSED: 4,
    Category.ORPHAN: 3,
    Category.EXPIRED: 3,
    Category.STALE: 2,
    Category.LONG_LIVED: 2,
}


def _infrastructure() -> frozenset[str]:
    """Providers whose credentials reach infrastructure rather than one SaaS account."""
    from revokers.registry import plugins

    return frozenset(p.name for p in plugins() if p.infrastructure)


@dataclass(frozen=True, slots=True)
class Thresholds:
    now: datetime
    stale_days: int
    rotation_days: int


@dataclass(frozen=True, slots=True)
class Finding:
    """One NHI that needs attention: why, under which OWASP item, and how risky."""

    nhi: Nhi
    categories: tuple[Category, ...]
    agent_ids: tuple[str, ...]
    owner: str
    reasons: tuple[str, ...]
    likelihood: int
    impact: int

    @property
    def score(self) -> int:
        return self.likelihood * self.impact

    @property
    def category(self) -> Category:
        """The leading category (the list is ordered by likelihood)."""
        return self.categories[0]

    @property
    def owasp(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(OWASP[c] for c in self.categories))

    @property
    def protected(self) -> bool:
        return self.nhi.protected

    @property
    def agent_id(self) -> str:
        return self.agent_ids[0] if len(self.agent_ids) == 1 else ""


def classify(
    nhis: Iterable[Nhi],
    agents: Mapping[str, Agent],
    declared_by: Mapping[tuple[str, str], Sequence[str]],
    limits: Thresholds,
    protected_agents: Iterable[str] = (),
) -> list[Finding]:
    """Every finding, riskiest first. `declared_by` maps (kind, ref) to the agents whose
    inventory entry declares the credential."""
    protected = set(protected_agents)
    findings = [
        f
        for nhi in nhis
        if nhi.works and (f := _classify(nhi, agents, declared_by, limits, protected)) is not None
    ]
    return sorted(findings, key=lambda f: (-f.score, f.nhi.provider, f.nhi.kind, f.nhi.ref))


def _classify(
    nhi: Nhi,
    agents: Mapping[str, Agent],
    declared_by: Mapping[tuple[str, str], Sequence[str]],
    limits: Thresholds,
    protected: set[str],
) -> Finding | None:
    claimed = list(dict.fromkeys([*declared_by.get((nhi.kind, nhi.ref), ()), nhi.agent_tag]))
    claimed = [a for a in claimed if a]
    known = [agents[a] for a in claimed if a in agents]
    found: dict[Category, str] = {}
    if not claimed:
        found[Category.ORPHAN] = "no agent: no tag and no inventory entry names it"
    elif not known:
        found[Category.ORPHAN] = f"names agent {', '.join(claimed)}, unknown to the inventory"
    elif not any(a.owner for a in known):
        found[Category.ORPHAN] = f"agent {known[0].id} has no owner"
    if len(claimed) > 1:
        found[Category.REUSED] = f"shared by agents {', '.join(claimed)}"
    retired = [a.id for a in known if a.status is AgentStatus.DECOMMISSIONED]
    if retired:
        found[Category.ZOMBIE] = f"agent {', '.join(retired)} is decommissioned; it still works"
    lapsed = [a for a in known if a.expires_at is not None and a.expires_at <= limits.now]
    if lapsed:
        found[Category.EXPIRED] = (
            f"agent {lapsed[0].id} expired {lapsed[0].expires_at:%Y-%m-%d}; it still works"
        )
    elif nhi.expires_at is not None and nhi.expires_at <= limits.now:
        found[Category.EXPIRED] = f"expired {nhi.expires_at:%Y-%m-%d}; it still works"
    used = nhi.last_used_at or nhi.created_at
    if used is not None and (limits.now - used).days >= limits.stale_days:
        never = " (never used)" if nhi.last_used_at is None else ""
        found[Category.STALE] = f"not used for {(limits.now - used).days} days{never}"
    if nhi.created_at is not None and (limits.now - nhi.created_at).days >= limits.rotation_days:
        found[Category.LONG_LIVED] = f"{(limits.now - nhi.created_at).days} days old, never rotated"
    if not found:
        return None
    if any(a in protected for a in claimed):
        nhi = replace(nhi, protected=True)
    ordered = sorted(found, key=lambda c: -_LIKELIHOOD[c])
    age_days = (limits.now - nhi.created_at).days if nhi.created_at else 0
    likelihood = min(5, _LIKELIHOOD[ordered[0]] + (1 if age_days > 365 else 0))
    impact = 5 if nhi.privileged else 3 if nhi.provider in _infrastructure() else 2
    owner = next((a.owner for a in known if a.owner), "")
    return Finding(
        nhi=nhi,
        categories=tuple(ordered),
        agent_ids=tuple(claimed),
        owner=owner,
        reasons=tuple(found[c] for c in ordered),
        likelihood=likelihood,
        impact=impact,
    )
