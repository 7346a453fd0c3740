"""Contain, detach, restore: disable the entity, revoke leases by prefix, leave groups."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import hvac
from hvac import exceptions as hv

from killswitch.errors import KillSwitchError, TransientError
from killswitch.models import Action, ActionResult, Outcome
from revokers.base import Done, dispatch
from revokers.vault.client import Clients
from revokers.vault.errors import translate


def _set_disabled(clients: Clients, entity_id: str, disabled: bool) -> None:
    """POST identity/entity/id/:id {disabled}: every token of the entity 403s at once."""
    clients.own().secrets.identity.update_entity(entity_id, disabled=disabled)


def _disable_entity(clients: Clients, action: Action) -> Done:
    _set_disabled(clients, action.params["entity_id"], True)
    return "entity disabled: its tokens and logins are refused", {}


def _revoke_lease_prefix(clients: Clients, action: Action) -> Done:
    """PUT sys/leases/revoke-prefix/<prefix> {sync: true} (sudo): dynamic secrets revoked at
    their source before the call returns (queued revocations would let the probe of a lease
    race the revocation, and a failure would only show in Vault's log)."""
    prefix = action.target.rstrip("/")
    clients.own().adapter.put(f"/v1/sys/leases/revoke-prefix/{prefix}", json={"sync": True})
    return f"leases under {action.target} revoked (irreversible)", {}


_group_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def set_membership(
    client: hvac.Client, group_id: str, entity_id: str, member: bool
) -> tuple[str, bool]:
    """Add or remove one entity in an identity group; returns (group name, changed?).

    Vault has no atomic add/remove: membership is a read-modify-write of member_entity_ids
    (POST identity/group/id/:id sends only that field). Writers in this process take a lock
    per group; a writer elsewhere can still race, so the result is read back and a lost
    update raises TransientError — retried, inside the deadline, by the engine."""
    with _locks_guard:
        lock = _group_locks.setdefault(group_id, threading.Lock())
    with lock:
        data = client.secrets.identity.read_group(group_id)["data"]
        name, members = str(data["name"]), list(data.get("member_entity_ids") or [])
        if (entity_id in members) == member:
            return name, False
        wanted = [*members, entity_id] if member else [m for m in members if m != entity_id]
        client.adapter.post(f"/v1/identity/group/id/{group_id}", json={"member_entity_ids": wanted})
        after = client.secrets.identity.read_group(group_id)["data"].get("member_entity_ids") or []
    if (entity_id in after) != member:
        raise TransientError(
            f"vault: a concurrent write to group {name} undid the change",
            provider="vault",
            provider_code="LostUpdate",
        )
    return name, True


def _remove_from_group(clients: Clients, action: Action) -> Done:
    name, changed = set_membership(
        clients.own(), action.params["group_id"], action.params["entity_id"], member=False
    )
    if not changed:
        return f"not a member of {name} any more", None
    return f"removed from group {name}", {}


def _revoke_token(clients: Clients, action: Action) -> Done:
    """POST auth/token/revoke-accessor."""
    try:
        clients.own().auth.token.revoke_accessor(action.target)
    except hv.InvalidRequest:  # "invalid accessor": revoked already
        return "token revoked already", None
    return "token revoked", {}


def _destroy_secret_id(clients: Clients, action: Action) -> Done:
    """POST auth/<mount>/role/<role>/secret-id-accessor/destroy."""
    p = action.params
    clients.own().auth.approle.destroy_secret_id_accessor(
        p["role"], action.target, mount_point=p["mount"]
    )
    return "secret-id destroyed", {}


def _delete_userpass_user(clients: Clients, action: Action) -> Done:
    """DELETE auth/<mount>/users/<user>."""
    p = action.params
    clients.own().auth.userpass.delete_user(p["user"], mount_point=p["mount"])
    return "userpass login deleted", {}


def _delete_approle_role(clients: Clients, action: Action) -> Done:
    """DELETE auth/<mount>/role/<role>: every remaining secret-id of it goes too."""
    p = action.params
    clients.own().auth.approle.delete_role(p["role"], mount_point=p["mount"])
    return "AppRole role deleted", {}


def _delete_entity(clients: Clients, action: Action) -> Done:
    """DELETE identity/entity/id/:id (its aliases go with it)."""
    clients.own().secrets.identity.delete_entity(action.params["entity_id"])
    return "entity deleted", {}


CONTAIN: dict[str, Callable[[Clients, Action], Done]] = {
    "disable-entity": _disable_entity,
    "revoke-lease-prefix": _revoke_lease_prefix,
    "remove-from-group": _remove_from_group,
    "revoke-token": _revoke_token,
    "destroy-secret-id": _destroy_secret_id,
    "delete-userpass-user": _delete_userpass_user,
    "delete-approle-role": _delete_approle_role,
    "delete-entity": _delete_entity,
}


def perform(clients: Clients, action: Action) -> ActionResult:
    return dispatch(CONTAIN, clients, action, translate)


def restore(clients: Clients, action: Action, data: Mapping[str, Any]) -> ActionResult:
    """Re-enable the entity; put it back in its groups."""
    started = time.monotonic()
    try:
        if action.operation == "disable-entity":
            _set_disabled(clients, action.params["entity_id"], False)
            detail = "entity enabled"
        elif action.operation == "remove-from-group":
            name, changed = set_membership(
                clients.own(), action.params["group_id"], action.params["entity_id"], member=True
            )
            if not changed:
                return ActionResult(action, Outcome.ALREADY, f"already in group {name}")
            detail = f"added back to group {name}"
        else:
            raise KillSwitchError(f"vault: cannot restore operation {action.operation!r}")
    except KillSwitchError:
        raise
    except Exception as exc:
        raise translate(exc, doing=f"restore {action.operation} {action.target}") from exc
    return ActionResult(action, Outcome.DONE, detail, None, time.monotonic() - started)
