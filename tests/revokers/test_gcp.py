"""GCP through the real google-cloud-iam and resource-manager clients, against the gRPC
stand-in: contain, prove, restore, bindings; and the stand-in's own fidelity."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import googleapiclient
import pytest
from google.api_core import exceptions as gexc

from killswitch import pipeline, restoration
from killswitch.errors import OwnIdentityError
from killswitch.models import Action, ActionResult, Credential, Outcome, Verb, VerdictStatus
from killswitch.request import Mode, Request, Workflow
from killswitch.sandbox.gcp import fleet as gcp_fleet
from killswitch.sandbox.gcp.state import PROJECT
from killswitch.sandbox.gcp.token import set_clock_skew
from killswitch.secrets import KeyringFile, Material, Secret, Stores
from killswitch.settings import Settings
from revokers.base import ProbeOutcome
from revokers.gcp import operations
from revokers.gcp.client import Clients
from revokers.gcp.operations import read_policy
from revokers.gcp.revoker import GcpRevoker
from tests.conftest import SeedAgent, keyring_material
from tests.revokers.saas import contain, provider_runtime, statuses

pytestmark = pytest.mark.integration
TEMPORARY_ROLE = "roles/storage.objectAdmin"


def email_of(agent_id: str) -> str:
    return f"{gcp_fleet.account_id(agent_id)}@{PROJECT}.iam.gserviceaccount.com"


def bindings(clients: Clients) -> dict[str, set[str]]:
    policy = read_policy(clients, PROJECT)
    return {b.role: set(b.members) for b in policy.bindings}


def every_binding(clients: Clients) -> set[tuple[str, str, str, str]]:
    """(role, member, condition title, condition expression) for every member of every
    binding: conditions included, so that a restore is compared exactly."""
    policy = read_policy(clients, PROJECT)
    return {
        (b.role, m, b.condition.title, b.condition.expression)
        for b in policy.bindings
        for m in b.members
    }


def add_conditional(clients: Clients, role: str, member: str, title: str, until: str) -> None:
    """A conditional binding of `member` to `role`, written at version 3 with the etag."""
    policy = read_policy(clients, PROJECT)
    binding = policy.bindings.add(role=role, members=[member])
    binding.condition.expression = f'request.time < timestamp("{until}")'
    binding.condition.title = title
    policy.version = 3
    clients.projects.set_iam_policy(request={"resource": f"projects/{PROJECT}", "policy": policy})


def test_contain_refuses_every_key_a_token_and_restore_brings_them_back(
    settings: Settings, seed_agent: SeedAgent, gcp: gcp_fleet.Gcp, material_store: Stores
) -> None:
    agent_id = seed_agent("gcp", only=("aws", "gcp", "azure"))
    other = seed_agent("gcp", only=("aws", "gcp", "azure"))
    clients = gcp.clients()
    # A key minted just before the run (the attacker's, say) is found and killed too.
    fresh = gcp_fleet.add_key(clients, material_store, email_of(agent_id), agent_id)
    member = f"serviceAccount:{email_of(agent_id)}"
    # A conditional binding grants too: it must come off, and back with its condition.
    add_conditional(clients, TEMPORARY_ROLE, member, "until 2030", "2030-01-01T00:00:00Z")
    before = bindings(clients)
    assert member in before[gcp_fleet.OWN_ROLE] and member in before[gcp_fleet.SHARED_ROLE]
    with provider_runtime(settings, "gcp") as runtime:
        assert set(statuses(runtime, agent_id, "gcp")) == {VerdictStatus.ALIVE}
        report = contain(runtime, agent_id)
        assert report.ok, report.errors
        verdicts = {c.credential.ref: c.verdict for c in report.credentials}
        assert fresh in verdicts and len(verdicts) == 4  # 2 + 1 of the CI account + the fresh one
        for verdict in verdicts.values():
            assert verdict.status is VerdictStatus.DEAD
            assert "invalid_grant" in verdict.evidence
        assert set(statuses(runtime, other, "gcp")) == {VerdictStatus.ALIVE}
        account = clients.iam.get_service_account(
            name=f"projects/-/serviceAccounts/{email_of(agent_id)}"
        )
        assert account.disabled
        after = bindings(clients)
        assert member not in after.get(gcp_fleet.OWN_ROLE, set())
        assert member not in after[gcp_fleet.SHARED_ROLE]
        assert f"serviceAccount:{email_of(other)}" in after[gcp_fleet.SHARED_ROLE]
        assert member not in after.get(TEMPORARY_ROLE, set())
        assert {r.action.target for r in report.grants_detached} == {
            gcp_fleet.OWN_ROLE,
            gcp_fleet.SHARED_ROLE,
            gcp_fleet.CI_ROLE,
            TEMPORARY_ROLE,
        }

        again = contain(runtime, agent_id)  # idempotent: everything is in place already
        assert again.ok
        assert all(r.outcome is not Outcome.DONE for c in again.credentials for r in c.actions)
        assert not again.grants_detached

        restored = restoration.restore(
            runtime, Request(agent_id, "false positive", "test", mode=Mode.BREAK_GLASS)
        )
        assert restored.ok, restored.errors
        assert set(statuses(runtime, agent_id, "gcp")) == {VerdictStatus.ALIVE}
        assert bindings(clients) == before  # exactly the bindings it had
        restored_policy = read_policy(clients, PROJECT)
        [back] = [b for b in restored_policy.bindings if b.role == TEMPORARY_ROLE]
        assert back.condition.title == "until 2030" and member in back.members
    clients.close()


def test_stand_in_messages_round_trip_and_match_the_discovery_document(
    gcp: gcp_fleet.Gcp, seed_agent: SeedAgent
) -> None:
    agent_id = seed_agent(
        "gcp", only=("aws", "gcp", "azure"), aws={"users": (("runtime", 1),), "role": False}
    )
    clients = gcp.clients()
    account = clients.iam.get_service_account(
        name=f"projects/-/serviceAccounts/{email_of(agent_id)}"
    )
    assert account.email == email_of(agent_id) and account.project_id == PROJECT
    assert account.name == f"projects/{PROJECT}/serviceAccounts/{account.email}"
    assert f"agent-id={agent_id}" in account.description
    keys = clients.iam.list_service_account_keys(request={"name": account.name}).keys
    assert len(keys) == 2 and all(not k.private_key_data for k in keys)
    listed = list(
        clients.iam.list_service_accounts(request={"name": f"projects/{PROJECT}", "page_size": 2})
    )
    assert account.email in {a.email for a in listed} and len(listed) > 2  # paged through
    # Field names as Google's REST description of the same resources.
    document = Path(googleapiclient.__file__).parent / "discovery_cache/documents/iam.v1.json"
    schemas = json.loads(document.read_text())["schemas"]
    for message, schema in ((account, "ServiceAccount"), (keys[0], "ServiceAccountKey")):
        fields = set(json.loads(type(message).to_json(message)))
        assert fields <= set(schemas[schema]["properties"]), (
            schema,
            fields - set(schemas[schema]["properties"]),
        )
    clients.close()


def test_unknown_names_are_not_found_like_google_and_a_deleted_key_gets_no_token(
    settings: Settings,
    gcp: gcp_fleet.Gcp,
    seed_agent: SeedAgent,
    material_store: Stores,
    keyring: KeyringFile,
) -> None:
    clients = gcp.clients()
    nobody = f"projects/-/serviceAccounts/nobody@{PROJECT}.iam.gserviceaccount.com"
    with pytest.raises(gexc.NotFound, match=r"Service account .* does not exist\."):
        clients.iam.get_service_account(name=nobody)
    with pytest.raises(gexc.NotFound, match=r"Service account key .* does not exist\."):
        clients.iam.disable_service_account_key(request={"name": f"{nobody}/keys/0123"})
    agent_id = seed_agent(
        "gcp", only=("aws", "gcp", "azure"), aws={"users": (("runtime", 1),), "role": False}
    )
    ref = gcp_fleet.add_key(clients, material_store, email_of(agent_id), agent_id)
    kind = "gcp.service-account-key"
    fields = keyring_material(keyring, kind, ref)
    key = Material("keyring", {k: Secret(v) for k, v in fields.items()})
    credential = Credential("gcp", kind, ref, "", agent_id)
    revoker = GcpRevoker.from_settings(settings)
    try:
        assert revoker.probe(credential, key).outcome is ProbeOutcome.ACCEPTED
        clients.iam.delete_service_account_key(
            request={"name": f"projects/{PROJECT}/serviceAccounts/{ref.replace('/', '/keys/')}"}
        )
        refused = revoker.probe(credential, key)
        assert refused.outcome is ProbeOutcome.REJECTED and "invalid_grant" in refused.evidence
    finally:
        revoker.close()
        clients.close()


def test_decommission_deletes_keys_then_the_accounts_and_proves_it(
    settings: Settings, seed_agent: SeedAgent, gcp: gcp_fleet.Gcp
) -> None:
    agent_id = seed_agent(
        "gcp", only=("aws", "gcp", "azure"), aws={"users": (("runtime", 1),), "role": False}
    )
    with provider_runtime(settings, "gcp") as runtime:
        request = Request(
            agent_id, "retire", "test", mode=Mode.BREAK_GLASS, workflow=Workflow.DECOMMISSION
        )
        report = pipeline.contain(runtime, request)
    assert report.ok, report.errors
    assert {c.verdict.status for c in report.credentials} == {VerdictStatus.DEAD}
    deleted = [r.action.operation for r in report.other_actions if r.outcome is Outcome.DONE]
    assert deleted.count("delete-service-account") == 2
    assert (
        sum(r.action.operation == "delete-key" for c in report.credentials for r in c.actions) == 3
    )
    clients = gcp.clients()
    try:
        with pytest.raises(gexc.NotFound):
            clients.iam.get_service_account(name=f"projects/-/serviceAccounts/{email_of(agent_id)}")
        # Google marks the bindings of a deleted account `deleted:`; containment removed them first.
        assert not any(email_of(agent_id) in m for ms in bindings(clients).values() for m in ms)
    finally:
        clients.close()


def test_conditional_bindings_are_read_and_written_at_version_3_and_restored_exactly(
    settings: Settings, seed_agent: SeedAgent, gcp: gcp_fleet.Gcp
) -> None:
    agent_id = seed_agent(
        "gcp", only=("aws", "gcp", "azure"), aws={"users": (("runtime", 1),), "role": False}
    )
    clients = gcp.clients()
    member = f"serviceAccount:{email_of(agent_id)}"
    bystander = "user:oncall@example.com"
    # The same role, conditional for both: one for the agent, one for someone else.
    add_conditional(clients, TEMPORARY_ROLE, member, "agent until 2031", "2031-01-01T00:00:00Z")
    add_conditional(clients, TEMPORARY_ROLE, bystander, "on-call 2032", "2032-01-01T00:00:00Z")
    gcp_fleet.bind(clients, TEMPORARY_ROLE, member)  # and the same role unconditionally
    before = every_binding(clients)
    assert {(r, m, t) for r, m, t, _ in before if m == member and r == TEMPORARY_ROLE} == {
        (TEMPORARY_ROLE, member, "agent until 2031"),
        (TEMPORARY_ROLE, member, ""),
    }
    theirs = {b for b in before if b[1] == bystander}
    assert theirs == {
        (
            TEMPORARY_ROLE,
            bystander,
            "on-call 2032",
            'request.time < timestamp("2032-01-01T00:00:00Z")',
        )
    }
    try:
        with provider_runtime(settings, "gcp") as runtime:
            report = contain(runtime, agent_id)
            assert report.ok, report.errors
            detached = [r.action.target for r in report.grants_detached]
            assert detached.count(TEMPORARY_ROLE) == 1  # one action for both bindings
            after = every_binding(clients)
            assert not any(b[1] == member for b in after)
            assert {b for b in after if b[1] == bystander} == theirs  # intact, condition too
            assert read_policy(clients, PROJECT).version == 3

            restored = restoration.restore(
                runtime, Request(agent_id, "false positive", "test", mode=Mode.BREAK_GLASS)
            )
            assert restored.ok, restored.errors
            assert every_binding(clients) == before
    finally:
        clients.close()


def test_the_stand_in_refuses_version_1_once_a_binding_has_a_condition(
    gcp: gcp_fleet.Gcp,
) -> None:
    clients = gcp.clients()
    resource = f"projects/{PROJECT}"
    try:
        add_conditional(
            clients,
            TEMPORARY_ROLE,
            "user:auditor@example.com",
            "audit 2033",
            "2033-01-01T00:00:00Z",
        )
        # A read without requested_policy_version=3 (as the revoker did before).
        with pytest.raises(gexc.InvalidArgument, match=r"Requested policy version \(0\) cannot"):
            clients.projects.get_iam_policy(request={"resource": resource})
        policy = read_policy(clients, PROJECT)
        assert policy.version == 3
        # A read-modify-write that keeps the etag but says version 1.
        policy.version = 1
        with pytest.raises(gexc.InvalidArgument, match=r"Specified policy version \(1\) cannot"):
            clients.projects.set_iam_policy(request={"resource": resource, "policy": policy})
        # A new conditional binding at version 1 is refused too.
        plain = read_policy(clients, PROJECT)
        extra = plain.bindings.add(role="roles/viewer", members=["user:x@example.com"])
        extra.condition.expression = "true"
        plain.version = 1
        with pytest.raises(gexc.InvalidArgument):
            clients.projects.set_iam_policy(request={"resource": resource, "policy": plain})
    finally:
        policy = read_policy(clients, PROJECT)
        for binding in policy.bindings:
            if "user:auditor@example.com" in binding.members:
                binding.members.remove("user:auditor@example.com")
        policy.version = 3
        clients.projects.set_iam_policy(request={"resource": resource, "policy": policy})
        clients.close()


def test_a_clock_skew_invalid_grant_is_never_dead(
    settings: Settings, seed_agent: SeedAgent, saas_url: str
) -> None:
    agent_id = seed_agent(
        "gcp", only=("aws", "gcp", "azure"), aws={"users": (("runtime", 1),), "role": False}
    )
    http_url = saas_url  # the shared app, direct
    emails = [
        email_of(agent_id),
        f"{gcp_fleet.account_id(agent_id, 'ci')}@{PROJECT}.iam.gserviceaccount.com",
    ]
    for email in emails:
        set_clock_skew(http_url, email)
    try:
        with provider_runtime(settings, "gcp", probe_deadline_s=3.0) as runtime:
            report = contain(runtime, agent_id)
        assert not report.ok  # an unknown verdict fails the run
        assert len(report.credentials) == 3
        for row in report.credentials:
            # The keys are disabled, but the provider's answer proves nothing: never dead.
            assert row.verdict.status is VerdictStatus.UNKNOWN, row.verdict
            assert "short-lived token (60 minutes)" in row.verdict.evidence
            assert "clock-skew" in row.verdict.evidence
    finally:
        for email in emails:
            set_clock_skew(http_url, email, on=False)


class CountingProjects:
    """Google's Projects client, its SetIamPolicy calls counted (Google's client, not ours)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.writes = 0
        self.lock = threading.Lock()

    def get_iam_policy(self, **kwargs: Any) -> Any:
        return self.inner.get_iam_policy(**kwargs)

    def set_iam_policy(self, **kwargs: Any) -> Any:
        with self.lock:
            self.writes += 1
        return self.inner.set_iam_policy(**kwargs)


def remove_binding(member: str) -> Action:
    return Action(
        "gcp",
        Verb.DETACH,
        "remove-binding",
        member,
        TEMPORARY_ROLE,
        True,
        params={"role": TEMPORARY_ROLE, "member": member},
    )


def test_concurrent_binding_removals_share_one_read_modify_write(gcp: gcp_fleet.Gcp) -> None:
    """A fleet's agents unbound at once in one process: every removal done, none ABORTED
    (none retried: `perform` does not retry), in fewer policy writes than removals."""
    clients = gcp.clients()
    members = [f"serviceAccount:fleet-{n}@{PROJECT}.iam.gserviceaccount.com" for n in range(16)]
    for member in members:
        gcp_fleet.bind(clients, TEMPORARY_ROLE, member)
    counting = CountingProjects(clients.projects)
    shared = Clients(clients.iam, cast(Any, counting), clients.channel)
    start = threading.Barrier(len(members))

    def unbind(member: str) -> ActionResult:
        start.wait()
        return operations.perform(shared, PROJECT, remove_binding(member))

    try:
        with ThreadPoolExecutor(len(members)) as pool:
            results = list(pool.map(unbind, members))
        assert [r.outcome for r in results] == [Outcome.DONE] * len(members), [
            r.detail for r in results
        ]
        assert all(r.undo == {"role": TEMPORARY_ROLE, "conditions": [None]} for r in results)
        assert not set(members) & bindings(clients).get(TEMPORARY_ROLE, set())
        assert counting.writes < len(members) / 2, counting.writes
        # Again: nothing left to remove, so nothing written.
        again = operations.perform(shared, PROJECT, remove_binding(members[0]))
        assert (again.outcome, again.detail) == (Outcome.ALREADY, "not bound already")
        assert counting.writes < len(members) / 2
    finally:
        clients.close()


def test_a_failed_policy_read_fails_every_edit_of_its_batch_each_with_its_own_error(
    gcp: gcp_fleet.Gcp,
) -> None:
    """The project cannot be read (denied, as Google answers for one that may not exist):
    every caller of the batch is told so, with an error of its own to raise."""
    clients = gcp.clients()
    start = threading.Barrier(4)

    def unbind(n: int) -> BaseException | None:
        start.wait()
        try:
            operations.perform(clients, "no-such-project", remove_binding(f"user:{n}@x.io"))
        except OwnIdentityError as error:
            return error
        return None

    try:
        with ThreadPoolExecutor(4) as pool:
            errors = list(pool.map(unbind, range(4)))
        assert all(isinstance(e, OwnIdentityError) for e in errors), errors
        assert all("PERMISSION_DENIED" in str(e) for e in errors)
        causes = {id(e.__cause__) for e in errors if e is not None}
        assert len(causes) == 4  # each caller raised a copy, never one object in four threads
    finally:
        clients.close()
