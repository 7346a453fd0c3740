"""The flows in-process against the sandbox's Prefect server: the warm-service path."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from flows import handover
from flows.contain import ContainmentNotProven, contain
from flows.restore import restore
from killswitch import pipeline
from killswitch.errors import RefusedError
from killswitch.models import VerdictStatus
from killswitch.plans import PlanNotRunnableError
from killswitch.request import Request
from killswitch.runtime import Runtime
from killswitch.secrets import KeyringFile, MappingSource
from revokers.registry import plugins
from tests.conftest import SeedAgent, keyring_material, seeded_counts

pytestmark = [pytest.mark.integration, pytest.mark.flow]


@pytest.fixture
def prefect_api(sandbox: dict[str, Any], prefect_http: httpx.Client) -> Iterator[httpx.Client]:
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    api = str(sandbox["prefect"]["api_url"])
    auth = str(sandbox["prefect"]["auth_string"])
    updates = {PREFECT_API_URL: api, PREFECT_API_AUTH_STRING: auth}
    with temporary_settings(updates=updates), handover.fast():
        yield prefect_http


def kept(runtime: Runtime, agent_id: str) -> str:
    """Plan a containment of the agent (kept by run id, as every trigger does): its run id."""
    return pipeline.plan(runtime, Request(agent_id, "flow test", "test")).run_id


def flow_runs(api: httpx.Client, name: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = api.post(
        "flow_runs/filter", json={"flow_runs": {"name": {"any_": [name]}}}
    ).json()
    return runs


def test_contain_flow_proves_every_credential_dead_and_publishes_an_artifact(
    prefect_api: httpx.Client, runtime: Runtime, seed_agent: SeedAgent, sandbox: dict[str, Any]
) -> None:
    agent_id = seed_agent()
    run_id = kept(runtime, agent_id)
    with handover.using(runtime):
        report = contain(run_id, agent_id)
    assert report.ok and report.mode == "flow" and report.run_id == run_id
    assert {c.verdict.status for c in report.credentials} == {VerdictStatus.DEAD}
    [run] = flow_runs(prefect_api, f"contain-{agent_id}")
    assert run["state_type"] == "COMPLETED"
    tasks = prefect_api.post(
        "task_runs/filter", json={"flow_runs": {"id": {"any_": [run["id"]]}}}
    ).json()
    # One task per provider, however many credentials: bookkeeping grows with providers.
    assert sorted(t["name"] for t in tasks) == sorted(f"contain-{p.name}" for p in plugins())
    assert len(report.credentials) == seeded_counts(sandbox)[0]
    artifacts = prefect_api.post(
        "artifacts/filter",
        json={"artifacts": {"key": {"any_": [f"containment-{agent_id}"]}}},
    ).json()
    assert artifacts and artifacts[0]["type"] == "table"


def test_contain_flow_fails_when_a_credential_stays_alive(
    prefect_api: httpx.Client, runtime: Runtime, seed_agent: SeedAgent, keyring: KeyringFile
) -> None:
    agent_id, bystander = seed_agent(aws={"role": False}), seed_agent(aws={"role": False})
    [victim] = [r for r in runtime.inventory.declared(agent_id) if r.kind == "aws.access-key"][:1]
    [bystander_key] = [
        r for r in runtime.inventory.declared(bystander) if r.kind == "aws.access-key"
    ][:1]
    # Wrong probe material: another agent's live key offered for the victim's key id.
    material = keyring_material(keyring, "aws.access-key", bystander_key.ref)
    wrong = MappingSource("wrong", {f"aws.access-key:{victim.ref}": [material]})
    hurried = runtime.settings.model_copy(update={"probe_deadline_s": 0.5})
    run_id = kept(runtime, agent_id)
    with handover.using(
        Runtime(
            hurried,
            runtime.inventory,
            runtime.ledger,
            runtime.with_secrets(wrong).secrets,
            runtime.revokers,
        )
    ):
        with pytest.raises(ContainmentNotProven) as failed:
            contain(run_id, agent_id)
    verdicts = {c.credential.ref: c.verdict.status for c in failed.value.report.credentials}
    assert verdicts[victim.ref] is VerdictStatus.ALIVE
    assert flow_runs(prefect_api, f"contain-{agent_id}")[0]["state_type"] == "FAILED"


def test_a_kept_plan_runs_once_and_only_for_its_agent(
    prefect_api: httpx.Client, runtime: Runtime, seed_agent: SeedAgent
) -> None:
    agent_id, other = seed_agent(), seed_agent()
    run_id = kept(runtime, agent_id)
    with handover.using(runtime):
        with pytest.raises(RefusedError, match="is for"):
            contain(run_id, other)
        assert contain(run_id, agent_id).ok
        with pytest.raises(PlanNotRunnableError, match="it is running|it is finished"):
            contain(run_id, agent_id)
        with pytest.raises(PlanNotRunnableError, match="no plan"):
            contain(uuid.uuid4().hex, agent_id)


def test_restore_flow_undoes_the_containment(
    prefect_api: httpx.Client, runtime: Runtime, seed_agent: SeedAgent
) -> None:
    agent_id = seed_agent()
    with handover.using(runtime):
        assert contain(kept(runtime, agent_id), agent_id).ok
        report = restore(agent_id, "false positive", actor="test")
    assert report.ok and {v.status for _, v in report.checks} == {VerdictStatus.ALIVE}
    assert flow_runs(prefect_api, f"restore-{agent_id}")[0]["state_type"] == "COMPLETED"
