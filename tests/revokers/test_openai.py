"""The OpenAI revoker against the OpenAI stand-in: project keys deleted with the admin key."""

from __future__ import annotations

import time

import pytest

from killswitch.models import VerdictStatus
from killswitch.sandbox.http import inject_fault
from killswitch.secrets import KeyringFile
from killswitch.settings import Settings
from tests.conftest import SeedAgent
from tests.revokers.saas import contain, provider_runtime, statuses

pytestmark = pytest.mark.integration


def test_contain_deletes_the_agents_key_and_leaves_others(
    settings: Settings, seed_agent: SeedAgent
) -> None:
    agent_id, other = seed_agent(), seed_agent()
    with provider_runtime(settings, "openai") as runtime:
        report = contain(runtime, agent_id)
        assert report.ok
        [credential] = report.credentials
        assert credential.verdict.status is VerdictStatus.DEAD
        assert "invalid_api_key" in credential.verdict.evidence
        assert not report.plan.actions[0].reversible
        assert statuses(runtime, other, "openai") == [VerdictStatus.ALIVE]
        second = contain(runtime, agent_id)
        assert second.ok and second.credentials[0].actions[0].detail == "key deleted already"


def test_without_material_the_admin_read_back_is_unverified(
    settings: Settings, seed_agent: SeedAgent, keyring: KeyringFile
) -> None:
    agent_id = seed_agent()
    with provider_runtime(settings, "openai", secret_sources=()) as runtime:
        report = contain(runtime, agent_id)
    [credential] = report.credentials
    assert credential.verdict.status is VerdictStatus.UNVERIFIED
    assert "404 (deleted)" in credential.verdict.evidence


def test_a_429_with_retry_after_is_honoured_inside_the_deadline(
    settings: Settings, seed_agent: SeedAgent, saas_url: str
) -> None:
    agent_id = seed_agent()
    with provider_runtime(settings, "openai") as runtime:
        # The first 429 answers the baseline GET /models (inconclusive, not retried: the
        # containment goes on); the second answers the DELETE.
        inject_fault(saas_url, "openai", 429, retry_after=1, count=2)
        started = time.monotonic()
        report = contain(runtime, agent_id)
        assert report.ok and time.monotonic() - started >= 1.0
    with provider_runtime(
        settings, "openai", action_deadline_s=0.5, probe_deadline_s=0.5
    ) as runtime:
        other = seed_agent()
        inject_fault(saas_url, "openai", 429, retry_after=5, count=2)
        started = time.monotonic()
        hurried = contain(runtime, other)
        # A Retry-After beyond the deadline is not slept through: the action fails at once.
        assert time.monotonic() - started < 4.0
        assert not hurried.ok and "transient" in hurried.credentials[0].actions[0].detail
