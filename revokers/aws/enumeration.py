"""Every IAM user's access keys and every role, streamed page by page for the sweep.

`GetAccountAuthorizationDetails` (one page at a time) gives tags, policies and creation
times; `ListAccessKeys` and `GetAccessKeyLastUsed` per user, a page's users in parallel.
Nothing is kept beyond the page in hand, so memory stays flat however large the account.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any

from killswitch.errors import KillSwitchError, NotFoundError
from killswitch.models import Nhi
from revokers.aws.discovery import GAAD_PAGE_SIZE, AccessKey, Principal, list_keys
from revokers.aws.errors import translate
from revokers.aws.policies import QUARANTINE_POLICY, is_allow_all

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

ADMIN_POLICY_SUFFIX = ":policy/AdministratorAccess"


def enumerate_account(
    iam: IAMClient,
    *,
    tag_key: str,
    workers: int,
    skip: Callable[[Principal], bool],
    protected: Callable[[Principal], bool],
) -> Iterator[Nhi]:
    """Users' keys and roles of the whole account, one GAAD page at a time."""
    try:
        pages = iam.get_paginator("get_account_authorization_details").paginate(
            Filter=["User", "Role"], PaginationConfig={"PageSize": GAAD_PAGE_SIZE}
        )
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for page in pages:
                users = [
                    (Principal.from_detail("user", d), d) for d in page.get("UserDetailList", [])
                ]
                users = [(p, d) for p, d in users if not skip(p)]
                keyed = pool.map(lambda pair: (pair, _keys(iam, pair[0].name)), users)
                for (principal, _), keys in keyed:
                    for key, last_used in keys:
                        yield _key_nhi(principal, key, last_used, tag_key, protected(principal))
                for detail in page.get("RoleDetailList", []):
                    principal = Principal.from_detail("role", detail)
                    if not skip(principal):
                        yield _role_nhi(principal, detail, tag_key, protected(principal))
    except KillSwitchError:
        raise
    except Exception as exc:
        raise translate(exc, doing="iam:GetAccountAuthorizationDetails (enumerate)") from exc


def _keys(iam: IAMClient, user: str) -> list[tuple[AccessKey, datetime | None]]:
    """The user's keys, each with iam:GetAccessKeyLastUsed (no date: never used)."""
    try:
        keys = list_keys(iam, user)
    except NotFoundError:
        return []  # deleted since the page was read
    found = []
    for key in keys:
        try:
            used = iam.get_access_key_last_used(AccessKeyId=key.key_id)
        except Exception as exc:
            error = translate(exc, doing=f"iam:GetAccessKeyLastUsed {key.key_id}")
            if isinstance(error, NotFoundError):
                continue
            raise error from exc
        found.append((key, used.get("AccessKeyLastUsed", {}).get("LastUsedDate")))
    return found


def _privileged(principal: Principal) -> bool:
    return any(arn.endswith(ADMIN_POLICY_SUFFIX) for arn in principal.attached) or any(
        is_allow_all(document) for document in principal.inline.values()
    )


def _key_nhi(
    principal: Principal,
    key: AccessKey,
    last_used: datetime | None,
    tag_key: str,
    protected: bool,
) -> Nhi:
    quarantined = principal.has_deny_all(QUARANTINE_POLICY)
    return Nhi(
        provider="aws",
        kind="aws.access-key",
        ref=key.key_id,
        principal=principal.arn,
        agent_tag=principal.tags.get(tag_key, ""),
        works=key.status == "Active" and not quarantined,
        privileged=_privileged(principal),
        protected=protected,
        created_at=key.created_at,
        last_used_at=last_used,
        detail=f"user {principal.name}, key {key.status}"
        + (", quarantined" if quarantined else ""),
    )


def _role_nhi(
    principal: Principal, detail: Mapping[str, Any], tag_key: str, protected: bool
) -> Nhi:
    quarantined = principal.has_deny_all(QUARANTINE_POLICY)
    return Nhi(
        provider="aws",
        kind="aws.role",
        ref=principal.arn,
        principal=principal.arn,
        agent_tag=principal.tags.get(tag_key, ""),
        works=not quarantined,
        privileged=_privileged(principal),
        protected=protected,
        created_at=detail.get("CreateDate"),
        last_used_at=(detail.get("RoleLastUsed") or {}).get("LastUsedDate"),
        detail=f"role {principal.name}" + (", quarantined" if quarantined else ""),
    )
