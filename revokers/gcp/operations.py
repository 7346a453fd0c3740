"""Each planned GCP action, idempotent (a gone target is `already`), and its undo."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from google.iam.v1 import policy_pb2

from killswitch.errors import ProviderError
from killswitch.models import Action, ActionResult
from revokers.base import Done, dispatch
from revokers.gcp.client import Clients
from revokers.gcp.errors import translate


def _disable_key(c: Clients, a: Action) -> Done:
    key = c.iam.get_service_account_key(name=a.params["key"])
    if key.disabled:
        return "key disabled already", None
    c.iam.disable_service_account_key(request={"name": a.params["key"]})
    return "key disabled", {}


def _disable_account(c: Clients, a: Action) -> Done:
    account = c.iam.get_service_account(name=a.params["account"])
    if account.disabled:
        return "service account disabled already", None
    c.iam.disable_service_account(request={"name": a.params["account"]})
    return "service account disabled (its access tokens are refused from now)", {}


def _policy(c: Clients, project: str) -> policy_pb2.Policy:
    return c.projects.get_iam_policy(request={"resource": f"projects/{project}"})


def _set_member(c: Clients, project: str, role: str, member: str, present: bool) -> bool:
    """Read-modify-write of the project's allow policy, guarded by its etag (a concurrent
    change answers ABORTED: retried as transient). True when something changed."""
    policy = _policy(c, project)
    binding = next(
        (b for b in policy.bindings if b.role == role and not b.HasField("condition")), None
    )
    if present:
        if binding is not None and member in binding.members:
            return False
        if binding is None:
            binding = policy.bindings.add(role=role)
        binding.members.append(member)
    else:
        if binding is None or member not in binding.members:
            return False
        binding.members.remove(member)
    c.projects.set_iam_policy(request={"resource": f"projects/{project}", "policy": policy})
    return True


def perform(clients: Clients, project: str, action: Action) -> ActionResult:
    def remove_binding(c: Clients, a: Action) -> Done:
        if not _set_member(c, project, a.params["role"], a.params["member"], present=False):
            return "not bound already", None
        return f"{a.params['member']} removed from {a.params['role']}", {"role": a.params["role"]}

    def delete_key(c: Clients, a: Action) -> Done:
        c.iam.delete_service_account_key(request={"name": a.params["key"]})
        return "key deleted (irreversible)", {}

    def delete_account(c: Clients, a: Action) -> Done:
        c.iam.delete_service_account(request={"name": a.params["account"]})
        return "service account deleted (irreversible)", {}

    table: dict[str, Callable[[Clients, Action], Done]] = {
        "disable-key": _disable_key,
        "disable-service-account": _disable_account,
        "remove-binding": remove_binding,
        "delete-key": delete_key,
        "delete-service-account": delete_account,
    }
    return dispatch(table, clients, action, translate)


def restore(
    clients: Clients, project: str, action: Action, data: Mapping[str, Any]
) -> ActionResult:
    """Enable the key or the account again, or put the member back in the role."""

    def enable_key(c: Clients, a: Action) -> Done:
        if not c.iam.get_service_account_key(name=a.params["key"]).disabled:
            return "key enabled already", None
        c.iam.enable_service_account_key(request={"name": a.params["key"]})
        return "key enabled", {}

    def enable_account(c: Clients, a: Action) -> Done:
        if not c.iam.get_service_account(name=a.params["account"]).disabled:
            return "service account enabled already", None
        c.iam.enable_service_account(request={"name": a.params["account"]})
        return "service account enabled", {}

    def rebind(c: Clients, a: Action) -> Done:
        if not _set_member(c, project, a.params["role"], a.params["member"], present=True):
            return "bound already", None
        return f"{a.params['member']} back in {a.params['role']}", {}

    table: dict[str, Callable[[Clients, Action], Done]] = {
        "disable-key": enable_key,
        "disable-service-account": enable_account,
        "remove-binding": rebind,
    }
    if action.operation not in table:
        raise ProviderError(f"gcp: {action.operation} cannot be restored", provider="gcp")
    del data
    return dispatch(table, clients, action, translate)
