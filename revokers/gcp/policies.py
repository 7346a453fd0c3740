"""What the kill switch's own GCP identity needs (a custom role on the project)."""

from __future__ import annotations

from typing import Any

PERMISSIONS: dict[str, tuple[str, ...]] = {
    "discover": (
        "iam.serviceAccounts.list",
        "iam.serviceAccounts.get",
        "iam.serviceAccountKeys.list",
        "resourcemanager.projects.getIamPolicy",
    ),
    "contain": ("iam.serviceAccountKeys.disable", "iam.serviceAccounts.disable"),
    "detach": ("resourcemanager.projects.getIamPolicy", "resourcemanager.projects.setIamPolicy"),
    "probe": ("iam.serviceAccountKeys.get (read-back)", "the key itself at the token endpoint"),
    "destroy": ("iam.serviceAccountKeys.delete", "iam.serviceAccounts.delete"),
    "restore": (
        "iam.serviceAccountKeys.enable",
        "iam.serviceAccounts.enable",
        "resourcemanager.projects.setIamPolicy",
    ),
}


def permission_policy() -> dict[str, Any]:
    """A custom role to grant the kill switch's service account on each project it guards."""
    permissions = sorted(
        {p for perms in PERMISSIONS.values() for p in perms if p.startswith(("iam.", "resource"))}
        | {p.split(" ")[0] for p in PERMISSIONS["probe"] if p.startswith("iam.")}
    )
    return {
        "title": "killswitch",
        "description": "contain, prove and restore AI-agent service accounts",
        "stage": "GA",
        "includedPermissions": permissions,
    }
