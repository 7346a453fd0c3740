"""The GitHub revoker against the GitHub stand-in: asynchronous revocation, polled to dead."""

from __future__ import annotations

import httpx
import pytest

from killswitch.models import VerdictStatus
from killswitch.sandbox import github
from killswitch.sandbox.http import inject_fault
from killswitch.settings import Settings
from tests.conftest import SeedAgent
from tests.revokers.saas import contain, provider_runtime, statuses

pytestmark = pytest.mark.integration


def test_delayed_revocation_is_polled_until_the_token_is_dead(
    settings: Settings, seed_agent: SeedAgent, saas_url: str
) -> None:
    agent_id, other = seed_agent(), seed_agent()
    github.set_delay(saas_url, 1.5)
    try:
        with provider_runtime(settings, "github") as runtime:
            assert statuses(runtime, agent_id, "github") == [VerdictStatus.ALIVE] * 2
            report = contain(runtime, agent_id)
            assert report.ok
            assert {c.verdict.status for c in report.credentials} == {VerdictStatus.DEAD}
            # The 202 came at once; the probe kept trying until GitHub said 401.
            assert all(c.verdict.attempts > 1 for c in report.credentials)
            assert all(c.verdict.elapsed_s >= 1.0 for c in report.credentials)
            assert all("401 Bad credentials" in c.verdict.evidence for c in report.credentials)
            assert statuses(runtime, other, "github") == [VerdictStatus.ALIVE] * 2
    finally:
        github.set_delay(saas_url, 1.0)


def test_the_revoke_api_refuses_authenticated_calls_as_github_does(saas_url: str) -> None:
    response = httpx.post(
        f"{saas_url}/github/credentials/revoke",
        headers={"Authorization": "Bearer ghp_x"},
        json={"credentials": ["ghp_x"]},
    )
    assert response.status_code == 403
    assert httpx.post(f"{saas_url}/github/credentials/revoke", json={}).status_code == 422


def test_a_429_with_retry_after_is_honoured(
    settings: Settings, seed_agent: SeedAgent, saas_url: str
) -> None:
    agent_id = seed_agent()
    with provider_runtime(settings, "github") as runtime:
        # The first 429 answers the baseline GET /user, the second the revoke.
        inject_fault(saas_url, "github", 429, retry_after=1, count=2)
        report = contain(runtime, agent_id)
    assert report.ok
    assert {c.verdict.status for c in report.credentials} == {VerdictStatus.DEAD}
