"""Find an agent's service accounts (their description carries `agent-id=<id>`, or the
inventory names them), their user-managed keys and the project bindings naming them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from google.cloud import iam_admin_v1

from killswitch.models import Action, Credential, CredentialRef, Grant, Verb

USER_MANAGED = iam_admin_v1.ListServiceAccountKeysRequest.KeyType.USER_MANAGED


@dataclass(frozen=True, slots=True)
class Key:
    account: str  # email
    id: str
    name: str
    disabled: bool
    created_at: datetime | None

    @property
    def ref(self) -> str:
        return f"{self.account}/{self.id}"


def tagged(description: str, tag: str, agent_id: str) -> bool:
    """`agent-id=<id>` as a whole word of the description (`agent-id=a` does not name `ab`)."""
    return any(
        m == agent_id for m in re.findall(rf"(?:^|[\s;,]){re.escape(tag)}=([\w.-]+)", description)
    )


def agent_of(description: str, tag: str) -> str:
    found = re.findall(rf"(?:^|[\s;,]){re.escape(tag)}=([\w.-]+)", description)
    return found[0] if found else ""


def declared_emails(declared: Sequence[CredentialRef]) -> set[str]:
    emails = set()
    for ref in declared:
        if ref.provider != "gcp":
            continue
        if ref.kind == "gcp.service-account":
            emails.add(ref.ref)
        elif ref.kind == "gcp.service-account-key":
            emails.add(ref.ref.split("/", 1)[0])
    return emails


def key_of(message: iam_admin_v1.ServiceAccountKey) -> Key:
    # projects/{p}/serviceAccounts/{email}/keys/{id}
    parts = message.name.split("/")
    created = message.valid_after_time
    return Key(
        account=parts[3],
        id=parts[5],
        name=message.name,
        disabled=bool(message.disabled),
        created_at=created if isinstance(created, datetime) else None,
    )


def plan(
    account: iam_admin_v1.ServiceAccount,
    keys: Sequence[Key],
    roles: Iterable[str],
    agent_id: str,
) -> tuple[list[Credential], list[Grant], list[Action], list[Action]]:
    """Keys and the account disabled; the account's bindings removed; deletions for later."""
    principal = account.name
    member = f"serviceAccount:{account.email}"

    def action(verb: Verb, operation: str, target: str, in_place: bool, **params: str) -> Action:
        return Action(
            "gcp",
            verb,
            operation,
            principal,
            target,
            verb is not Verb.DESTROY,
            in_place,
            {"account": account.name, **params},
            phase=0 if verb is not Verb.DESTROY else (1 if "key" in operation else 2),
        )

    credentials = [
        Credential(
            "gcp",
            "gcp.service-account-key",
            k.ref,
            principal,
            agent_id,
            "disabled" if k.disabled else "enabled",
            k.created_at,
        )
        for k in keys
    ]
    actions = [action(Verb.CONTAIN, "disable-key", k.ref, k.disabled, key=k.name) for k in keys]
    actions.append(action(Verb.CONTAIN, "disable-service-account", account.email, account.disabled))
    grants = []
    for role in roles:
        grants.append(Grant("gcp", "gcp.binding", principal, role, agent_id))
        actions.append(action(Verb.DETACH, "remove-binding", role, False, member=member, role=role))
    destroy = [action(Verb.DESTROY, "delete-key", k.ref, False, key=k.name) for k in keys]
    destroy.append(action(Verb.DESTROY, "delete-service-account", account.email, False))
    return credentials, grants, actions, destroy
