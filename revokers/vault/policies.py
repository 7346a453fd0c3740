"""The Vault paths and capabilities the kill switch's own token needs, per verb.

Least privilege, not least effort: the identity paths it writes accept only the one field it
sends (`allowed_parameters`), so its token can disable an entity or change a group's members
but never rewrite anyone's `policies` (its own included); `revoke-prefix` is granted only on
the configured lease prefixes, never on `auth/` or a whole mount.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

LEASE_PREFIX = "<lease_prefix>"

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
        f"sys/leases/revoke-prefix/{LEASE_PREFIX}:update,sudo",
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

# The only request fields the kill switch sends where it writes identity objects
# (POST identity/entity/id/:id {disabled}; POST identity/group/id/:id {member_entity_ids}).
ALLOWED_PARAMETERS: dict[str, tuple[str, ...]] = {
    "identity/entity/id/*": ("disabled",),
    "identity/group/id/*": ("member_entity_ids",),
}

DEFAULT_LEASE_PREFIXES = ("pki/issue/{agent}/",)


def lease_path(prefix: str) -> str:
    """A configured lease prefix as a policy path: `{agent}` is one path segment (`+`); the
    revoker sends the prefix without its trailing slash."""
    return prefix.replace("{agent}", "+").rstrip("/")


def _paths(path: str, kv_mount: str, kv_prefix: str, lease_prefixes: Sequence[str]) -> list[str]:
    path = path.replace("<kv_mount>", kv_mount).replace("<kv_prefix>", kv_prefix)
    if LEASE_PREFIX in path:
        return [path.replace(LEASE_PREFIX, lease_path(p)) for p in lease_prefixes]
    return [path]


def policy_hcl(
    kv_mount: str = "secret",
    kv_prefix: str = "killswitch/material",
    lease_prefixes: Sequence[str] = DEFAULT_LEASE_PREFIXES,
) -> str:
    """The policy (HCL) to attach to the kill switch's own token or AppRole; `lease_prefixes`
    are the revoker's `vault.lease_prefixes` setting (one revoke-prefix path each)."""
    merged: dict[str, set[str]] = {}
    for grants in PERMISSIONS.values():
        for grant in grants:
            path, _, caps = grant.rpartition(":")
            for expanded in _paths(path, kv_mount, kv_prefix, lease_prefixes):
                merged.setdefault(expanded, set()).update(caps.split(","))
    blocks = []
    for path, capabilities in sorted(merged.items()):
        quoted = ", ".join(f'"{c}"' for c in sorted(capabilities))
        body = f"  capabilities = [{quoted}]"
        allowed = ALLOWED_PARAMETERS.get(path)
        if allowed:
            fields = ", ".join(f'"{name}" = []' for name in allowed)
            body += f"\n  allowed_parameters = {{ {fields} }}"
        blocks.append(f'path "{path}" {{\n{body}\n}}')
    return "\n".join(blocks)


def permission_policy(lease_prefixes: Sequence[str] = DEFAULT_LEASE_PREFIXES) -> dict[str, Any]:
    """The HCL, and per path its capabilities and the only parameters it accepts."""
    by_path: dict[str, list[str]] = {}
    for grants in PERMISSIONS.values():
        for grant in grants:
            path, _, caps = grant.rpartition(":")
            for expanded in _paths(path, "<kv_mount>", "<kv_prefix>", lease_prefixes):
                by_path[expanded] = sorted({*by_path.get(expanded, []), *caps.split(",")})
    return {
        "hcl": policy_hcl(lease_prefixes=lease_prefixes),
        "by_path": by_path,
        "allowed_parameters": {p: list(names) for p, names in ALLOWED_PARAMETERS.items()},
        "lease_prefixes": list(lease_prefixes),
    }
