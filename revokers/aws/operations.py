"""Contain, detach and restore operations: one IAM call each, idempotent, undo data recorded."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from killswitch.errors import KillSwitchError, NotFoundError
from killswitch.models import Action, ActionResult, Outcome
from revokers.aws.errors import translate
from revokers.aws.policies import (
    DENY_ALL,
    QUARANTINE_POLICY,
    REVOKE_SESSIONS_POLICY,
    revoke_sessions,
)
from revokers.base import Done, dispatch

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

Operation = Callable[["IAMClient", Action], Done]


def _deactivate_key(iam: IAMClient, action: Action) -> Done:
    """iam:UpdateAccessKey Status=Inactive."""
    iam.update_access_key(
        UserName=action.params["user"], AccessKeyId=action.target, Status="Inactive"
    )
    return "key set Inactive", {}


def _quarantine_user(iam: IAMClient, action: Action) -> Done:
    """iam:PutUserPolicy killswitch-quarantine (Deny * on *)."""
    iam.put_user_policy(
        UserName=action.params["user"],
        PolicyName=QUARANTINE_POLICY,
        PolicyDocument=json.dumps(DENY_ALL),
    )
    return f"inline {QUARANTINE_POLICY} (Deny * on *) attached", {}


def _quarantine_role(iam: IAMClient, action: Action) -> Done:
    """iam:PutRolePolicy killswitch-quarantine (Deny * on *)."""
    iam.put_role_policy(
        RoleName=action.params["role"],
        PolicyName=QUARANTINE_POLICY,
        PolicyDocument=json.dumps(DENY_ALL),
    )
    return f"inline {QUARANTINE_POLICY} (Deny * on *) attached", {}


def _revoke_role_sessions(iam: IAMClient, action: Action) -> Done:
    """iam:PutRolePolicy denying sessions with aws:TokenIssueTime before now."""
    now = datetime.now(UTC)
    iam.put_role_policy(
        RoleName=action.params["role"],
        PolicyName=REVOKE_SESSIONS_POLICY,
        PolicyDocument=json.dumps(revoke_sessions(now)),
    )
    return f"sessions issued before {now:%Y-%m-%dT%H:%M:%SZ} denied", {"before": now.isoformat()}


def _remove_from_group(iam: IAMClient, action: Action) -> Done:
    """iam:RemoveUserFromGroup."""
    try:
        iam.remove_user_from_group(UserName=action.params["user"], GroupName=action.target)
    except Exception as exc:
        _already_if_missing(exc, f"iam:RemoveUserFromGroup {action.target}")
        return "not a member any more", None
    return f"removed from group {action.target}", {}


def _detach_policy(iam: IAMClient, action: Action) -> Done:
    """iam:DetachUserPolicy / iam:DetachRolePolicy."""
    try:
        if "role" in action.params:
            iam.detach_role_policy(RoleName=action.params["role"], PolicyArn=action.target)
        else:
            iam.detach_user_policy(UserName=action.params["user"], PolicyArn=action.target)
    except Exception as exc:
        _already_if_missing(exc, f"detach {action.target}")
        return "not attached any more", None
    return "managed policy detached", {}


def _delete_inline(iam: IAMClient, action: Action) -> Done:
    """iam:Delete{User,Role}Policy; the document (kept for undo) comes from discovery, or
    from iam:Get{User,Role}Policy when the plan did not carry it."""
    name = action.target
    document: Any = action.params.get("document")
    try:
        if "role" in action.params:
            role = action.params["role"]
            if document is None:
                document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
            iam.delete_role_policy(RoleName=role, PolicyName=name)
        else:
            user = action.params["user"]
            if document is None:
                document = iam.get_user_policy(UserName=user, PolicyName=name)["PolicyDocument"]
            iam.delete_user_policy(UserName=user, PolicyName=name)
    except Exception as exc:
        _already_if_missing(exc, f"delete inline policy {name}")
        return "inline policy already gone", None
    return "inline policy deleted (document kept for restore)", {"document": document}


def _delete_access_key(iam: IAMClient, action: Action) -> Done:
    """iam:DeleteAccessKey."""
    try:
        iam.delete_access_key(UserName=action.params["user"], AccessKeyId=action.target)
    except Exception as exc:
        _already_if_missing(exc, f"iam:DeleteAccessKey {action.target}")
        return "key deleted already", None
    return "key deleted", {}


def _strip_user(iam: IAMClient, action: Action) -> Done:
    """Every other way in, in the order IAM's "deleting a user" documents: login profile,
    signing certificates, SSH keys, service-specific credentials (CodeCommit Git credentials,
    Keyspaces, Bedrock keys: `iam:ListServiceSpecificCredentials` without a service lists
    them all), MFA devices. DeleteUser answers DeleteConflict while any is left."""
    user = action.params["user"]
    removed = []
    try:
        iam.delete_login_profile(UserName=user)
        removed.append("console password")
    except Exception as exc:
        _already_if_missing(exc, "iam:DeleteLoginProfile")
    for cert in iam.list_signing_certificates(UserName=user).get("Certificates", []):
        iam.delete_signing_certificate(UserName=user, CertificateId=cert["CertificateId"])
        removed.append("signing certificate")
    for key in iam.list_ssh_public_keys(UserName=user).get("SSHPublicKeys", []):
        iam.delete_ssh_public_key(UserName=user, SSHPublicKeyId=key["SSHPublicKeyId"])
        removed.append("SSH key")
    for credential in _service_credentials(iam, user):
        iam.delete_service_specific_credential(
            UserName=user, ServiceSpecificCredentialId=credential["ServiceSpecificCredentialId"]
        )
        removed.append(f"{credential['ServiceName']} credential")
    for device in iam.list_mfa_devices(UserName=user).get("MFADevices", []):
        iam.deactivate_mfa_device(UserName=user, SerialNumber=device["SerialNumber"])
        if ":mfa/" in device["SerialNumber"]:
            iam.delete_virtual_mfa_device(SerialNumber=device["SerialNumber"])
        removed.append("MFA device")
    return ("removed: " + ", ".join(removed)) if removed else "no other sign-in material", {}


def _service_credentials(iam: IAMClient, user: str) -> list[dict[str, Any]]:
    """iam:ListServiceSpecificCredentials, every page (the API added Marker/IsTruncated)."""
    found: list[dict[str, Any]] = []
    marker: str | None = None
    while True:
        page: Any = (
            iam.list_service_specific_credentials(UserName=user, Marker=marker)
            if marker
            else iam.list_service_specific_credentials(UserName=user)
        )
        found += page.get("ServiceSpecificCredentials", [])
        marker = page.get("Marker") if page.get("IsTruncated") else None
        if not marker:
            return found


def _delete_user(iam: IAMClient, action: Action) -> Done:
    """What still hangs on the user (inline incl. ours, managed, groups), then DeleteUser."""
    user = action.params["user"]
    try:
        for name in iam.list_user_policies(UserName=user).get("PolicyNames", []):
            iam.delete_user_policy(UserName=user, PolicyName=name)
        for policy in iam.list_attached_user_policies(UserName=user).get("AttachedPolicies", []):
            iam.detach_user_policy(UserName=user, PolicyArn=policy["PolicyArn"])
        for group in iam.list_groups_for_user(UserName=user).get("Groups", []):
            iam.remove_user_from_group(UserName=user, GroupName=group["GroupName"])
        iam.delete_user(UserName=user)
    except Exception as exc:
        _already_if_missing(exc, f"iam:DeleteUser {user}")
        return "user deleted already", None
    return "user deleted", {}


def _delete_role(iam: IAMClient, action: Action) -> Done:
    """Inline (incl. ours) and managed policies, instance profiles, then DeleteRole."""
    role = action.params["role"]
    try:
        for name in iam.list_role_policies(RoleName=role).get("PolicyNames", []):
            iam.delete_role_policy(RoleName=role, PolicyName=name)
        for policy in iam.list_attached_role_policies(RoleName=role).get("AttachedPolicies", []):
            iam.detach_role_policy(RoleName=role, PolicyArn=policy["PolicyArn"])
        profiles = iam.list_instance_profiles_for_role(RoleName=role).get("InstanceProfiles", [])
        for profile in profiles:
            iam.remove_role_from_instance_profile(
                InstanceProfileName=profile["InstanceProfileName"], RoleName=role
            )
        iam.delete_role(RoleName=role)
    except Exception as exc:
        _already_if_missing(exc, f"iam:DeleteRole {role}")
        return "role deleted already", None
    return "role deleted", {}


def _already_if_missing(exc: Exception, doing: str) -> None:
    error = translate(exc, doing=doing)
    if not isinstance(error, NotFoundError):
        raise error from exc


CONTAIN: dict[str, Operation] = {
    "deactivate-key": _deactivate_key,
    "quarantine-user": _quarantine_user,
    "quarantine-role": _quarantine_role,
    "revoke-role-sessions": _revoke_role_sessions,
    "remove-from-group": _remove_from_group,
    "detach-user-policy": _detach_policy,
    "detach-role-policy": _detach_policy,
    "delete-user-inline-policy": _delete_inline,
    "delete-role-inline-policy": _delete_inline,
    "delete-access-key": _delete_access_key,
    "strip-user": _strip_user,
    "delete-user": _delete_user,
    "delete-role": _delete_role,
}


def perform(iam: IAMClient, action: Action) -> ActionResult:
    """Run one planned action; errors come back as KillSwitchError (TransientError retried)."""
    return dispatch(CONTAIN, iam, action, translate)


def _policy_json(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


def _activate_key(iam: IAMClient, action: Action, data: Mapping[str, Any]) -> str:
    """iam:UpdateAccessKey Status=Active."""
    iam.update_access_key(
        UserName=action.params["user"], AccessKeyId=action.target, Status="Active"
    )
    return "key set Active"


def _remove_own_policy(iam: IAMClient, action: Action, data: Mapping[str, Any]) -> str:
    """iam:DeleteUserPolicy / iam:DeleteRolePolicy of the kill switch's own inline policy."""
    name = (
        REVOKE_SESSIONS_POLICY if action.operation == "revoke-role-sessions" else QUARANTINE_POLICY
    )
    if "role" in action.params:
        iam.delete_role_policy(RoleName=action.params["role"], PolicyName=name)
    else:
        iam.delete_user_policy(UserName=action.params["user"], PolicyName=name)
    return f"inline {name} removed"


def _add_to_group(iam: IAMClient, action: Action, data: Mapping[str, Any]) -> str:
    """iam:AddUserToGroup."""
    iam.add_user_to_group(UserName=action.params["user"], GroupName=action.target)
    return f"added back to group {action.target}"


def _attach_policy(iam: IAMClient, action: Action, data: Mapping[str, Any]) -> str:
    """iam:AttachUserPolicy / iam:AttachRolePolicy."""
    if "role" in action.params:
        iam.attach_role_policy(RoleName=action.params["role"], PolicyArn=action.target)
    else:
        iam.attach_user_policy(UserName=action.params["user"], PolicyArn=action.target)
    return "managed policy attached again"


def _inline_exists(iam: IAMClient, action: Action) -> bool:
    """iam:GetUserPolicy / iam:GetRolePolicy: is the inline policy still there?"""
    try:
        if "role" in action.params:
            iam.get_role_policy(RoleName=action.params["role"], PolicyName=action.target)
        else:
            iam.get_user_policy(UserName=action.params["user"], PolicyName=action.target)
    except Exception as exc:
        if isinstance(translate(exc, doing=f"read inline policy {action.target}"), NotFoundError):
            return False
        raise
    return True


def _put_inline(iam: IAMClient, action: Action, data: Mapping[str, Any]) -> str:
    """iam:PutUserPolicy / iam:PutRolePolicy with the document recorded at detach time."""
    # Recorded at detach time; else the one discovery read into the plan (a run killed while
    # deleting it recorded nothing).
    recorded = data.get("document", action.params.get("document"))
    if recorded is None:
        if _inline_exists(iam, action):
            return "inline policy still in place (the delete never happened)"
        raise KeyError("document")
    document = _policy_json(recorded)
    if "role" in action.params:
        iam.put_role_policy(
            RoleName=action.params["role"], PolicyName=action.target, PolicyDocument=document
        )
    else:
        iam.put_user_policy(
            UserName=action.params["user"], PolicyName=action.target, PolicyDocument=document
        )
    return "inline policy put back"


Inverse = Callable[["IAMClient", Action, Mapping[str, Any]], str]
RESTORE: dict[str, Inverse] = {
    "deactivate-key": _activate_key,
    "quarantine-user": _remove_own_policy,
    "quarantine-role": _remove_own_policy,
    "revoke-role-sessions": _remove_own_policy,
    "remove-from-group": _add_to_group,
    "detach-user-policy": _attach_policy,
    "detach-role-policy": _attach_policy,
    "delete-user-inline-policy": _put_inline,
    "delete-role-inline-policy": _put_inline,
}


def restore(iam: IAMClient, action: Action, data: Mapping[str, Any]) -> ActionResult:
    """Reverse one recorded change; a policy of ours already removed reports `already`."""
    inverse = RESTORE.get(action.operation)
    if inverse is None:
        raise KillSwitchError(f"aws: cannot restore operation {action.operation!r}")
    started = time.monotonic()
    try:
        detail = inverse(iam, action, data)
    except Exception as exc:
        error = translate(exc, doing=f"restore {action.operation} {action.target}")
        if isinstance(error, NotFoundError) and inverse is _remove_own_policy:
            return ActionResult(action, Outcome.ALREADY, "already removed")
        raise error from exc
    return ActionResult(action, Outcome.DONE, detail, None, time.monotonic() - started)
