"""The Anthropic revoker against the Anthropic stand-in: keys set inactive, reversibly."""

from __future__ import annotations

import httpx
import pytest

from killswitch import restoration
from killswitch.models import Outcome, VerdictStatus
from killswitch.request import Mode, Request
from killswitch.settings import Settings
from revokers.plugin import HttpProviderSettings
from tests.conftest import SeedAgent
from tests.revokers.saas import contain, provider_runtime, statuses

pytestmark = pytest.mark.integration


def test_contain_deactivates_restore_reactivates(settings: Settings, seed_agent: SeedAgent) -> None:
    agent_id, other = seed_agent(), seed_agent()
    with provider_runtime(settings, "anthropic") as runtime:
        report = contain(runtime, agent_id)
        assert report.ok
        [credential] = report.credentials
        assert credential.verdict.status is VerdictStatus.DEAD
        assert "401 authentication_error" in credential.verdict.evidence
        assert report.plan.actions[0].reversible
        assert statuses(runtime, other, "anthropic") == [VerdictStatus.ALIVE]
        restored = restoration.restore(
            runtime, Request(agent_id, "fp", "test", mode=Mode.BREAK_GLASS)
        )
        assert restored.ok and not restored.refused
        assert statuses(runtime, agent_id, "anthropic") == [VerdictStatus.ALIVE]


def test_a_400_says_nothing_about_the_key(saas_url: str) -> None:
    """No anthropic-version header: 400, which the probe must not read as dead."""
    response = httpx.get(f"{saas_url}/anthropic/v1/models", headers={"x-api-key": "sk-ant-x"})
    assert response.status_code == 400
    assert response.json()["type"] == "error"


def test_an_unknown_path_gets_anthropics_404(saas_url: str) -> None:
    response = httpx.get(
        f"{saas_url}/anthropic/v2/models",
        headers={"x-api-key": "sk-ant-x", "anthropic-version": "2023-06-01"},
    )
    assert response.status_code == 404
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"


def test_a_wrong_base_url_never_ends_dead(settings: Settings, seed_agent: SeedAgent) -> None:
    """Every call 404s (`/v2` instead of `/v1`): the key is neither called gone nor dead."""
    agent_id = seed_agent(only=("anthropic",))
    section = settings.section("anthropic", HttpProviderSettings)
    wrong = section.model_copy(update={"base_url": section.base_url.replace("/v1", "/v2")})
    with provider_runtime(settings, "anthropic", anthropic=wrong, probe_deadline_s=2.0) as runtime:
        report = contain(runtime, agent_id)
    assert not report.ok
    [credential] = report.credentials
    assert credential.verdict.status is VerdictStatus.UNKNOWN
    assert "404 not_found_error (a wrong URL, not a dead key)" in credential.verdict.evidence
    [action] = credential.actions
    assert action.outcome is Outcome.FAILED
    assert "wrong anthropic.base_url" in action.detail
    with provider_runtime(settings, "anthropic") as runtime:
        assert statuses(runtime, agent_id, "anthropic") == [VerdictStatus.ALIVE]
