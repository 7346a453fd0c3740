"""The Anthropic revoker against the Anthropic stand-in: keys set inactive, reversibly."""

from __future__ import annotations

import httpx
import pytest

from killswitch import restoration
from killswitch.models import VerdictStatus
from killswitch.request import Mode, Request
from killswitch.settings import Settings
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
