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

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

# (what it did, undo data) — undo data None means: nothing to undo.
Done = tuple[str, Mapping[str, Any] | None]
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


def _detach_user_policy(iam: IAMClient, action: Action) -> Done:
    """iam:DetachUserPolicy."""
    try:
        iam.detach_user_policy(UserName=action.params["user"], PolicyArn=action.target)
    except Exception as exc:
        _already_if_missing(exc, f"iam:DetachUserPolicy {action.target}")
        return "not attached any more", None
    return "managed policy detached", {}


def _detach_role_policy(iam: IAMClient, action: Action) -> Done:
    """iam:DetachRolePolicy."""
    try:
        iam.detach_role_policy(RoleName=action.params["role"], PolicyArn=action.target)
    except Exception as exc:
        _already_if_missing(exc, f"iam:DetachRolePolicy {action.target}")
        return "not attached any more", None
    return "managed policy detached", {}


def _delete_user_inline(iam: IAMClient, action: Action) -> Done:
    """iam:GetUserPolicy (kept for undo) then iam:DeleteUserPolicy."""
    user = action.params["user"]
    try:
        document = iam.get_user_policy(UserName=user, PolicyName=action.target)["PolicyDocument"]
        iam.delete_user_policy(UserName=user, PolicyName=action.target)
    except Exception as exc:
        _already_if_missing(exc, f"iam:DeleteUserPolicy {action.target}")
        return "inline policy already gone", None
    return "inline policy deleted (document kept for restore)", {"document": document}


def _delete_role_inline(iam: IAMClient, action: Action) -> Done:
    """iam:GetRolePolicy (kept for undo) then iam:DeleteRolePolicy."""
    role = action.params["role"]
    try:
        document = iam.get_role_policy(RoleName=role, PolicyName=action.target)["PolicyDocument"]
        iam.delete_role_policy(RoleName=role, PolicyName=action.target)
    except Exception as exc:
        _already_if_missing(exc, f"iam:DeleteRolePolicy {action.target}")
        return "inline policy already gone", None
    return "inline policy deleted (document kept for restore)", {"document": document}


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
    "detach-user-policy": _detach_user_policy,
    "detach-role-policy": _detach_role_policy,
    "delete-user-inline-policy": _delete_user_inline,
    "delete-role-inline-policy": _delete_role_inline,
}


def perform(iam: IAMClient, action: Action) -> ActionResult:
    """Run one planned action; errors come back as KillSwitchError (TransientError retried)."""
    operation = CONTAIN.get(action.operation)
    if operation is None:
        raise KillSwitchError(f"aws: no such operation {action.operation!r}")
    started = time.monotonic()
    try:
        detail, undo = operation(iam, action)
    except KillSwitchError:
        raise
    except Exception as exc:
        raise translate(exc, doing=f"{action.operation} {action.target}") from exc
    outcome = Outcome.DONE if undo is not None else Outcome.ALREADY
    return ActionResult(action, outcome, detail, undo, time.monotonic() - started)


def _policy_json(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


def restore(iam: IAMClient, action: Action, data: Mapping[str, Any]) -> ActionResult:
    """Reverse one recorded change; a change already reversed reports `already`."""
    started = time.monotonic()
    op, p, target = action.operation, action.params, action.target
    try:
        if op == "deactivate-key":
            iam.update_access_key(UserName=p["user"], AccessKeyId=target, Status="Active")
            detail = "key set Active"
        elif op in ("quarantine-user", "quarantine-role", "revoke-role-sessions"):
            name = REVOKE_SESSIONS_POLICY if op == "revoke-role-sessions" else QUARANTINE_POLICY
            try:
                if op == "quarantine-user":
                    iam.delete_user_policy(UserName=p["user"], PolicyName=name)
                else:
                    iam.delete_role_policy(RoleName=p["role"], PolicyName=name)
            except Exception as exc:
                _already_if_missing(exc, f"delete {name}")
                return ActionResult(action, Outcome.ALREADY, f"{name} already removed")
            detail = f"inline {name} removed"
        elif op == "remove-from-group":
            iam.add_user_to_group(UserName=p["user"], GroupName=target)
            detail = f"added back to group {target}"
        elif op == "detach-user-policy":
            iam.attach_user_policy(UserName=p["user"], PolicyArn=target)
            detail = "managed policy attached again"
        elif op == "detach-role-policy":
            iam.attach_role_policy(RoleName=p["role"], PolicyArn=target)
            detail = "managed policy attached again"
        elif op == "delete-user-inline-policy":
            iam.put_user_policy(
                UserName=p["user"], PolicyName=target, PolicyDocument=_policy_json(data["document"])
            )
            detail = "inline policy put back"
        elif op == "delete-role-inline-policy":
            iam.put_role_policy(
                RoleName=p["role"], PolicyName=target, PolicyDocument=_policy_json(data["document"])
            )
            detail = "inline policy put back"
        else:
            raise KillSwitchError(f"aws: cannot restore operation {op!r}")
    except KillSwitchError:
        raise
    except Exception as exc:
        raise translate(exc, doing=f"restore {op} {target}") from exc
    return ActionResult(action, Outcome.DONE, detail, None, time.monotonic() - started)
