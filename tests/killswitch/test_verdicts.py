"""Verdicts: a baseline before containment, an allow-listed rejection, held over the settle
window. Run end to end (plan, contain, prove, report) against the test-only `acme` provider,
whose stand-in can delay a revocation, flap once, refuse a probe before containment, or
answer a revoked token with words that are not on its allow-list."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from killswitch import pipeline
from killswitch.models import Agent, AgentStatus, ContainmentReport, Verdict, VerdictStatus
from killswitch.request import Mode, Request
from killswitch.runtime import Runtime
from killswitch.secrets import KeyringFile
from killswitch.settings import load_settings, settings_model
from revokers import registry
from tests.revokers.acme import stand_in


@pytest.fixture
def acme(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Acme registered (its one registration line) for the length of a test."""
    monkeypatch.setattr(registry, "PACKAGES", (*registry.PACKAGES, "tests.revokers.acme"))
    registry.plugins.cache_clear()
    settings_model.cache_clear()
    yield
    registry.plugins.cache_clear()
    settings_model.cache_clear()


def contain(
    tmp_path: Path,
    tokens: dict[str, dict[str, Any]],
    *,
    deadline_s: float = 3.0,
    action_deadline_s: float = 5.0,
    **acme: Any,
) -> tuple[ContainmentReport, dict[str, Verdict]]:
    """Mint `tokens` (id → stand-in quirks) for a fresh agent, contain it, return the verdicts."""
    agent = f"agent-{uuid.uuid4().hex[:8]}"
    profile = tmp_path / "profile.json"
    profile.write_text(
        json.dumps(
            {
                "home": str(tmp_path),
                "keyring_path": str(tmp_path / "keyring.json"),
                "probe_deadline_s": deadline_s,
                "probe_interval_s": 0.05,
                "action_deadline_s": action_deadline_s,
                "acme": acme,
            }
        )
    )
    runtime = Runtime.open(load_settings(profile))
    try:
        runtime.inventory.upsert_agent(Agent(agent, "team-v", AgentStatus.ACTIVE))
        keyring = KeyringFile(tmp_path / "keyring.json")
        for name, quirks in tokens.items():
            token, secret = f"{agent}-{name}", f"acme-secret-{agent}-{name}"
            stand_in.mint(agent, token, secret, **quirks)
            keyring.add("acme.token", token, {"token_id": token, "secret": secret})
        report = pipeline.contain(runtime, Request(agent, "drill", "test", mode=Mode.BREAK_GLASS))
    finally:
        runtime.close()
    verdicts = {c.credential.ref.removeprefix(f"{agent}-"): c.verdict for c in report.credentials}
    assert set(verdicts) == set(tokens)
    return report, verdicts


def test_a_plain_revocation_is_dead_and_says_the_baseline_authenticated(
    acme: None, tmp_path: Path
) -> None:
    report, verdicts = contain(tmp_path, {"t": {}})
    assert report.ok and verdicts["t"].status is VerdictStatus.DEAD
    assert verdicts["t"].evidence == "401 token_revoked; baseline: authenticated before containment"


def test_a_probe_rejected_before_containment_proves_nothing(acme: None, tmp_path: Path) -> None:
    report, verdicts = contain(tmp_path, {"t": {"refused": True}})
    verdict = verdicts["t"]
    assert verdict.status is VerdictStatus.UNVERIFIED
    assert "baseline already rejected before containment (401 token_revoked)" in verdict.evidence
    assert "proves nothing" in verdict.evidence
    assert "authenticates before containment" in verdict.to_prove
    assert verdict.attempts == 0  # no probe after containment: none could prove it


def test_an_alternative_probe_rejected_before_containment_proves_nothing_either(
    acme: None, tmp_path: Path
) -> None:
    report, verdicts = contain(tmp_path, {"t": {"refused": True, "down": True}}, whoami=True)
    verdict = verdicts["t"]
    assert verdict.status is VerdictStatus.UNVERIFIED
    assert "alternative probe inconclusive: 503 unavailable" in verdict.evidence


def test_a_rejected_baseline_is_proven_with_the_alternative_probe(
    acme: None, tmp_path: Path
) -> None:
    report, verdicts = contain(tmp_path, {"t": {"refused": True}}, whoami=True)
    verdict = verdicts["t"]
    assert report.ok and verdict.status is VerdictStatus.DEAD
    assert "proven with the alternative probe instead" in verdict.evidence
    assert "which authenticated before containment (200 ok)" in verdict.evidence


def test_a_delayed_revocation_is_dead_only_after_the_settle_window(
    acme: None, tmp_path: Path
) -> None:
    report, verdicts = contain(tmp_path, {"t": {"delay_s": 0.3}}, settle_s=0.6)
    verdict = verdicts["t"]
    assert report.ok and verdict.status is VerdictStatus.DEAD
    assert verdict.elapsed_s >= 0.3 + 0.6
    assert "rejected since 0.3s" in verdict.evidence or "rejected since 0.4s" in verdict.evidence
    assert "over the 0.6s settle window" in verdict.evidence
    assert "accepted again" not in verdict.evidence


def test_an_acceptance_after_a_rejection_is_reported_and_restarts_the_window(
    acme: None, tmp_path: Path
) -> None:
    report, verdicts = contain(tmp_path, {"t": {"delay_s": 0.2, "flap": True}}, settle_s=0.4)
    verdict = verdicts["t"]
    assert report.ok and verdict.status is VerdictStatus.DEAD
    match = re.search(
        r"rejected at ([\d.]+)s, accepted again at ([\d.]+)s; rejected since ([\d.]+)s",
        verdict.evidence,
    )
    assert match, verdict.evidence
    rejected, accepted, restarted = (float(g) for g in match.groups())
    assert rejected < accepted < restarted  # the window restarted after the acceptance
    assert verdict.elapsed_s >= restarted - 0.05 + 0.4  # (the evidence rounds to 0.1 s)


def _events(report: ContainmentReport, name: str) -> list[tuple[str, str]]:
    """What the stand-in saw of one token of the report's agent, in order."""
    token = f"{report.agent.id}-{name}"
    return [(kind, answer) for kind, t, answer in stand_in.EVENTS if t == token]


def _order(report: ContainmentReport) -> list[tuple[str, str, str]]:
    """What the stand-in saw of all the report's tokens, in order."""
    tokens = {c.credential.ref for c in report.credentials}
    return [e for e in stand_in.EVENTS if e[1] in tokens]


def test_a_credential_is_proven_while_another_credentials_revocation_is_under_way(
    acme: None, tmp_path: Path
) -> None:
    """The settle window starts at the first rejection seen after the credential's *own*
    revocation: a slow revocation of another credential of the provider holds it back no
    longer."""
    report, verdicts = contain(tmp_path, {"quick": {}, "slow": {"revoke_s": 1.5}}, settle_s=0.2)
    assert report.ok and {v.status for v in verdicts.values()} == {VerdictStatus.DEAD}
    order = _order(report)
    slow_revoked = order.index(("revoked", f"{report.agent.id}-slow", ""))
    quick_revoked = order.index(("revoked", f"{report.agent.id}-quick", ""))
    after = [i for i, e in enumerate(order) if i > quick_revoked and e[1].endswith("-quick")]
    # Every probe of the quick token that proved it (each answer after its revocation) was
    # answered before the slow token's revocation came back.
    assert after and all(order[i][2] == "401 token_revoked" for i in after)
    assert max(after) < slow_revoked
    assert len(after) == verdicts["quick"].attempts
    assert "over the 0.2s settle window" in verdicts["quick"].evidence


def test_no_credential_is_probed_before_its_own_revocation_is_back(
    acme: None, tmp_path: Path
) -> None:
    report, verdicts = contain(tmp_path, {"quick": {}, "slow": {"revoke_s": 1.0}}, settle_s=0.2)
    assert report.ok and verdicts["slow"].status is VerdictStatus.DEAD
    for name in ("quick", "slow"):
        events = _events(report, name)
        revoked = events.index(("revoked", ""))
        # The baseline, then the revocation, then only rejections: not one probe slipped in
        # between (it would have been accepted) and none ran before the revocation.
        assert events[:revoked] == [("answer", "200 ok")], events
        assert events[revoked + 1 :] and all(
            e == ("answer", "401 token_revoked") for e in events[revoked + 1 :]
        ), events


def test_a_settle_window_that_cannot_complete_in_the_deadline_is_unknown(
    acme: None, tmp_path: Path
) -> None:
    report, verdicts = contain(tmp_path, {"t": {}}, deadline_s=0.5, settle_s=5.0)
    verdict = verdicts["t"]
    assert not report.ok and verdict.status is VerdictStatus.UNKNOWN
    assert "401 token_revoked; rejected since" in verdict.evidence
    assert "the 5s settle window could not complete within the 0.5s probe deadline" in (
        verdict.evidence
    )


def test_a_rejection_not_on_the_allow_list_is_unknown_with_the_providers_words(
    acme: None, tmp_path: Path
) -> None:
    report, verdicts = contain(
        tmp_path, {"t": {"revoked_answer": "401 ip_not_allowed"}}, deadline_s=0.3
    )
    verdict = verdicts["t"]
    assert not report.ok and verdict.status is VerdictStatus.UNKNOWN
    assert "no rejection seen" in verdict.evidence and "401 ip_not_allowed" in verdict.evidence
    assert verdict.evidence.endswith("baseline: authenticated before containment")


def test_an_inconclusive_baseline_does_not_hold_containment_back_and_is_said(
    acme: None, tmp_path: Path
) -> None:
    report, verdicts = contain(tmp_path, {"t": {"down": True}})
    verdict = verdicts["t"]
    assert report.ok and verdict.status is VerdictStatus.DEAD
    assert "baseline inconclusive before containment (503 unavailable)" in verdict.evidence


def test_a_baseline_that_does_not_answer_holds_containment_back_no_longer_than_the_deadline(
    acme: None, tmp_path: Path
) -> None:
    report, verdicts = contain(tmp_path, {"t": {"slow_s": 1.5}}, action_deadline_s=0.3)
    verdict = verdicts["t"]
    assert report.ok and verdict.status is VerdictStatus.DEAD
    assert "no baseline within 0.3s: contained without one" in verdict.evidence
    assert 0.3 <= report.timings.contain_s < 1.5  # contained before the baseline answered


def test_each_credential_gets_its_own_baseline(acme: None, tmp_path: Path) -> None:
    report, verdicts = contain(tmp_path, {"plain": {}, "refused": {"refused": True}})
    assert verdicts["plain"].status is VerdictStatus.DEAD
    assert verdicts["refused"].status is VerdictStatus.UNVERIFIED


def test_baselines_are_taken_while_the_plan_is_made_and_used_by_the_run(
    acme: None, tmp_path: Path
) -> None:
    """The controls start as soon as the provider's discovery answers (killswitch.controls):
    a run right after its plan finds them taken, a dry run takes none."""
    import time

    from killswitch import controls

    agent = f"agent-{uuid.uuid4().hex[:8]}"
    profile = tmp_path / "profile.json"
    profile.write_text(
        json.dumps(
            {
                "home": str(tmp_path),
                "keyring_path": str(tmp_path / "keyring.json"),
                "probe_interval_s": 0.05,
                "acme": {},
            }
        )
    )
    runtime = Runtime.open(load_settings(profile))
    try:
        runtime.inventory.upsert_agent(Agent(agent, "team-v", AgentStatus.ACTIVE))
        token, secret = f"{agent}-t", f"acme-secret-{agent}-t"
        stand_in.mint(agent, token, secret, slow_s=0.6)  # a probe takes 0.6 s until revoked
        KeyringFile(tmp_path / "keyring.json").add(
            "acme.token", token, {"token_id": token, "secret": secret}
        )
        dry = Request(agent, "drill", "test", mode=Mode.DRY_RUN)
        pipeline.plan(runtime, dry)
        assert (dry.run_id, "acme") not in controls._taken  # noqa: SLF001
        request = Request(agent, "drill", "test", mode=Mode.BREAK_GLASS)
        started = time.monotonic()
        pipeline.plan(runtime, request)
        planned_s = time.monotonic() - started
        early = controls._taken[(request.run_id, "acme")]  # noqa: SLF001
        time.sleep(0.8)
        assert all(f.done() for f in early.controls.values())  # taken while nothing waited
        assert planned_s < 0.6  # the plan did not wait for its baselines
        report = pipeline.run(runtime, request.run_id)
        assert (request.run_id, "acme") not in controls._taken  # noqa: SLF001  (used, once)
    finally:
        runtime.close()
    [row] = report.credentials
    assert row.verdict.status is VerdictStatus.DEAD, row.verdict.evidence
    assert "baseline" in row.verdict.evidence
