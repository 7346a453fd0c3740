"""What one service principal gives an agent, and the plan for it: the principal's own
client secrets and its application object's (secrets and certificates), the role
assignments it holds itself, and those it holds through groups.

`assignedTo('<id>')` returns both kinds of assignment (transitively through nested groups).
Only the principal's own are deleted: a group's assignment belongs to every member of the
group, and re-creating it on restore would hand it to the agent directly. What the agent
holds through a group is cut by removing the agent's own membership of the group it is a
direct member of (Graph `DELETE /groups/{id}/members/{id}/$ref`, put back on restore);
the group keeps its assignment and every other member keeps it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from killswitch.models import Action, Credential, Grant, Verb

# Credential kinds: the principal's own secrets, and its application object's.
OWN_KIND = "azure.client-secret"
APP_KIND = "azure.application-secret"
CERT_KIND = "azure.application-certificate"


@dataclass(frozen=True, slots=True)
class Held:
    """One role assignment `assignedTo()` found for the principal."""

    id: str
    scope: str
    name: str
    role_definition_id: str
    principal_id: str  # the principal itself, or the group that holds it
    principal_type: str

    @property
    def role(self) -> str:
        return self.role_definition_id.rsplit("/", 1)[-1]


@dataclass(slots=True)
class Found:
    credentials: list[Credential] = field(default_factory=list)
    grants: list[Grant] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    destroy: list[Action] = field(default_factory=list)


def held(assignment: Any) -> Held:
    """An SDK `RoleAssignment` as the plan needs it."""
    return Held(
        str(assignment.id),
        str(assignment.scope),
        str(assignment.name),
        str(assignment.role_definition_id),
        str(assignment.principal_id),
        str(assignment.principal_type or "ServicePrincipal"),
    )


def when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def plan(
    principal: dict[str, Any],
    application: dict[str, Any] | None,
    assignments: Sequence[Held],
    groups: Callable[[], dict[str, tuple[str, set[str]]]],
    agent_id: str,
    detach_groups: bool,
) -> Found:
    """The principal's credentials, grants and actions. `groups()` (called only when a
    group holds an assignment) maps each group the principal is a direct member of to its
    name and every group it reaches (itself and the groups it is nested in)."""
    object_id, ref = principal["id"], f"servicePrincipals/{principal['id']}"
    who = {"object_id": object_id, "app_id": str(principal.get("appId", ""))}
    found = Found()

    def credential(kind: str, owner: str, item: dict[str, Any]) -> None:
        key_ref = f"{owner}/{item['keyId']}"
        found.credentials.append(
            Credential(
                "azure", kind, key_ref, ref, agent_id, created_at=when(item.get("startDateTime"))
            )
        )
        operation = {
            OWN_KIND: "remove-password",
            APP_KIND: "remove-application-password",
            CERT_KIND: "remove-application-certificate",
        }[kind]
        params = {**who, "key_id": str(item["keyId"])}
        if kind != OWN_KIND:
            params["application_id"] = owner
        found.destroy.append(
            Action("azure", Verb.DESTROY, operation, ref, key_ref, False, False, params, phase=1)
        )

    for secret in principal.get("passwordCredentials") or []:
        credential(OWN_KIND, object_id, secret)
    if application is not None:
        for secret in application.get("passwordCredentials") or []:
            credential(APP_KIND, str(application["id"]), secret)
        for key in application.get("keyCredentials") or []:
            credential(CERT_KIND, str(application["id"]), key)
    found.actions.append(
        Action(
            "azure",
            Verb.CONTAIN,
            "disable-service-principal",
            ref,
            ref,  # the principal: every secret of it, and of its application, is refused
            True,
            not principal.get("accountEnabled", True),
            who,
        )
    )
    own = [a for a in assignments if a.principal_id == object_id]
    inherited = [a for a in assignments if a.principal_id != object_id]
    for a in own:
        found.grants.append(Grant("azure", "azure.role-assignment", ref, a.id, agent_id))
        found.actions.append(
            Action(
                "azure",
                Verb.DETACH,
                "delete-role-assignment",
                ref,
                a.id,
                True,
                False,
                {
                    **who,
                    "scope": a.scope,
                    "name": a.name,
                    "role_definition_id": a.role_definition_id,
                    "principal_type": a.principal_type,
                },
            )
        )
    for a in inherited:
        found.grants.append(Grant("azure", "azure.group-role-assignment", ref, a.id, agent_id))
    if not inherited:
        return found
    for group_id, (name, reaches) in sorted(groups().items()):
        through = [a for a in inherited if a.principal_id in reaches]
        if not through:
            continue  # a group that gives no role assignment here: left alone
        target = f"groups/{group_id}/members/{object_id}"
        found.grants.append(Grant("azure", "azure.group-membership", ref, target, agent_id))
        if not detach_groups:
            continue
        roles = ", ".join(sorted({f"{a.role} at {a.scope}" for a in through}))
        found.actions.append(
            Action(
                "azure",
                Verb.DETACH,
                "remove-group-member",
                ref,
                target,
                True,
                False,
                {**who, "group_id": group_id, "group": name, "held": roles},
            )
        )
    return found
