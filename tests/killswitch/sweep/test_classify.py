"""Classification is a pure function: each category, its OWASP item, and the risk order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from killswitch.models import Agent, AgentStatus, Nhi
from killswitch.sweep.classify import Category, Thresholds, classify

NOW = datetime(2026, 11, 23, tzinfo=UTC)
LIMITS = Thresholds(NOW, stale_days=90, rotation_days=180)
AGENTS = {
    "active": Agent("active", "team-a", AgentStatus.ACTIVE),
    "retired": Agent("retired", "team-b", AgentStatus.DECOMMISSIONED),
    "ownerless": Agent("ownerless", "", AgentStatus.ACTIVE),
    "lapsed": Agent("lapsed", "team-c", AgentStatus.ACTIVE, expires_at=NOW - timedelta(days=1)),
    "breakglass": Agent("breakglass", "sec", AgentStatus.DECOMMISSIONED),
}


def nhi(
    ref: str, tag: str = "", *, days_old: int = 1, used_days: int | None = 0, **kw: object
) -> Nhi:
    used = NOW - timedelta(days=used_days) if used_days is not None else None
    return Nhi(
        "aws",
        "aws.access-key",
        ref,
        f"user/{ref}",
        tag,
        created_at=NOW - timedelta(days=days_old),
        last_used_at=used,
        **kw,  # type: ignore[arg-type]
    )


def categories(
    *nhis: Nhi, declared: dict[tuple[str, str], list[str]] | None = None
) -> dict[str, list[str]]:
    found = classify(nhis, AGENTS, declared or {}, LIMITS, protected_agents=("breakglass",))
    return {f.nhi.ref: [c.value for c in f.categories] for f in found}


def test_a_healthy_credential_is_no_finding() -> None:
    assert categories(nhi("ok", "active")) == {}


def test_each_category_with_its_owasp_item() -> None:
    found = classify(
        [
            nhi("zombie", "retired"),
            nhi("ghost", "nobody-knows"),
            nhi("untagged"),
            nhi("no-owner", "ownerless"),
            nhi("expired", "lapsed"),
            nhi("stale", "active", days_old=120, used_days=100),
            nhi("never-used", "active", days_old=120, used_days=None),
            nhi("old", "active", days_old=400, used_days=1),
            nhi("shared", "active"),
        ],
        AGENTS,
        {("aws.access-key", "shared"): ["lapsed"]},
        LIMITS,
    )
    by_ref = {f.nhi.ref: f for f in found}
    assert by_ref["zombie"].category is Category.ZOMBIE
    assert by_ref["zombie"].owasp == ("NHI1:2025 Improper Offboarding",)
    for ref in ("ghost", "untagged", "no-owner"):
        assert by_ref[ref].category is Category.ORPHAN, ref
    assert by_ref["expired"].category is Category.EXPIRED
    assert by_ref["expired"].owasp == ("NHI7:2025 Long-Lived Secrets",)
    assert by_ref["stale"].categories == (Category.STALE,)
    assert "never used" in by_ref["never-used"].reasons[0]
    assert by_ref["old"].categories == (Category.LONG_LIVED,)
    assert Category.REUSED in by_ref["shared"].categories
    assert "NHI9:2025 NHI Reuse" in by_ref["shared"].owasp
    assert "ok" not in by_ref


def test_what_no_longer_works_is_no_finding() -> None:
    assert categories(nhi("inactive", "retired", works=False)) == {}


def test_riskiest_first_privilege_and_age_raise_the_score() -> None:
    found = classify(
        [
            nhi("plain", "retired"),
            nhi("admin", "retired", privileged=True),
            nhi("ancient", "retired", days_old=800),
        ],
        AGENTS,
        {},
        LIMITS,
    )
    assert [f.nhi.ref for f in found] == ["admin", "ancient", "plain"]
    assert found[0].impact == 5 and found[0].likelihood == 4 and found[0].score == 20
    assert found[1].likelihood == 5  # older than a year
    assert all(1 <= f.likelihood <= 5 and 1 <= f.impact <= 5 for f in found)


def test_protected_agents_and_identities_are_reported_as_protected() -> None:
    found = classify(
        [nhi("bg", "breakglass"), nhi("root", protected=True)],
        AGENTS,
        {},
        LIMITS,
        protected_agents=("breakglass",),
    )
    assert {f.nhi.ref: f.protected for f in found} == {"bg": True, "root": True}
