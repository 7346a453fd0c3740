"""The Slack revoker against the Slack stand-in: auth.revoke, auth.test, ratelimited."""

from __future__ import annotations

import time

import pytest

from killswitch import restoration
from killswitch.models import Outcome, VerdictStatus
from killswitch.request import Mode, Request
from killswitch.sandbox.http import inject_fault
from killswitch.settings import Settings
from tests.conftest import SeedAgent
from tests.revokers.saas import contain, provider_runtime, statuses

pytestmark = pytest.mark.integration


def test_contain_revokes_the_agents_tokens_and_leaves_others(
    settings: Settings, seed_agent: SeedAgent
) -> None:
    agent_id, other = seed_agent(), seed_agent()
    with provider_runtime(settings, "slack") as runtime:
        assert statuses(runtime, agent_id, "slack") == [VerdictStatus.ALIVE]
        report = contain(runtime, agent_id)
        assert report.ok
        [credential] = report.credentials
        assert credential.credential.ref.startswith("T0")
        assert credential.verdict.status is VerdictStatus.DEAD
        assert "token_revoked" in credential.verdict.evidence
        assert statuses(runtime, other, "slack") == [VerdictStatus.ALIVE]


def test_revocation_is_marked_irreversible_and_restore_refuses_it(
    settings: Settings, seed_agent: SeedAgent
) -> None:
    agent_id = seed_agent()
    with provider_runtime(settings, "slack") as runtime:
        report = contain(runtime, agent_id)
        [action] = report.plan.actions
        assert not action.reversible and action.describe().endswith("(irreversible)")
        restored = restoration.restore(
            runtime, Request(agent_id, "fp", "test", mode=Mode.BREAK_GLASS)
        )
        assert restored.refused and "irreversible" in restored.refused[0]
        assert "issue a new credential" in restored.refused[0]
        assert statuses(runtime, agent_id, "slack") == [VerdictStatus.DEAD]


def test_ratelimited_is_honoured_with_retry_after(
    settings: Settings, seed_agent: SeedAgent, saas_url: str
) -> None:
    agent_id = seed_agent()
    with provider_runtime(settings, "slack") as runtime:
        # The first 429 answers the baseline auth.test (inconclusive: it is not retried, and
        # containment goes on); the next two answer auth.revoke.
        inject_fault(saas_url, "slack", 429, retry_after=1, count=3)
        started = time.monotonic()
        report = contain(runtime, agent_id)
        elapsed = time.monotonic() - started
    assert report.ok
    [credential] = report.credentials
    assert [r.outcome for r in credential.actions] == [Outcome.DONE]
    assert "baseline inconclusive before containment" in credential.verdict.evidence
    assert elapsed >= 2.0  # two 429s on the revoke, each honoured for its Retry-After of 1 s


def test_invalid_auth_from_outside_the_ip_allowlist_is_never_dead(
    settings: Settings, seed_agent: SeedAgent
) -> None:
    """The token works only from 203.0.113.0/24: Slack answers every call from here (auth.test
    and auth.revoke alike) with invalid_auth. Nothing was revoked, so nothing is dead, and
    the run fails."""
    agent_id = seed_agent(only=("slack",), slack={"mints": [{"ip_allowlist": ["203.0.113.0/24"]}]})
    with provider_runtime(settings, "slack", probe_deadline_s=2.0) as runtime:
        report = contain(runtime, agent_id)
    assert not report.ok
    [credential] = report.credentials
    [action] = credential.actions
    assert action.outcome is Outcome.FAILED
    assert "invalid_auth" in action.detail and "allowlist" in action.detail
    assert credential.verdict.status is VerdictStatus.UNKNOWN
    assert "invalid_auth" in credential.verdict.evidence
    assert "revoke-token failed" in credential.verdict.evidence
