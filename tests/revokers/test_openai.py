"""The OpenAI revoker against the OpenAI stand-in: project keys deleted with the admin key."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from killswitch.models import Outcome, VerdictStatus
from killswitch.runtime import Runtime
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


def _admin(runtime: Runtime) -> httpx.Client:
    """The stand-in's admin API, as the revoker reaches it (its base URL and admin key)."""
    config = runtime.revokers["openai"].config  # type: ignore[attr-defined]
    key = config.admin_key.get_secret_value()
    return httpx.Client(
        base_url=config.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10
    )


def test_a_service_accounts_key_goes_with_its_service_account(
    settings: Settings, seed_agent: SeedAgent
) -> None:
    agent_id = seed_agent(only=("openai",), openai={"mints": [{"service_account": True}]})
    with provider_runtime(settings, "openai") as runtime, _admin(runtime) as admin:
        [ref] = [r.ref for r in runtime.inventory.declared(agent_id) if r.provider == "openai"]
        project, _, key_id = ref.partition("/")
        owner = admin.get(f"/organization/projects/{project}/api_keys/{key_id}").json()["owner"]
        assert owner["type"] == "service_account"
        account = owner["service_account"]["id"]
        # As OpenAI does: the project-key DELETE refuses a service account's key.
        refused = admin.delete(f"/organization/projects/{project}/api_keys/{key_id}")
        assert refused.status_code == 400
        assert set(refused.json()["error"]) == {"message", "type", "param", "code"}
        listed = admin.get(f"/organization/projects/{project}/service_accounts").json()
        assert account in {a["id"] for a in listed["data"]}
        report = contain(runtime, agent_id)
        assert report.ok
        [credential] = report.credentials
        assert credential.verdict.status is VerdictStatus.DEAD
        assert "invalid_api_key" in credential.verdict.evidence
        [action] = credential.actions
        assert action.outcome is Outcome.DONE
        assert f"service_accounts/{account}" in action.detail
        assert "every key it held" in action.detail
        gone = admin.get(f"/organization/projects/{project}/service_accounts/{account}")
        assert gone.status_code == 404
        again = contain(runtime, agent_id)
        assert again.ok and again.credentials[0].actions[0].detail == "key deleted already"


def test_the_listing_includes_keys_whose_owner_lost_project_access(
    settings: Settings, seed_agent: SeedAgent, saas_url: str
) -> None:
    """Without `owner_project_access=any` OpenAI leaves such enabled keys out; 150 keys of a
    fresh project (two pages) plus one whose owner lost access: none is skipped."""
    owner, project = f"bulk-{uuid.uuid4().hex[:8]}", f"proj_{uuid.uuid4().hex[:12]}"
    minted = httpx.post(
        f"{saas_url}/_sandbox/bulk",
        json={"provider": "openai", "owner": owner, "count": 150, "project": project},
        timeout=60,
    )
    minted.raise_for_status()
    try:
        hidden = seed_agent(
            only=("openai",), openai={"mints": [{"project": project, "owner_access": "inactive"}]}
        )
        with provider_runtime(settings, "openai") as runtime, _admin(runtime) as admin:
            [ref] = [r.ref for r in runtime.inventory.declared(hidden) if r.provider == "openai"]
            default = admin.get(f"/organization/projects/{project}/api_keys", params={"limit": 100})
            assert ref.partition("/")[2] not in {k["id"] for k in default.json()["data"]}
            revoker = runtime.revokers["openai"]
            listed = [n.ref for n in revoker.enumerate() if n.ref.startswith(f"{project}/")]
        assert len(listed) == 151 and ref in listed
    finally:
        httpx.request("DELETE", f"{saas_url}/_sandbox/bulk", json={"owner": owner}, timeout=60)


def test_a_restricted_key_refused_the_probe_at_the_baseline_never_ends_dead(
    settings: Settings, seed_agent: SeedAgent
) -> None:
    """A key without `api.model.read` gets 401 `code: null` from GET /models before anything
    is done: its later 401 proves nothing, so the verdict is `unverified`, not `dead`."""
    agent_id = seed_agent(only=("openai",), openai={"mints": [{"scopes": ["api.responses.write"]}]})
    with provider_runtime(settings, "openai") as runtime:
        report = contain(runtime, agent_id)
    [credential] = report.credentials
    assert [a.outcome for a in credential.actions] == [Outcome.DONE]
    assert credential.verdict.status is VerdictStatus.UNVERIFIED
    assert "baseline already rejected before containment" in credential.verdict.evidence
    assert "401 (no error code)" in credential.verdict.evidence
    assert credential.verdict.to_prove
