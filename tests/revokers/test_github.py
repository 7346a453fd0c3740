"""The GitHub revoker against the GitHub stand-in: asynchronous revocation, polled to dead."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from killswitch.errors import TransientError
from killswitch.models import Outcome, VerdictStatus
from killswitch.sandbox import github
from killswitch.sandbox.http import inject_fault
from killswitch.settings import Settings
from revokers.github.batch import Batch, chunks
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


def _calls_with(saas_url: str, refs: set[str]) -> list[dict[str, Any]]:
    return [c for c in github.revoke_calls(saas_url) if refs & set(c["refs"])]


def test_an_agents_tokens_are_revoked_in_one_call(
    settings: Settings, seed_agent: SeedAgent, saas_url: str
) -> None:
    agent_id = seed_agent(
        only=("github",), github={"mints": [{}, {"fine_grained": True}, {}, {"fine_grained": True}]}
    )
    with provider_runtime(settings, "github") as runtime:
        refs = {r.ref for r in runtime.inventory.declared(agent_id) if r.provider == "github"}
        report = contain(runtime, agent_id)
    assert report.ok and len(refs) == 4
    assert {c.verdict.status for c in report.credentials} == {VerdictStatus.DEAD}
    [call] = _calls_with(saas_url, refs)
    assert set(call["refs"]) == refs
    details = [a.detail for c in report.credentials for a in c.actions]
    assert len(details) == 4
    assert all("POST /credentials/revoke of 4 token(s)" in d for d in details)


def test_more_tokens_than_workers_still_go_in_one_call(
    settings: Settings, seed_agent: SeedAgent, saas_url: str
) -> None:
    """The engine puts every revocation of a run in flight at once (a batched operation),
    not `github.max_workers` at a time: 40 tokens, 16 workers, one call."""
    agent_id = seed_agent(only=("github",), github={"mints": [{}] * 40})
    with provider_runtime(settings, "github") as runtime:
        assert runtime.revokers["github"].max_workers < 40
        refs = {r.ref for r in runtime.inventory.declared(agent_id) if r.provider == "github"}
        report = contain(runtime, agent_id)
    assert report.ok and len(refs) == 40
    [call] = _calls_with(saas_url, refs)
    assert set(call["refs"]) == refs


def test_the_revoke_api_takes_at_most_1000_tokens_a_call(saas_url: str) -> None:
    many = [f"ghp_{i:036d}" for i in range(1001)]
    refused = httpx.post(f"{saas_url}/github/credentials/revoke", json={"credentials": many})
    assert refused.status_code == 422 and refused.json()["message"] == "Validation Failed"
    accepted = httpx.post(
        f"{saas_url}/github/credentials/revoke", json={"credentials": many[:1000]}
    )
    assert accepted.status_code == 202


def test_more_than_1000_tokens_go_in_calls_of_1000() -> None:
    groups = [[f"a{i}" for i in range(600)], [f"b{i}" for i in range(600)], ["c"]]
    calls = chunks(groups)
    assert [len(tokens) for tokens, _ in calls] == [1000, 201]
    assert [members for _, members in calls] == [[0, 1], [1, 2]]


def test_a_short_rate_limit_is_waited_out(
    settings: Settings, seed_agent: SeedAgent, saas_url: str
) -> None:
    """60 calls an hour per IP, all used, the window resets in 2 s: 403 with
    x-ratelimit-remaining 0 is throttling, retried at the reset, and the tokens end dead."""
    agent_id = seed_agent(only=("github",))
    github.configure(saas_url, rate_limit=60, used=60, reset_in_s=2)
    try:
        with provider_runtime(settings, "github", action_deadline_s=10.0) as runtime:
            started = time.monotonic()
            report = contain(runtime, agent_id)
            elapsed = time.monotonic() - started
    finally:
        github.configure(saas_url, rate_limit=None)
    assert report.ok, [a.detail for c in report.credentials for a in c.actions]
    assert {c.verdict.status for c in report.credentials} == {VerdictStatus.DEAD}
    assert elapsed >= 1.0


def test_a_long_rate_limit_is_transient_and_never_dead(
    settings: Settings, seed_agent: SeedAgent, saas_url: str
) -> None:
    """The hour's 60 calls are used and the reset is an hour away: the revocation fails as
    throttled (not as the kill switch's own identity), and the verdict says rate limited."""
    agent_id = seed_agent(only=("github",))
    github.configure(saas_url, rate_limit=60, used=60, reset_in_s=3600)
    try:
        with provider_runtime(
            settings, "github", action_deadline_s=2.0, probe_deadline_s=1.0
        ) as runtime:
            started = time.monotonic()
            report = contain(runtime, agent_id)
            elapsed = time.monotonic() - started
    finally:
        github.configure(saas_url, rate_limit=None)
    assert not report.ok and elapsed < 30
    for credential in report.credentials:
        [action] = credential.actions
        assert action.outcome is Outcome.FAILED
        assert action.detail.startswith("transient:") and "rate limited" in action.detail
        assert "own-identity" not in action.detail
        assert credential.verdict.status is VerdictStatus.ALIVE
        assert "rate limited by GitHub" in credential.verdict.evidence


def test_an_installation_token_is_revoked_with_itself(
    settings: Settings, seed_agent: SeedAgent, saas_url: str
) -> None:
    agent_id = seed_agent(only=("github",), github={"mints": [{"installation": True}]})
    with provider_runtime(settings, "github") as runtime:
        agent = runtime.inventory.get_agent(agent_id)
        assert agent is not None
        found = runtime.revokers["github"].discover(agent, runtime.inventory.declared(agent_id))
        [credential] = found.credentials
        [material] = runtime.secrets.materials(credential)
        token = material.get("token")
        # As GitHub does: an installation token cannot call /user.
        user = httpx.get(f"{saas_url}/github/user", headers={"Authorization": f"Bearer {token}"})
        assert user.status_code == 403
        report = contain(runtime, agent_id)
    assert report.ok
    [proven] = report.credentials
    assert proven.verdict.status is VerdictStatus.DEAD
    assert "GET /installation/repositories → 401" in proven.verdict.evidence
    assert "DELETE /installation/token: 204" in proven.actions[0].detail
    assert _calls_with(saas_url, {credential.ref}) == []


def test_revocations_submitted_together_share_a_call_and_its_outcome() -> None:
    sent: list[list[str]] = []

    async def send(tokens: Sequence[str]) -> None:
        sent.append(list(tokens))
        if "bad" in tokens:
            raise TransientError("HTTP 403, rate limited", provider="github")

    async def scenario() -> list[object]:
        batch = Batch(send, window_s=0.05, limit=3)
        together = await asyncio.gather(batch.submit(["a"]), batch.submit(["b", "c"]))
        # The limit fills the call at once (no wait); a failed call fails its members only.
        failing = await asyncio.gather(
            batch.submit(["bad", "d", "e"]), batch.submit(["f"]), return_exceptions=True
        )
        return [*together, *failing]

    outcomes = asyncio.run(scenario())
    assert sent == [["a", "b", "c"], ["bad", "d", "e"], ["f"]]
    assert outcomes[:2] == [3, 3]
    assert isinstance(outcomes[2], TransientError) and outcomes[3] == 1
