"""Each planned GCP action, idempotent (a gone target is `already`), and its undo."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from google.iam.v1 import policy_pb2

from killswitch.errors import ProviderError, own_copy
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


# The only policy version that carries conditional role bindings: Google refuses a lower one
# (INVALID_ARGUMENT) for a get or a set once any binding has a condition, and a version-1
# read-modify-write would lose the conditions (google/iam/v1/policy.proto, `version`).
POLICY_VERSION = 3


class _Edit:
    """One caller's change to a project's policy: `apply` edits the policy in place and
    says what it did (falsy: nothing changed); the writer fills in the outcome."""

    def __init__(self, apply: Callable[[policy_pb2.Policy], Any]) -> None:
        self.apply = apply
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None

    def outcome(self) -> Any:
        if self.error is not None:
            raise own_copy(self.error)
        return self.result


class _Policies:
    """The read-modify-writes of one project's policy in this process, coalesced. Every
    caller queues its edit and waits for the writer's turn; whoever takes the turn reads the
    policy once, applies every queued edit (its own and those of the callers behind it),
    and writes once. A fleet's agents share the project: one edit at a time would be one
    etag-guarded round trip pair each, and N processes editing at once answer ABORTED to
    all but one of them. A failed write fails each edit of its batch (ABORTED is transient:
    each caller's retry queues it again). Other processes still race; their ABORTED is
    transient and each write carries a whole batch. The writer uses its own caller's clients:
    every revoker of a project edits it as the kill switch's one identity there."""

    def __init__(self) -> None:
        self._queued: list[_Edit] = []
        self._queue_lock = threading.Lock()
        self._turn = threading.Lock()

    def edit(self, c: Clients, project: str, apply: Callable[[policy_pb2.Policy], Any]) -> Any:
        mine = _Edit(apply)
        with self._queue_lock:
            self._queued.append(mine)
        with self._turn:
            if not mine.done:
                with self._queue_lock:
                    batch, self._queued = self._queued, []
                self._write_batch(c, project, batch)
        return mine.outcome()

    @staticmethod
    def _write_batch(c: Clients, project: str, batch: list[_Edit]) -> None:
        try:
            policy = read_policy(c, project)
            changed = False
            for edit in batch:
                try:
                    edit.result = edit.apply(policy)
                except Exception as error:  # this edit alone fails (the others still apply)
                    edit.error = error
                changed = changed or (edit.error is None and bool(edit.result))
            if changed:
                _write(c, project, policy)
        except BaseException as error:  # the read or the write failed: every edit with it
            for edit in batch:
                edit.error = error
            if not isinstance(error, Exception):
                raise  # an interrupt: the waiting callers raise it too, none is told "done"
        finally:
            for edit in batch:
                edit.done = True


_POLICIES: dict[str, _Policies] = {}
_POLICIES_LOCK = threading.Lock()


def _policies(project: str) -> _Policies:
    with _POLICIES_LOCK:
        return _POLICIES.setdefault(project, _Policies())


def read_policy(c: Clients, project: str, timeout_s: float | None = None) -> policy_pb2.Policy:
    """GetIamPolicy with `options.requested_policy_version=3` (the conditions included);
    without `timeout_s`, the client's default deadline (None would mean none at all)."""
    request = {
        "resource": f"projects/{project}",
        "options": {"requested_policy_version": POLICY_VERSION},
    }
    if timeout_s is None:
        return c.projects.get_iam_policy(request=request)
    return c.projects.get_iam_policy(request=request, timeout=timeout_s)


Condition = dict[str, str] | None  # a binding's IAM condition (None: unconditional)


def _condition(binding: policy_pb2.Binding) -> Condition:
    if not binding.HasField("condition"):
        return None
    c = binding.condition
    return {"expression": c.expression, "title": c.title, "description": c.description}


def _write(c: Clients, project: str, policy: policy_pb2.Policy) -> None:
    """SetIamPolicy at version 3 with the etag read (a concurrent change answers ABORTED:
    transient); Google answers version 1 again once no condition is left."""
    policy.version = POLICY_VERSION
    c.projects.set_iam_policy(request={"resource": f"projects/{project}", "policy": policy})


def _unbind(c: Clients, project: str, role: str, member: str) -> list[Condition]:
    """Remove the member from every binding of the role, conditional ones included (a
    conditional binding still grants); the conditions it was removed under, for undo."""

    def unbind(policy: policy_pb2.Policy) -> list[Condition]:
        removed: list[Condition] = []
        for binding in policy.bindings:
            if binding.role == role and member in binding.members:
                binding.members.remove(member)
                removed.append(_condition(binding))
        return removed

    removed: list[Condition] = _policies(project).edit(c, project, unbind)
    return removed


def _rebind(c: Clients, project: str, role: str, member: str, conditions: list[Condition]) -> bool:
    """Put the member back in the role under each recorded condition; True if it changed."""

    def rebind(policy: policy_pb2.Policy) -> bool:
        changed = False
        for condition in conditions:
            binding = next(
                (b for b in policy.bindings if b.role == role and _condition(b) == condition),
                None,
            )
            if binding is None:
                binding = policy.bindings.add(role=role)
                if condition is not None:
                    binding.condition.expression = condition["expression"]
                    binding.condition.title = condition["title"]
                    binding.condition.description = condition["description"]
            if member not in binding.members:
                binding.members.append(member)
                changed = True
        return changed

    return bool(_policies(project).edit(c, project, rebind))


def perform(clients: Clients, project: str, action: Action) -> ActionResult:
    def remove_binding(c: Clients, a: Action) -> Done:
        removed = _unbind(c, project, a.params["role"], a.params["member"])
        if not removed:
            return "not bound already", None
        where = f" ({len(removed)} bindings)" if len(removed) > 1 else ""
        detail = f"{a.params['member']} removed from {a.params['role']}{where}"
        return detail, {"role": a.params["role"], "conditions": removed}

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
        conditions = list(data.get("conditions", [None]))
        if not _rebind(c, project, a.params["role"], a.params["member"], conditions):
            return "bound already", None
        return f"{a.params['member']} back in {a.params['role']}", {}

    table: dict[str, Callable[[Clients, Action], Done]] = {
        "disable-key": enable_key,
        "disable-service-account": enable_account,
        "remove-binding": rebind,
    }
    if action.operation not in table:
        raise ProviderError(f"gcp: {action.operation} cannot be restored", provider="gcp")
    return dispatch(table, clients, action, translate)
