"""The AWS revoker against a real moto server (auth enforced), through the containment engine."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from killswitch import pipeline, restoration
from killswitch.errors import (
    InvalidAgentIdError,
    NothingToRestoreError,
    ProtectedIdentityError,
    UnknownAgentError,
)
from killswitch.models import AgentStatus, ContainmentReport, Credential, Outcome, VerdictStatus
from killswitch.request import Mode, Request, Workflow
from killswitch.runtime import Runtime
from killswitch.sandbox.aws import fleet
from killswitch.secrets import KeyringFile, MappingSource
from killswitch.verdicts import check_alive
from revokers.aws.probes import probe
from revokers.base import ProbeOutcome
from tests.conftest import SeedAgent
from tests.revokers.saas import runtime_of

pytestmark = pytest.mark.integration


# AWS alone: these tests count and compare AWS state only.
runtime = runtime_of("aws")


def contain(runtime: Runtime, agent_id: str, **kw: Any) -> ContainmentReport:
    request = Request(agent_id=agent_id, reason="test", actor="test", mode=Mode.BREAK_GLASS, **kw)
    return pipeline.contain(runtime, request)


def snapshot(admin: fleet.Admin) -> dict[str, Any]:
    """Every principal's tags, groups, policies and key states: 'nothing changed' is equality."""
    iam = admin.iam()
    state: dict[str, Any] = {}
    details = iam.get_account_authorization_details(Filter=["User", "Role"])
    for user in details["UserDetailList"]:
        keys = iam.list_access_keys(UserName=user["UserName"])["AccessKeyMetadata"]
        state[user["Arn"]] = (
            sorted(user.get("GroupList", [])),
            sorted(p["PolicyArn"] for p in user.get("AttachedManagedPolicies", [])),
            sorted(p["PolicyName"] for p in user.get("UserPolicyList", [])),
            sorted((k["AccessKeyId"], k["Status"]) for k in keys),
        )
    for role in details["RoleDetailList"]:
        state[role["Arn"]] = (
            sorted(p["PolicyArn"] for p in role.get("AttachedManagedPolicies", [])),
            sorted(p["PolicyName"] for p in role.get("RolePolicyList", [])),
        )
    return state


def alive_everywhere(runtime: Runtime, agent_id: str) -> list[VerdictStatus]:
    agent = runtime.inventory.get_agent(agent_id)
    assert agent is not None
    revoker = runtime.revokers["aws"]
    found = revoker.discover(agent, [])
    return [
        check_alive(revoker, c, runtime.secrets.materials(c), deadline_s=0, interval_s=0).status
        for c in found.credentials
        if runtime.secrets.materials(c)
    ]


def test_discovery_finds_exactly_the_agents_principals(
    runtime: Runtime, seed_agent: SeedAgent
) -> None:
    mine, other = seed_agent(), seed_agent()
    agent = runtime.inventory.get_agent(mine)
    assert agent is not None
    found = runtime.revokers["aws"].discover(agent, runtime.inventory.declared(mine))
    kinds = sorted(c.kind for c in found.credentials)
    assert kinds == ["aws.access-key"] * 3 + ["aws.role"]
    assert all(f"/{mine}-" in c.principal for c in found.credentials)
    assert not any(other in c.principal for c in found.credentials)
    grants = {(g.kind, g.ref.rsplit("/", 1)[-1]) for g in found.grants}
    assert ("aws.group-membership", "agents-readonly") in grants
    assert ("aws.managed-policy", "agent-runtime") in grants
    assert all(not a.in_place for a in found.actions)


def test_contain_kills_every_key_including_ones_created_just_before(
    runtime: Runtime, seed_agent: SeedAgent, admin: fleet.Admin, keyring: KeyringFile
) -> None:
    agent_id = seed_agent(aws={"users": (("runtime", 1), ("ci", 1))})
    known = fleet.add_key(admin, keyring, f"{agent_id}-runtime")
    backdoor = fleet.add_key(admin, keyring, f"{agent_id}-ci", remember=False)
    before = alive_everywhere(runtime, agent_id)
    assert before and set(before) == {VerdictStatus.ALIVE}

    report = contain(runtime, agent_id)

    verdicts = {c.credential.ref: c.verdict for c in report.credentials}
    assert verdicts[known["access_key_id"]].status is VerdictStatus.DEAD
    assert "AccessDenied" in verdicts[known["access_key_id"]].evidence
    # No secret material for the attacker's key: contained, read back, but never called dead.
    unverified = verdicts[backdoor["access_key_id"]]
    assert unverified.status is VerdictStatus.UNVERIFIED
    assert "key Inactive" in unverified.evidence and "attached" in unverified.evidence
    assert unverified.to_prove
    others = [v for ref, v in verdicts.items() if ref != backdoor["access_key_id"]]
    assert len(others) == 4 and all(v.status is VerdictStatus.DEAD for v in others)
    assert report.ok and report.ledger_verified
    assert runtime.inventory.get_agent(agent_id).status is AgentStatus.CONTAINED  # type: ignore[union-attr]
    # The test holds the backdoor's secret: the key really is dead at the provider.
    iam = fleet.client(
        "iam", admin.endpoint_url, backdoor["access_key_id"], backdoor["secret_access_key"]
    )
    with pytest.raises(ClientError) as denied:
        iam.get_user()
    assert denied.value.response["Error"]["Code"] == "AccessDenied"


def test_probe_with_leaked_material_proves_the_backdoor_dead(
    runtime: Runtime, seed_agent: SeedAgent, admin: fleet.Admin, keyring: KeyringFile
) -> None:
    agent_id = seed_agent(aws={"users": (("runtime", 1),)})
    leaked = fleet.add_key(admin, keyring, f"{agent_id}-runtime", remember=False)
    alert = MappingSource("alert", {f"aws.access-key:{leaked['access_key_id']}": [leaked]})
    report = contain(runtime.with_secrets(alert), agent_id)
    verdict = {c.credential.ref: c.verdict for c in report.credentials}[leaked["access_key_id"]]
    assert verdict.status is VerdictStatus.DEAD


def test_other_agents_are_untouched(runtime: Runtime, seed_agent: SeedAgent) -> None:
    target, bystander = seed_agent(), seed_agent()
    report = contain(runtime, target)
    assert report.ok
    assert set(alive_everywhere(runtime, bystander)) == {VerdictStatus.ALIVE}
    assert runtime.inventory.get_agent(bystander).status is AgentStatus.ACTIVE  # type: ignore[union-attr]


def test_contain_twice_is_a_no_op_the_second_time(
    runtime: Runtime, seed_agent: SeedAgent, admin: fleet.Admin
) -> None:
    agent_id = seed_agent()
    first = contain(runtime, agent_id)
    assert first.ok
    after_first = snapshot(admin)
    undo_count = len(runtime.inventory.pending_undo(agent_id))

    second = contain(runtime, agent_id)

    assert second.ok
    results = [r for c in second.credentials for r in c.actions] + list(second.grants_detached)
    assert all(a.in_place for a in second.plan.actions if a.verb.value == "contain")
    assert not second.grants_detached  # nothing left to detach
    assert all(r.outcome is Outcome.ALREADY for r in results)
    assert len(runtime.inventory.pending_undo(agent_id)) == undo_count
    assert snapshot(admin) == after_first
    # Already rejected before the second containment: the second run stands on the first
    # run's baseline, taken before that run revoked them (killswitch/carried.py).
    assert {c.verdict.status for c in second.credentials} == {VerdictStatus.DEAD}
    assert all(
        f"baseline carried from run {first.run_id[:12]}" in c.verdict.evidence
        for c in second.credentials
    )


def test_restore_brings_the_agent_back_exactly(
    runtime: Runtime, seed_agent: SeedAgent, admin: fleet.Admin
) -> None:
    agent_id = seed_agent()
    before = snapshot(admin)
    assert contain(runtime, agent_id).ok
    assert snapshot(admin) != before

    report = restoration.restore(
        runtime, Request(agent_id, "false positive", "test", mode=Mode.BREAK_GLASS)
    )

    assert report.ok, report
    assert snapshot(admin) == before
    assert report.checks and {v.status for _, v in report.checks} == {VerdictStatus.ALIVE}
    assert runtime.inventory.get_agent(agent_id).status is AgentStatus.ACTIVE  # type: ignore[union-attr]
    with pytest.raises(NothingToRestoreError):
        restoration.restore(runtime, Request(agent_id, "again", "test", mode=Mode.BREAK_GLASS))


def test_restore_leaves_alone_what_was_already_off(
    runtime: Runtime, seed_agent: SeedAgent, admin: fleet.Admin, keyring: KeyringFile
) -> None:
    agent_id = seed_agent(aws={"users": (("runtime", 1),), "role": False})
    spare = fleet.add_key(admin, keyring, f"{agent_id}-runtime")
    admin.iam().update_access_key(
        UserName=f"{agent_id}-runtime", AccessKeyId=spare["access_key_id"], Status="Inactive"
    )
    assert contain(runtime, agent_id).ok
    restoration.restore(runtime, Request(agent_id, "false positive", "test", mode=Mode.BREAK_GLASS))
    keys = admin.iam().list_access_keys(UserName=f"{agent_id}-runtime")["AccessKeyMetadata"]
    assert {k["AccessKeyId"]: k["Status"] for k in keys}[spare["access_key_id"]] == "Inactive"


@pytest.mark.parametrize(
    "agent_id", ["*", "agent-*", "research-agent-?", "a[1]", "", "UPPER", "a b"]
)
def test_wildcards_and_malformed_ids_are_refused_and_nothing_changes(
    runtime: Runtime, admin: fleet.Admin, agent_id: str
) -> None:
    before = snapshot(admin)
    with pytest.raises(InvalidAgentIdError):
        contain(runtime, agent_id)
    assert snapshot(admin) == before


def test_protected_agent_is_refused_and_nothing_changes(
    runtime: Runtime, admin: fleet.Admin
) -> None:
    before = snapshot(admin)
    with pytest.raises(ProtectedIdentityError):
        contain(runtime, "breakglass")
    assert snapshot(admin) == before
    refusals = [r for r in runtime.ledger.rows(agent="breakglass") if r["outcome"] == "refused"]
    assert refusals and refusals[-1]["detail"]["code"] == "protected-identity"
    assert set(alive_everywhere_unprotected(runtime, "breakglass")) == {VerdictStatus.ALIVE}


def alive_everywhere_unprotected(runtime: Runtime, agent_id: str) -> list[VerdictStatus]:
    """Probe the break-glass user's key directly (discovery skips protected principals)."""
    iam = runtime.revokers["aws"].iam  # type: ignore[attr-defined]
    keys = iam.list_access_keys(UserName=fleet.BREAKGLASS_USER)["AccessKeyMetadata"]
    statuses = []
    for key in keys:
        credential = Credential(
            "aws",
            "aws.access-key",
            key["AccessKeyId"],
            f"arn:aws:iam::{fleet.ACCOUNT}:user/{fleet.BREAKGLASS_USER}",
            agent_id,
        )
        materials = runtime.secrets.materials(credential)
        statuses.append(
            check_alive(
                runtime.revokers["aws"], credential, materials, deadline_s=0, interval_s=0
            ).status
        )
    return statuses


def test_unknown_agent_is_refused(runtime: Runtime) -> None:
    with pytest.raises(UnknownAgentError):
        contain(runtime, "no-such-agent")


def test_protected_principal_tagged_for_an_agent_is_never_touched(
    runtime: Runtime, seed_agent: SeedAgent, admin: fleet.Admin
) -> None:
    agent_id = seed_agent(aws={"users": (("runtime", 1),), "role": False})
    iam = admin.iam()
    iam.tag_user(UserName=fleet.ADMIN_USER, Tags=[{"Key": "agent-id", "Value": agent_id}])
    try:
        report = contain(runtime, agent_id)
    finally:
        iam.untag_user(UserName=fleet.ADMIN_USER, TagKeys=["agent-id"])
    assert report.plan.protected_skipped == (
        f"arn:aws:iam::{fleet.ACCOUNT}:user/{fleet.ADMIN_USER}",
    )
    assert all(fleet.ADMIN_USER not in a.principal for a in report.plan.actions)
    assert report.ok
    iam.get_user(UserName=fleet.ADMIN_USER)  # the kill switch's own identity still works


def test_an_implicit_deny_is_never_taken_for_a_kill(
    runtime: Runtime, admin: fleet.Admin, keyring: KeyringFile
) -> None:
    iam = admin.iam()
    iam.create_user(UserName="no-permissions-user")
    material = fleet.add_key(admin, keyring, "no-permissions-user")
    credential = Credential(
        "aws",
        "aws.access-key",
        material["access_key_id"],
        f"arn:aws:iam::{fleet.ACCOUNT}:user/no-permissions-user",
        "nobody",
    )
    client = fleet.client(
        "iam", admin.endpoint_url, material["access_key_id"], material["secret_access_key"]
    )
    try:
        attempt = probe(iam, client, credential)
    finally:  # an untagged user would be an orphan in every later sweep of this sandbox
        iam.delete_access_key(UserName="no-permissions-user", AccessKeyId=material["access_key_id"])
        iam.delete_user(UserName="no-permissions-user")
    assert attempt.outcome is ProbeOutcome.INCONCLUSIVE
    assert "implicit deny" in attempt.evidence


def test_own_identity_refused_makes_the_run_fail_loudly(
    settings: Any, seed_agent: SeedAgent
) -> None:
    from pydantic import SecretStr

    agent_id = seed_agent(aws={"users": (("runtime", 1),), "role": False})
    broken = settings.model_copy(
        update={
            "aws": settings.aws.model_copy(
                update={"secret_access_key": SecretStr("not-the-secret")}
            )
        }
    )
    runtime = Runtime.open(broken)
    try:
        report = contain(runtime, agent_id)
    finally:
        runtime.close()
    assert not report.ok
    assert any("own-identity-refused" in e and "SignatureDoesNotMatch" in e for e in report.errors)


def test_decommission_deletes_the_principals_and_proves_every_key_dead(
    runtime: Runtime, seed_agent: SeedAgent, admin: fleet.Admin
) -> None:
    agent_id = seed_agent()
    iam = admin.iam()
    iam.create_login_profile(UserName=f"{agent_id}-ci", Password="Sandbox-only-1!")  # noqa: S106
    report = pipeline.contain(
        runtime,
        Request(agent_id, "retired", "test", mode=Mode.BREAK_GLASS, workflow=Workflow.DECOMMISSION),
    )
    assert report.ok, [(c.credential.ref, c.verdict) for c in report.credentials]
    assert {c.verdict.status for c in report.credentials} == {VerdictStatus.DEAD}
    evidence = {c.credential.kind: c.verdict.evidence for c in report.credentials}
    assert "InvalidClientTokenId" in evidence["aws.access-key"]
    principals = snapshot(admin)
    assert not any(agent_id in arn for arn in principals)
    phases = [r.action.phase for c in report.credentials for r in c.actions]
    assert max(phases) == 2
    assert runtime.inventory.get_agent(agent_id).status is AgentStatus.DECOMMISSIONED  # type: ignore[union-attr]
