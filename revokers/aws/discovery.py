"""Find an agent's IAM principals, keys and grants, and turn them into containment actions."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from killswitch.errors import NotFoundError
from killswitch.models import Action, Credential, CredentialRef, Grant, Verb
from revokers.aws.errors import translate
from revokers.aws.policies import (
    OWN_POLICIES,
    QUARANTINE_POLICY,
    REVOKE_SESSIONS_POLICY,
    is_deny_all,
)

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient


@dataclass(slots=True)
class Principal:
    """An IAM user or role as GetAccountAuthorizationDetails describes it."""

    kind: str
    name: str
    arn: str
    tags: dict[str, str]
    groups: list[str] = field(default_factory=list)
    attached: list[str] = field(default_factory=list)
    inline: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_detail(cls, kind: str, detail: Mapping[str, Any]) -> Principal:
        name_key, policies_key = (
            ("UserName", "UserPolicyList") if kind == "user" else ("RoleName", "RolePolicyList")
        )
        return cls(
            kind=kind,
            name=str(detail[name_key]),
            arn=str(detail["Arn"]),
            tags={t["Key"]: t["Value"] for t in detail.get("Tags", [])},
            groups=[str(g) for g in detail.get("GroupList", [])],
            attached=[str(p["PolicyArn"]) for p in detail.get("AttachedManagedPolicies", [])],
            inline={
                str(p["PolicyName"]): p.get("PolicyDocument", {})
                for p in detail.get(policies_key, [])
            },
        )

    def has_deny_all(self, policy_name: str) -> bool:
        return policy_name in self.inline and is_deny_all(self.inline[policy_name])


@dataclass(frozen=True, slots=True)
class AccessKey:
    key_id: str
    status: str
    created_at: datetime | None


GAAD_PAGE_SIZE = 1000


def find_principals(
    iam: IAMClient, *, tag_key: str, agent_id: str, declared: Sequence[CredentialRef]
) -> tuple[list[Principal], dict[str, Principal]]:
    """Users and roles tagged `tag_key=agent_id` or declared by name in the inventory, and
    every user by name (to place declared keys whose owner is not among them)."""
    found, users = find_fleet_principals(iam, tag_key=tag_key, declared={agent_id: declared})
    return found[agent_id], users


def find_fleet_principals(
    iam: IAMClient, *, tag_key: str, declared: Mapping[str, Sequence[CredentialRef]]
) -> tuple[dict[str, list[Principal]], dict[str, Principal]]:
    """`find_principals` for many agents in one pass over the account (one paginated
    iam:GetAccountAuthorizationDetails, not one per agent): agent id → its principals."""
    wanted = {agent_id: _declared_principal_names(refs) for agent_id, refs in declared.items()}
    found: dict[str, list[Principal]] = {agent_id: [] for agent_id in declared}
    users: dict[str, Principal] = {}
    try:
        # IAM's largest page (1,000 items; 100 unless asked): a large account in a tenth
        # of the round trips.
        pages = iam.get_paginator("get_account_authorization_details").paginate(
            Filter=["User", "Role"], PaginationConfig={"PageSize": GAAD_PAGE_SIZE}
        )
        for page in pages:
            for kind, details in (
                ("user", page.get("UserDetailList", [])),
                ("role", page.get("RoleDetailList", [])),
            ):
                for detail in details:
                    principal = Principal.from_detail(kind, detail)
                    if kind == "user":
                        users[principal.name] = principal
                    tagged = principal.tags.get(tag_key)
                    for agent_id, names in wanted.items():
                        if (
                            tagged == agent_id
                            or (kind, principal.name) in names
                            or (kind, principal.arn) in names
                        ):
                            found[agent_id].append(principal)
    except Exception as exc:
        raise translate(exc, doing="iam:GetAccountAuthorizationDetails") from exc
    return found, users


def _declared_principal_names(declared: Sequence[CredentialRef]) -> set[tuple[str, str]]:
    names: set[tuple[str, str]] = set()
    for ref in declared:
        if ref.provider == "aws" and ref.kind in ("aws.user", "aws.role"):
            names.add((ref.kind.removeprefix("aws."), ref.ref.rsplit("/", 1)[-1]))
    return names


def key_owners(iam: IAMClient, key_ids: Iterable[str], *, workers: int) -> set[str]:
    """iam:GetAccessKeyLastUsed for declared keys not found on the agent's principals: whose
    are they? (In parallel; none at all in the common case.)"""
    key_ids = list(key_ids)

    def owner(key_id: str) -> str:
        try:
            return str(iam.get_access_key_last_used(AccessKeyId=key_id).get("UserName") or "")
        except Exception as exc:
            error = translate(exc, doing=f"iam:GetAccessKeyLastUsed {key_id}")
            if isinstance(error, NotFoundError):
                return ""  # deleted since it was declared
            raise error from exc

    if not key_ids:
        return set()
    with ThreadPoolExecutor(max_workers=min(workers, len(key_ids))) as pool:
        return {name for name in pool.map(owner, key_ids) if name}


def list_keys(iam: IAMClient, user: str) -> list[AccessKey]:
    """iam:ListAccessKeys for one user (every page)."""
    keys: list[AccessKey] = []
    try:
        for page in iam.get_paginator("list_access_keys").paginate(UserName=user):
            for meta in page.get("AccessKeyMetadata", []):
                keys.append(
                    AccessKey(
                        key_id=str(meta["AccessKeyId"]),
                        status=str(meta.get("Status", "")),
                        created_at=meta.get("CreateDate"),
                    )
                )
    except Exception as exc:
        raise translate(exc, doing=f"iam:ListAccessKeys {user}") from exc
    return keys


def keys_by_user(
    iam: IAMClient, users: Iterable[Principal], *, workers: int
) -> dict[str, list[AccessKey]]:
    users = list(users)
    if not users:
        return {}
    with ThreadPoolExecutor(max_workers=min(workers, len(users))) as pool:
        results = pool.map(lambda p: (p.name, list_keys(iam, p.name)), users)
        return dict(results)


def user_plan(
    principal: Principal, keys: Sequence[AccessKey], agent_id: str
) -> tuple[list[Credential], list[Grant], list[Action]]:
    """Keys off, deny-all on, groups and policies detached."""
    who = {"user": principal.name}
    credentials = [
        Credential(
            provider="aws",
            kind="aws.access-key",
            ref=key.key_id,
            principal=principal.arn,
            agent_id=agent_id,
            state=key.status,
            created_at=key.created_at,
        )
        for key in keys
    ]
    actions = [
        _action(
            Verb.CONTAIN, "deactivate-key", principal, key.key_id, key.status == "Inactive", who
        )
        for key in keys
    ]
    actions.append(
        _action(
            Verb.CONTAIN,
            "quarantine-user",
            principal,
            principal.arn,
            principal.has_deny_all(QUARANTINE_POLICY),
            who,
        )
    )
    grants, detach = _grant_actions(principal, agent_id, who)
    return credentials, grants, actions + detach


def role_plan(
    principal: Principal, agent_id: str
) -> tuple[list[Credential], list[Grant], list[Action]]:
    """Deny-all on the role, its older sessions revoked, its policies detached."""
    who = {"role": principal.name}
    credential = Credential(
        provider="aws",
        kind="aws.role",
        ref=principal.arn,
        principal=principal.arn,
        agent_id=agent_id,
    )
    actions = [
        _action(
            Verb.CONTAIN,
            "quarantine-role",
            principal,
            principal.arn,
            principal.has_deny_all(QUARANTINE_POLICY),
            who,
        ),
        _action(
            Verb.CONTAIN,
            "revoke-role-sessions",
            principal,
            principal.arn,
            REVOKE_SESSIONS_POLICY in principal.inline,
            who,
        ),
    ]
    grants, detach = _grant_actions(principal, agent_id, who)
    return [credential], grants, actions + detach


def destroy_plan(principal: Principal, keys: Sequence[AccessKey]) -> list[Action]:
    """Decommission, after containment, in the order IAM accepts: keys and other sign-in
    material (phase 1), then the user or role with what still hangs on it (phase 2)."""
    who = {principal.kind: principal.name}

    def destroy(operation: str, target: str, phase: int) -> Action:
        return Action(
            "aws", Verb.DESTROY, operation, principal.arn, target, False, False, who, phase
        )

    if principal.kind == "role":
        return [destroy("delete-role", principal.arn, 2)]
    actions = [destroy("delete-access-key", key.key_id, 1) for key in keys]
    actions.append(destroy("strip-user", principal.arn, 1))
    actions.append(destroy("delete-user", principal.arn, 2))
    return actions


def _grant_actions(
    principal: Principal, agent_id: str, who: Mapping[str, str]
) -> tuple[list[Grant], list[Action]]:
    grants: list[Grant] = []
    actions: list[Action] = []

    def add(kind: str, operation: str, ref: str, **extra: str) -> None:
        grants.append(Grant("aws", kind, principal.arn, ref, agent_id))
        actions.append(_action(Verb.DETACH, operation, principal, ref, False, {**who, **extra}))

    for group in principal.groups:
        add("aws.group-membership", "remove-from-group", group)
    for policy_arn in principal.attached:
        add("aws.managed-policy", f"detach-{principal.kind}-policy", policy_arn)
    for name, document in principal.inline.items():
        if name not in OWN_POLICIES:
            # The document as discovery read it: deleting then costs one call, and restore
            # puts back exactly what was there.
            add(
                "aws.inline-policy",
                f"delete-{principal.kind}-inline-policy",
                name,
                document=document if isinstance(document, str) else json.dumps(document),
            )
    return grants, actions


def _action(
    verb: Verb,
    operation: str,
    principal: Principal,
    target: str,
    in_place: bool,
    params: Mapping[str, str],
) -> Action:
    return Action(
        provider="aws",
        verb=verb,
        operation=operation,
        principal=principal.arn,
        target=target,
        reversible=True,
        in_place=in_place,
        params=dict(params),
    )
