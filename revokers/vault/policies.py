"""The Vault paths and capabilities the kill switch's own token needs, per verb."""

from __future__ import annotations

from typing import Any

PERMISSIONS: dict[str, tuple[str, ...]] = {
    "discover": (
        "identity/entity/name/*:read",
        "identity/entity/id/*:read",
        "identity/group/id/*:read",
        "identity/group/id:list",
        "auth/token/lookup-self:read",
        "auth/token/accessors:list,sudo",
        "auth/token/lookup-accessor:update",
        "auth/+/role/+/role-id:read",
        "auth/+/role/+/secret-id:list",
        "sys/leases/lookup/*:list,sudo",
    ),
    "contain": (
        "identity/entity/id/*:update",
        "sys/leases/revoke-prefix/*:update,sudo",
    ),
    "detach": ("identity/group/id/*:read,update",),
    "probe": ("sys/leases/lookup:update", "identity/entity/id/*:read"),
    "restore": ("identity/entity/id/*:update", "identity/group/id/*:read,update"),
    "destroy": (
        "auth/token/revoke-accessor:update",
        "auth/+/role/+/secret-id-accessor/destroy:update",
        "auth/+/users/+:delete",
        "auth/+/role/+:delete",
        "identity/entity/id/*:delete",
    ),
    "material": ("<kv_mount>/data/<kv_prefix>/*:read",),
}


def policy_hcl(kv_mount: str = "secret", kv_prefix: str = "killswitch/material") -> str:
    """The policy (HCL) to attach to the kill switch's own token or AppRole."""
    merged: dict[str, set[str]] = {}
    for grants in PERMISSIONS.values():
        for grant in grants:
            path, _, caps = grant.rpartition(":")
            path = path.replace("<kv_mount>", kv_mount).replace("<kv_prefix>", kv_prefix)
            merged.setdefault(path, set()).update(caps.split(","))
    blocks = []
    for path, capabilities in sorted(merged.items()):
        quoted = ", ".join(f'"{c}"' for c in sorted(capabilities))
        blocks.append(f'path "{path}" {{\n  capabilities = [{quoted}]\n}}')
    return "\n".join(blocks)


def permission_policy() -> dict[str, Any]:
    return {
        "hcl": policy_hcl(),
        "by_path": {
            g.rpartition(":")[0]: g.rpartition(":")[2].split(",")
            for grants in PERMISSIONS.values()
            for g in grants
        },
    }
