"""Azure through azure-identity, azure-mgmt-authorization and Graph over httpx, against the
HTTPS stand-in: contain, prove, restore, destroy; and the stand-in's shapes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential
from azure.mgmt.authorization.v2022_04_01 import models

from killswitch import pipeline, restoration
from killswitch.models import Outcome, VerdictStatus
from killswitch.request import Mode, Request, Workflow
from killswitch.runtime import Runtime
from killswitch.sandbox.azure import fleet as azure_fleet
from killswitch.sandbox.azure import modes
from killswitch.secrets import Stores
from killswitch.settings import Settings
from revokers.azure.graph import tls
from revokers.azure.settings import AzureSettings
from tests.conftest import SeedAgent
from tests.revokers.saas import contain, provider_runtime, statuses

pytestmark = pytest.mark.integration


def principal_of(runtime: Runtime, agent_id: str) -> str:
    revoker = runtime.revokers["azure"]
    found = revoker.graph.tagged(f"agent-id={agent_id}")  # type: ignore[attr-defined]
    assert len(found) == 1
    return str(found[0]["id"])


def assignments(azure: azure_fleet.Azure, principal_id: str) -> set[tuple[str, str, str]]:
    credential = azure.credential()
    arm = azure.arm(credential)
    try:
        listed = arm.role_assignments.list_for_scope(
            azure.subscription_scope, filter=f"assignedTo('{principal_id}')"
        )
        return {(str(a.name), str(a.scope), str(a.role_definition_id)) for a in listed}
    finally:
        arm.close()
        credential.close()


def test_contain_refuses_every_secret_a_token_and_restore_brings_it_all_back(
    settings: Settings, seed_agent: SeedAgent, azure: azure_fleet.Azure, material_store: Stores
) -> None:
    agent_id = seed_agent("az", only=("aws", "azure"))
    other = seed_agent("az", only=("aws", "azure"))
    with provider_runtime(settings, "azure") as runtime:
        principal = principal_of(runtime, agent_id)
        before = assignments(azure, principal)
        assert len(before) == 2 and {s for _, s, _ in before} == {
            azure.subscription_scope,
            f"{azure.subscription_scope}/resourceGroups/{azure_fleet.RESOURCE_GROUP}",
        }
        # A secret added just before the run (by whoever holds the app) is killed too.
        credential = azure.credential()
        token = credential.get_token("https://graph.microsoft.com/.default").token
        credential.close()
        body = runtime.revokers["azure"].graph.get(principal)  # type: ignore[attr-defined]
        fresh = azure_fleet.add_secret(azure, token, material_store, body, agent_id)
        assert set(statuses(runtime, agent_id, "azure")) == {VerdictStatus.ALIVE}
        report = contain(runtime, agent_id)
        assert report.ok, report.errors
        assert len(report.credentials) == 3
        assert fresh in {c.credential.ref for c in report.credentials}
        for row in report.credentials:
            assert row.verdict.status is VerdictStatus.DEAD
            assert "AADSTS7000112" in row.verdict.evidence  # the principal is disabled
            [disable] = [
                r for r in row.actions if r.action.operation == "disable-service-principal"
            ]
            assert "stay valid until they expire" in disable.detail and "UTC" in disable.detail
        assert assignments(azure, principal) == set()
        assert len(report.grants_detached) == 2
        assert set(statuses(runtime, other, "azure")) == {VerdictStatus.ALIVE}

        again = contain(runtime, agent_id)  # idempotent
        assert again.ok and not again.grants_detached
        assert all(r.outcome is not Outcome.DONE for c in again.credentials for r in c.actions)

        restored = restoration.restore(
            runtime, Request(agent_id, "false positive", "test", mode=Mode.BREAK_GLASS)
        )
        assert restored.ok, restored.errors
        assert assignments(azure, principal) == before  # the same names, scopes and roles
        assert set(statuses(runtime, agent_id, "azure")) == {VerdictStatus.ALIVE}


def test_decommission_removes_every_secret_and_proves_it(
    settings: Settings, seed_agent: SeedAgent
) -> None:
    agent_id = seed_agent(
        "az", only=("aws", "azure"), aws={"users": (("runtime", 1),), "role": False}
    )
    with provider_runtime(settings, "azure") as runtime:
        request = Request(
            agent_id, "retire", "test", mode=Mode.BREAK_GLASS, workflow=Workflow.DECOMMISSION
        )
        report = pipeline.contain(runtime, request)
        assert report.ok, report.errors
        assert {c.verdict.status for c in report.credentials} == {VerdictStatus.DEAD}
        assert all("AADSTS7000215" in c.verdict.evidence for c in report.credentials)
        principal = runtime.revokers["azure"].graph.get(principal_of(runtime, agent_id))  # type: ignore[attr-defined]
        assert principal["passwordCredentials"] == []


def test_stand_in_shapes_match_the_generated_models(
    azure: azure_fleet.Azure, seed_agent: SeedAgent, settings: Settings
) -> None:
    seed_agent("az", only=("aws", "azure"), aws={"users": (("runtime", 1),), "role": False})
    info = azure.info
    credential = azure.credential()
    token = credential.get_token("https://management.azure.com/.default").token
    arm = azure.arm(credential)
    try:
        # Paging by nextLink: more assignments than one page.
        every = list(arm.role_assignments.list_for_scope(azure.subscription_scope))
        assert len(every) > 2
        raw = httpx.get(
            f"{info['arm_url']}{every[0].id}",
            params={"api-version": "2022-04-01"},
            headers={"Authorization": f"Bearer {token}"},
            verify=tls(info["ca_cert"]),
        ).json()
        mapped = {v["key"] for v in models.RoleAssignment._attribute_map.values()}
        assert set(raw) - {"properties"} <= mapped
        assert {f"properties.{k}" for k in raw["properties"]} <= mapped
        assert (
            models.RoleAssignment.deserialize(raw).principal_id == raw["properties"]["principalId"]
        )
        # Delete answers 200 with the assignment, then 204 when it is already gone.
        assert arm.role_assignments.delete_by_id(str(every[0].id)) is not None
        assert arm.role_assignments.delete_by_id(str(every[0].id)) is None
    finally:
        arm.close()
        credential.close()
    wrong = ClientSecretCredential(
        info["tenant_id"],
        info["client_id"],
        "not-the-secret",
        authority=info["authority"],
        disable_instance_discovery=True,
        connection_verify=info["ca_cert"],
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        wrong.get_token("https://management.azure.com/.default")
    wrong.close()
    answer = httpx.post(
        f"{info['url']}/{info['tenant_id']}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": "unknown-app", "client_secret": "x"},
        verify=tls(info["ca_cert"]),
    )
    body: dict[str, Any] = answer.json()
    assert answer.status_code == 400 and body["error_codes"] == [700016]
    assert body["error_description"].startswith("AADSTS700016:")
    missing = httpx.get(
        f"{info['graph_url']}/v1.0/servicePrincipals/00000000-0000-0000-0000-000000000000",
        headers={"Authorization": f"Bearer {token}"},
        verify=tls(info["ca_cert"]),
    )
    assert (
        missing.status_code == 404 and missing.json()["error"]["code"] == "Request_ResourceNotFound"
    )
    assert (
        httpx.get(
            f"{info['arm_url']}{azure.subscription_scope}/providers/Microsoft.Authorization/roleAssignments",
            params={"api-version": "2022-04-01"},
            verify=tls(info["ca_cert"]),
        ).status_code
        == 401
    )
    del settings


def members_of(azure: azure_fleet.Azure, group_id: str) -> set[str]:
    answer = httpx.get(
        f"{azure.info['graph_url']}/v1.0/groups/{group_id}/members",
        headers={"Authorization": f"Bearer {azure_fleet.graph_token(azure)}"},
        verify=tls(azure.info["ca_cert"]),
    )
    answer.raise_for_status()
    return {m["id"] for m in answer.json()["value"]}


def everything_at(azure: azure_fleet.Azure) -> set[tuple[str, str, str, str]]:
    """(name, scope, role, principal) of every assignment in the subscription."""
    credential = azure.credential()
    arm = azure.arm(credential)
    try:
        listed = arm.role_assignments.list_for_scope(azure.subscription_scope)
        return {
            (str(a.name), str(a.scope), str(a.role_definition_id), str(a.principal_id))
            for a in listed
        }
    finally:
        arm.close()
        credential.close()


def test_assignments_held_through_groups_stay_the_groups_and_restore_is_exact(
    settings: Settings, seed_agent: SeedAgent, azure: azure_fleet.Azure
) -> None:
    agent_id = seed_agent("az", only=("aws", "azure"))
    other_id = seed_agent("az", only=("aws", "azure"))
    with provider_runtime(settings, "azure") as runtime:
        agent, other = principal_of(runtime, agent_id), principal_of(runtime, other_id)
    # The agent and another principal in `inner`; `inner` nested in `outer`, which holds a
    # role at the resource group: assignedTo() returns it for both, transitively.
    inner = azure_fleet.group(azure, f"{agent_id}-inner", [agent, other])
    outer = azure_fleet.group(azure, f"{agent_id}-outer", [inner])
    scope = f"{azure.subscription_scope}/resourceGroups/{azure_fleet.RESOURCE_GROUP}"
    shared = azure_fleet.assign(azure, scope, CONTRIBUTOR, outer, "Group")
    assert shared.lower() in {a.lower() for a in assigned_ids(azure, agent)}
    assert shared.lower() in {a.lower() for a in assigned_ids(azure, other)}
    own_before = assignments(azure, agent)
    everything = everything_at(azure)
    with provider_runtime(settings, "azure") as runtime:
        report = contain(runtime, agent_id)
        assert report.ok, report.errors
        assert shared.lower() not in {a.lower() for a in assigned_ids(azure, agent)}
        assert shared.lower() in {a.lower() for a in assigned_ids(azure, other)}  # untouched
        after = everything_at(azure)
        assert {a for a in everything - after if a[3] != agent} == set()  # only the agent's
        assert any(a[3] == outer for a in after)  # the group keeps its assignment
        assert members_of(azure, inner) == {other} and members_of(azure, outer) == {inner}
        [membership] = [
            r for r in report.grants_detached if r.action.operation == "remove-group-member"
        ]
        assert membership.outcome is Outcome.DONE
        assert "stays the group's" in membership.detail and "other members keep it" in (
            membership.detail
        )
        kinds = {g.kind for g in report.plan.grants}
        assert {"azure.group-role-assignment", "azure.group-membership"} <= kinds
        assert (
            len(
                [
                    r
                    for r in report.grants_detached
                    if r.action.operation == "delete-role-assignment"
                ]
            )
            == 2
        )

        again = contain(runtime, agent_id)  # idempotent: out of the group, nothing to do
        assert again.ok and not again.grants_detached

        restored = restoration.restore(
            runtime, Request(agent_id, "false positive", "test", mode=Mode.BREAK_GLASS)
        )
        assert restored.ok, restored.errors
    assert members_of(azure, inner) == {agent, other}
    assert everything_at(azure) == everything  # exactly: nothing re-created on the agent
    assert assignments(azure, agent) >= own_before


def assigned_ids(azure: azure_fleet.Azure, principal_id: str) -> set[str]:
    credential = azure.credential()
    arm = azure.arm(credential)
    try:
        listed = arm.role_assignments.list_for_scope(
            azure.subscription_scope, filter=f"assignedTo('{principal_id}')"
        )
        return {str(a.id) for a in listed}
    finally:
        arm.close()
        credential.close()


CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382be24c"


def test_principal_id_eq_lists_only_the_principals_own_assignments(
    seed_agent: SeedAgent, azure: azure_fleet.Azure, settings: Settings
) -> None:
    agent_id = seed_agent("az", only=("aws", "azure"))
    with provider_runtime(settings, "azure") as runtime:
        agent = principal_of(runtime, agent_id)
    team = azure_fleet.group(azure, f"{agent_id}-team", [agent])
    azure_fleet.assign(azure, azure.subscription_scope, CONTRIBUTOR, team, "Group")
    credential = azure.credential()
    arm = azure.arm(credential)
    try:
        direct = list(
            arm.role_assignments.list_for_scope(
                azure.subscription_scope, filter=f"principalId eq '{agent}'"
            )
        )
        transitive = list(
            arm.role_assignments.list_for_scope(
                azure.subscription_scope, filter=f"assignedTo('{agent}')"
            )
        )
    finally:
        arm.close()
        credential.close()
    assert {a.principal_id for a in direct} == {agent} and len(direct) == 2
    assert {a.principal_id for a in transitive} == {agent, team} and len(transitive) == 3


def test_the_applications_secrets_and_certificates_are_the_agents_too(
    settings: Settings, seed_agent: SeedAgent, azure: azure_fleet.Azure
) -> None:
    agent_id = seed_agent(
        "az", only=("aws", "azure"), azure={"application_secrets": 1, "certificates": 1}
    )
    with provider_runtime(settings, "azure") as runtime:
        report = contain(runtime, agent_id)
        assert report.ok, report.errors
        by_kind: dict[str, list[VerdictStatus]] = {}
        for row in report.credentials:
            by_kind.setdefault(row.credential.kind, []).append(row.verdict.status)
        # The application's secret is refused too once the principal is disabled.
        assert by_kind == {
            "azure.client-secret": [VerdictStatus.DEAD] * 2,
            "azure.application-secret": [VerdictStatus.DEAD],
            "azure.application-certificate": [VerdictStatus.UNVERIFIED],
        }
        [app_secret] = [
            r for r in report.credentials if r.credential.kind == "azure.application-secret"
        ]
        assert "AADSTS7000112" in app_secret.verdict.evidence

        request = Request(
            agent_id, "retire", "test", mode=Mode.BREAK_GLASS, workflow=Workflow.DECOMMISSION
        )
        retired = pipeline.contain(runtime, request)
        assert retired.ok, retired.errors
        principal = runtime.revokers["azure"].graph.get(principal_of(runtime, agent_id))  # type: ignore[attr-defined]
    application = azure_fleet.application_of(
        azure, azure_fleet.graph_token(azure), principal["appId"]
    )
    assert principal["passwordCredentials"] == []
    assert application["passwordCredentials"] == [] and application["keyCredentials"] == []
    operations = {r.action.operation for c in retired.credentials for r in c.actions}
    assert {"remove-application-password", "remove-application-certificate"} <= operations


@pytest.mark.parametrize("status", [400, 503])
@pytest.mark.parametrize("code", [90024, 90033])
def test_entra_service_errors_are_never_dead(
    settings: Settings, seed_agent: SeedAgent, azure: azure_fleet.Azure, code: int, status: int
) -> None:
    agent_id = seed_agent("az", only=("aws", "azure"))
    with provider_runtime(settings, "azure") as runtime:
        app_id = runtime.revokers["azure"].graph.tagged(f"agent-id={agent_id}")[0]["appId"]  # type: ignore[attr-defined]
    modes.set_token_fault(azure.info, app_id, code, status=status)  # every request of the app
    try:
        with provider_runtime(settings, "azure", probe_deadline_s=2.0) as runtime:
            report = contain(runtime, agent_id)
    finally:
        modes.set_token_fault(azure.info, app_id, None)
    assert not report.ok  # unknown: the run says it could not prove the kill
    assert len(report.credentials) == 2
    for row in report.credentials:
        assert row.verdict.status is VerdictStatus.UNKNOWN, row.verdict
        # Entra's words when azure-identity keeps them (a 4xx); MSAL keeps only a 5xx's status.
        assert (f"AADSTS{code}" if status < 500 else f"HTTP Error: {status}") in (
            row.verdict.evidence
        )


def test_propagation_delay_still_ends_dead_after_it_and_says_when(
    settings: Settings, seed_agent: SeedAgent, azure: azure_fleet.Azure
) -> None:
    delay = 5.0
    agent_id = seed_agent("az", only=("aws", "azure"))
    modes.set_propagation(azure.info, delay)
    try:
        with provider_runtime(settings, "azure", probe_deadline_s=30.0) as runtime:
            report = contain(runtime, agent_id)
    finally:
        modes.set_propagation(azure.info, 0)
    assert report.ok, report.errors
    for row in report.credentials:
        verdict = row.verdict
        assert verdict.status is VerdictStatus.DEAD, verdict
        # Accepted while the change propagated: the rejections began only once the delay
        # (counted from the disable, somewhere inside the containment step) had passed.
        since = float(verdict.evidence.split("rejected since ")[1].split("s")[0])
        assert since >= delay - report.timings.contain_s - 1.0, (verdict.evidence, report.timings)
        assert "settle window" in verdict.evidence
    assert report.timings.total_s >= delay


def test_group_memberships_can_be_left_alone_and_are_reported(
    settings: Settings, seed_agent: SeedAgent, azure: azure_fleet.Azure
) -> None:
    agent_id = seed_agent("az", only=("aws", "azure"))
    with provider_runtime(settings, "azure") as runtime:
        agent = principal_of(runtime, agent_id)
    team = azure_fleet.group(azure, f"{agent_id}-team", [agent])
    shared = azure_fleet.assign(azure, azure.subscription_scope, CONTRIBUTOR, team, "Group")
    section = settings.section("azure", AzureSettings)
    alone = section.model_copy(update={"detach_group_memberships": False})
    with provider_runtime(settings, "azure", azure=alone) as runtime:
        report = contain(runtime, agent_id)
    assert report.ok, report.errors
    assert {r.action.operation for r in report.grants_detached} == {"delete-role-assignment"}
    assert members_of(azure, team) == {agent}  # left alone: the operator decides
    reported = {(g.kind, g.ref.lower()) for g in report.plan.grants}
    assert ("azure.group-role-assignment", shared.lower()) in reported
    assert ("azure.group-membership", f"groups/{team}/members/{agent}") in reported


def test_each_probe_is_a_token_request_of_its_own_answered_by_entra(
    azure: azure_fleet.Azure,
) -> None:
    """The probes' token requests share one tenant's token endpoint (read once from its
    OpenID configuration), never an answer: a refused secret and a live one, in turns, each
    get the stand-in's own answer."""
    from revokers.azure.probes import TokenRequests

    info = azure.info
    tokens = TokenRequests(info["authority"], info["ca_cert"], 10.0)
    scope = "https://management.azure.com/.default"
    try:
        for _ in range(2):
            live = tokens.probe(info["tenant_id"], info["client_id"], info["client_secret"], scope)
            assert live.outcome.value == "accepted", live.evidence
            wrong = tokens.probe(info["tenant_id"], info["client_id"], "not-the-secret", scope)
            assert wrong.outcome.value == "rejected" and wrong.code == "AADSTS7000215"
            assert "invalid client secret" in wrong.evidence
        assert list(tokens._endpoints) == [info["tenant_id"]]  # noqa: SLF001  (read once)
    finally:
        tokens.close()
