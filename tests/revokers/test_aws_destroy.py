"""Decommission removes every way into an IAM user before DeleteUser, against a moto taught
IAM's real DeleteConflict rule and its service-specific credentials (Git credentials)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from killswitch import pipeline
from killswitch.models import VerdictStatus
from killswitch.request import Mode, Request, Workflow
from killswitch.runtime import Runtime
from killswitch.sandbox.aws import fleet
from tests.conftest import SeedAgent
from tests.revokers.saas import runtime_of

pytestmark = pytest.mark.integration


runtime = runtime_of("aws")


def held_by(iam: Any, user: str) -> dict[str, int]:
    """What a user still holds besides its keys and policies."""
    return {
        "service": len(
            iam.list_service_specific_credentials(UserName=user)["ServiceSpecificCredentials"]
        ),
        "ssh": len(iam.list_ssh_public_keys(UserName=user)["SSHPublicKeys"]),
        "certs": len(iam.list_signing_certificates(UserName=user)["Certificates"]),
        "mfa": len(iam.list_mfa_devices(UserName=user)["MFADevices"]),
    }


def test_the_stand_in_refuses_delete_user_while_a_git_credential_is_left(
    seed_agent: SeedAgent, admin: fleet.Admin
) -> None:
    agent_id = seed_agent(aws={"users": (("git", 0),), "role": False, "groups": ()}, only=("aws",))
    iam = admin.iam()
    user = f"{agent_id}-git"
    for name in iam.list_user_policies(UserName=user)["PolicyNames"]:
        iam.delete_user_policy(UserName=user, PolicyName=name)
    for policy in iam.list_attached_user_policies(UserName=user)["AttachedPolicies"]:
        iam.detach_user_policy(UserName=user, PolicyArn=policy["PolicyArn"])
    created = iam.create_service_specific_credential(
        UserName=user, ServiceName="codecommit.amazonaws.com"
    )["ServiceSpecificCredential"]
    assert created["ServiceUserName"] and created["ServicePassword"]
    listed = iam.list_service_specific_credentials(UserName=user)["ServiceSpecificCredentials"]
    assert [c["ServiceSpecificCredentialId"] for c in listed] == [
        created["ServiceSpecificCredentialId"]
    ]
    assert "ServicePassword" not in listed[0]

    with pytest.raises(ClientError) as refused:
        iam.delete_user(UserName=user)
    assert refused.value.response["Error"]["Code"] == "DeleteConflict"
    assert "service-specific" in refused.value.response["Error"]["Message"]

    iam.delete_service_specific_credential(
        UserName=user, ServiceSpecificCredentialId=created["ServiceSpecificCredentialId"]
    )
    iam.delete_user(UserName=user)


def test_decommission_removes_every_way_in_and_the_user_is_gone(
    runtime: Runtime, seed_agent: SeedAgent, admin: fleet.Admin
) -> None:
    agent_id = seed_agent(
        aws={"users": (("runtime", 1),), "role": False, "sign_in": True}, only=("aws",)
    )
    iam = admin.iam()
    user = f"{agent_id}-runtime"
    assert held_by(iam, user) == {"service": 2, "ssh": 1, "certs": 1, "mfa": 1}

    report = pipeline.contain(
        runtime,
        Request(agent_id, "retired", "test", mode=Mode.BREAK_GLASS, workflow=Workflow.DECOMMISSION),
    )

    assert report.ok, [(c.credential.ref, c.verdict, c.actions) for c in report.credentials]
    assert {c.verdict.status for c in report.credentials} == {VerdictStatus.DEAD}
    with pytest.raises(ClientError) as gone:
        iam.get_user(UserName=user)
    assert gone.value.response["Error"]["Code"] == "NoSuchEntity"
    results = [*report.other_actions, *(r for c in report.credentials for r in c.actions)]
    stripped = [r.detail for r in results if r.action.operation == "strip-user"]
    assert stripped and "codecommit.amazonaws.com credential" in stripped[0]
    assert "bedrock.amazonaws.com credential" in stripped[0]
    assert "MFA device" in stripped[0] and "signing certificate" in stripped[0]


def test_account_authorization_details_are_paged_as_iam_pages_them(admin: fleet.Admin) -> None:
    """The stand-in pages GetAccountAuthorizationDetails (moto answers it whole): a marker
    followed to the end gives every principal once; MaxItems above 1,000 is refused."""
    iam = admin.iam()
    whole = iam.get_account_authorization_details(Filter=["User", "Role"], MaxItems=1000)
    assert not whole["IsTruncated"]
    every = [u["UserName"] for u in whole["UserDetailList"]] + [
        r["RoleName"] for r in whole["RoleDetailList"]
    ]
    assert len(every) > 3
    paged: list[str] = []
    marker: dict[str, str] = {}
    pages = 0
    while True:
        page = iam.get_account_authorization_details(Filter=["User", "Role"], MaxItems=2, **marker)
        pages += 1
        names = [u["UserName"] for u in page["UserDetailList"]]
        names += [r["RoleName"] for r in page["RoleDetailList"]]
        assert len(names) <= 2
        paged += names
        if not page["IsTruncated"]:
            break
        marker = {"Marker": page["Marker"]}
    assert paged == every and pages == -(-len(every) // 2)
    with pytest.raises(ClientError, match="maxItems") as caught:  # botocore refuses 0 itself
        iam.get_account_authorization_details(MaxItems=1001)
    assert caught.value.response["Error"]["Code"] == "ValidationError"
