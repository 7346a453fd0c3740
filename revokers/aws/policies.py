"""The policy documents the AWS revoker writes, and the permissions it needs to write them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

QUARANTINE_POLICY = "killswitch-quarantine"
REVOKE_SESSIONS_POLICY = "killswitch-revoke-sessions"
OWN_POLICIES = frozenset({QUARANTINE_POLICY, REVOKE_SESSIONS_POLICY})

DENY_ALL: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "KillSwitchQuarantine", "Effect": "Deny", "Action": "*", "Resource": "*"}
    ],
}


def revoke_sessions(before: datetime) -> dict[str, Any]:
    """Deny every action to sessions issued before `before` (the console's 'revoke sessions')."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "KillSwitchRevokeOlderSessions",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {
                    "DateLessThan": {"aws:TokenIssueTime": before.strftime("%Y-%m-%dT%H:%M:%SZ")}
                },
            }
        ],
    }


def is_deny_all(document: Any) -> bool:
    """True when the document denies every action on every resource, unconditionally."""
    return _everything(document, "Deny")


def is_allow_all(document: Any) -> bool:
    """True when the document allows every action on every resource (administrator)."""
    return _everything(document, "Allow")


def _everything(document: Any, effect: str) -> bool:
    if isinstance(document, str):
        document = json.loads(document)
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    if isinstance(statements, dict):
        statements = [statements]
    for statement in statements:
        actions = statement.get("Action")
        resources = statement.get("Resource")
        if (
            statement.get("Effect") == effect
            and actions in ("*", ["*"])
            and resources in ("*", ["*"])
            and not statement.get("Condition")
        ):
            return True
    return False


PERMISSIONS: dict[str, tuple[str, ...]] = {
    "discover": (
        "iam:GetAccountAuthorizationDetails",
        "iam:ListAccessKeys",
        "iam:GetAccessKeyLastUsed",
        "iam:GetUser",  # a leaked key's owner (an alert names only the key id)
        "sts:GetCallerIdentity",
    ),
    "contain": ("iam:UpdateAccessKey", "iam:PutUserPolicy", "iam:PutRolePolicy"),
    "detach": (
        "iam:RemoveUserFromGroup",
        "iam:DetachUserPolicy",
        "iam:DetachRolePolicy",
        "iam:GetUserPolicy",
        "iam:GetRolePolicy",
        "iam:DeleteUserPolicy",
        "iam:DeleteRolePolicy",
    ),
    "probe": (
        "iam:ListAccessKeys",
        "iam:GetUser",
        "iam:GetRole",
        "iam:GetUserPolicy",
        "iam:GetRolePolicy",
    ),
    "destroy": (
        "iam:DeleteAccessKey",
        "iam:DeleteLoginProfile",
        "iam:ListMFADevices",
        "iam:DeactivateMFADevice",
        "iam:DeleteVirtualMFADevice",
        "iam:ListSSHPublicKeys",
        "iam:DeleteSSHPublicKey",
        "iam:ListSigningCertificates",
        "iam:DeleteSigningCertificate",
        "iam:ListServiceSpecificCredentials",
        "iam:DeleteServiceSpecificCredential",
        "iam:ListUserPolicies",
        "iam:DeleteUserPolicy",
        "iam:ListAttachedUserPolicies",
        "iam:DetachUserPolicy",
        "iam:ListGroupsForUser",
        "iam:RemoveUserFromGroup",
        "iam:DeleteUser",
        "iam:ListRolePolicies",
        "iam:DeleteRolePolicy",
        "iam:ListAttachedRolePolicies",
        "iam:DetachRolePolicy",
        "iam:ListInstanceProfilesForRole",
        "iam:RemoveRoleFromInstanceProfile",
        "iam:DeleteRole",
    ),
    "restore": (
        "iam:UpdateAccessKey",
        "iam:DeleteUserPolicy",
        "iam:DeleteRolePolicy",
        "iam:AddUserToGroup",
        "iam:AttachUserPolicy",
        "iam:AttachRolePolicy",
        "iam:PutUserPolicy",
        "iam:PutRolePolicy",
    ),
}


def permission_policy() -> dict[str, Any]:
    """An IAM policy granting exactly the actions above (scope Resource down if you can)."""
    actions = sorted({action for group in PERMISSIONS.values() for action in group})
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "KillSwitch", "Effect": "Allow", "Action": actions, "Resource": "*"}],
    }
