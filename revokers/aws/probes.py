"""Probes: use the agent's own credential against a call the quarantine deny blocks.

Not sts:GetCallerIdentity: it succeeds even under an explicit deny. On real AWS a
deactivated or deleted key fails every call with InvalidClientTokenId; where only the deny
stops it (moto ignores Inactive keys), AccessDenied counts as dead only when the deny-all is
read back on the principal. The engine's baseline, taken before containment, is what
catches an implicit deny (an agent without iam:GetUser is denied before any deny exists):
`baseline` calls that AccessDenied a rejection, and the engine then proves an access key
with `identity` (GetCallerIdentity: only a deactivated or deleted key fails it).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from killswitch.errors import KillSwitchError, NotFoundError
from killswitch.models import Credential, Verdict, VerdictStatus
from revokers.aws.errors import TRANSIENT_EXCEPTIONS, error_code, error_message, translate
from revokers.aws.policies import QUARANTINE_POLICY, REVOKE_SESSIONS_POLICY, is_deny_all
from revokers.base import ProbeAttempt, ProbeOutcome

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_sts import STSClient

DEAD_CODES = frozenset(
    {"InvalidClientTokenId", "InvalidAccessKeyId", "ExpiredToken", "ExpiredTokenException"}
)
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException"})


def name_of(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def kind_of(arn: str) -> str:
    return "role" if ":role/" in arn else "user"


def probe_call(client: IAMClient, credential: Credential) -> str:
    """The call a probe makes with the credential: iam:GetUser (self) or iam:GetRole."""
    if credential.kind == "aws.role":
        client.get_role(RoleName=name_of(credential.principal))
        return "iam:GetRole"
    client.get_user()
    return "iam:GetUser"


class ReadBacks:
    """Principals whose deny-all was just read back. Several keys of one user are probed at
    once: one read-back serves them all for a few seconds (it was put there a moment ago).
    With `workers`, a principal's read-back goes out alongside the probe's own call (`ahead`)
    rather than after its AccessDenied: a probe's first rejection then costs one round trip,
    not two."""

    def __init__(self, ttl_s: float = 3.0, workers: int = 0) -> None:
        self.ttl_s = ttl_s
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._pool = (
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aws-read-back")
            if workers
            else None
        )

    def fresh(self, principal: str) -> bool:
        with self._lock:
            return time.monotonic() - self._seen.get(principal, -1e9) < self.ttl_s

    def saw(self, principal: str) -> None:
        with self._lock:
            self._seen[principal] = time.monotonic()

    def ahead(self, admin: IAMClient, principal: str) -> Future[bool] | None:
        """The principal's deny read back (iam:GetUserPolicy / iam:GetRolePolicy) while the
        probe's call is under way, unless one was read back a moment ago."""
        if self._pool is None or self.fresh(principal):
            return None
        return self._pool.submit(quarantine_in_place, admin, principal)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def probe(
    admin: IAMClient, client: IAMClient, credential: Credential, read_backs: ReadBacks | None = None
) -> ProbeAttempt:
    """One attempt with the agent's credential; classify the provider's answer."""
    call = "iam:GetRole" if credential.kind == "aws.role" else "iam:GetUser"
    read_backs = read_backs or ReadBacks(0)
    # Sent after this run's deny was put (the engine probes a credential once its own
    # containment is back), so it reads the state the probe is judged against.
    ahead = read_backs.ahead(admin, credential.principal)
    try:
        probe_call(client, credential)
    except ClientError as exc:
        code, message = error_code(exc), error_message(exc)
        said = f"{call} → {code}: {message}"
        if code in DEAD_CODES:
            return ProbeAttempt(ProbeOutcome.REJECTED, said)
        if code in DENIED_CODES:
            return _denied(admin, credential, said, read_backs, ahead)
        if code == "SignatureDoesNotMatch":
            return ProbeAttempt(
                ProbeOutcome.INCONCLUSIVE,
                f"{said} (the probe material does not match this key: fix the secret source)",
            )
        return _failed(admin, credential, said)
    except TRANSIENT_EXCEPTIONS as exc:
        return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, f"{call}: {type(exc).__name__}")
    except (BotoCoreError, ResponseParserError) as exc:  # e.g. an HTML 500 page, not XML
        return _failed(admin, credential, f"{call} → {type(exc).__name__} (the provider failed)")
    return ProbeAttempt(ProbeOutcome.ACCEPTED, f"{call} with the agent's credential succeeded")


def baseline(client: IAMClient, credential: Credential) -> ProbeAttempt:
    """The probe before containment: any AccessDenied now is an implicit deny (no quarantine
    exists yet), so this probe cannot show a kill — a rejection, for the engine's control."""
    call = "iam:GetRole" if credential.kind == "aws.role" else "iam:GetUser"
    try:
        probe_call(client, credential)
    except ClientError as exc:
        code, message = error_code(exc), error_message(exc)
        said = f"{call} → {code}: {message}"
        if code in DEAD_CODES:
            return ProbeAttempt(ProbeOutcome.REJECTED, said, code)
        if code in DENIED_CODES:
            return ProbeAttempt(
                ProbeOutcome.REJECTED,
                f"{said} (an implicit deny: the credential may not call {call})",
                code,
            )
        return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, said, code)
    except (*TRANSIENT_EXCEPTIONS, BotoCoreError, ResponseParserError) as exc:
        return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, f"{call}: {type(exc).__name__}")
    return ProbeAttempt(ProbeOutcome.ACCEPTED, f"{call} with the agent's credential succeeded")


def identity(admin: IAMClient, client: STSClient, credential: Credential) -> ProbeAttempt:
    """The alternative probe of an access key: sts:GetCallerIdentity needs no permission, so
    only a deactivated or deleted key fails it; under a deny-all it still succeeds (and then
    says nothing)."""
    call = "sts:GetCallerIdentity"
    try:
        client.get_caller_identity()
    except ClientError as exc:
        code, message = error_code(exc), error_message(exc)
        outcome = ProbeOutcome.REJECTED if code in DEAD_CODES else ProbeOutcome.INCONCLUSIVE
        return ProbeAttempt(outcome, f"{call} → {code}: {message}", code)
    except (*TRANSIENT_EXCEPTIONS, BotoCoreError, ResponseParserError) as exc:
        return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, f"{call}: {type(exc).__name__}")
    try:
        deny = quarantine_in_place(admin, credential.principal)
    except KillSwitchError as exc:
        return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, f"{call} succeeded; read-back failed: {exc}")
    if deny:
        return ProbeAttempt(
            ProbeOutcome.INCONCLUSIVE,
            f"{call} succeeded: the key still authenticates, though {QUARANTINE_POLICY} denies "
            "it everything else (GetCallerIdentity ignores a deny)",
        )
    return ProbeAttempt(ProbeOutcome.ACCEPTED, f"{call} with the agent's key succeeded")


def _failed(admin: IAMClient, credential: Credential, said: str) -> ProbeAttempt:
    """The provider failed to serve the credential at all. Only when its principal is read
    back as deleted is that a rejection (moto answers a deleted role's session with a 500;
    AWS with AccessDenied); otherwise it proves nothing."""
    try:
        if not principal_exists(admin, credential.principal):
            return ProbeAttempt(ProbeOutcome.REJECTED, f"{said} [the principal is deleted]")
    except KillSwitchError as exc:
        return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, f"{said}; read-back failed: {exc}")
    return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, said)


def _denied(
    admin: IAMClient,
    credential: Credential,
    said: str,
    read_backs: ReadBacks,
    ahead: Future[bool] | None = None,
) -> ProbeAttempt:
    try:
        # The deny first (one read); whether the principal still exists only when it is not.
        deny = read_backs.fresh(credential.principal) or (
            ahead.result()
            if ahead is not None
            else quarantine_in_place(admin, credential.principal)
        )
        if deny:
            read_backs.saw(credential.principal)
        if not deny and not principal_exists(admin, credential.principal):
            return ProbeAttempt(ProbeOutcome.REJECTED, f"{said} [the principal is deleted]")
    except KillSwitchError as exc:
        return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, f"{said}; read-back failed: {exc}")
    if deny:
        return ProbeAttempt(
            ProbeOutcome.REJECTED,
            f"{said} [deny-all {QUARANTINE_POLICY} read back on the principal]",
        )
    return ProbeAttempt(
        ProbeOutcome.INCONCLUSIVE,
        f"{said}, but no quarantine deny is in place: an implicit deny proves nothing",
    )


def _inline_document(admin: IAMClient, principal: str, policy: str) -> object | None:
    name = name_of(principal)
    try:
        if kind_of(principal) == "role":
            return admin.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
        return admin.get_user_policy(UserName=name, PolicyName=policy)["PolicyDocument"]
    except Exception as exc:
        error = translate(exc, doing=f"read back {policy} on {principal}")
        if isinstance(error, NotFoundError):
            return None
        raise error from exc


def principal_exists(admin: IAMClient, principal: str) -> bool:
    """iam:GetUser / iam:GetRole with the kill switch's identity."""
    try:
        if kind_of(principal) == "role":
            admin.get_role(RoleName=name_of(principal))
        else:
            admin.get_user(UserName=name_of(principal))
    except Exception as exc:
        error = translate(exc, doing=f"read back {principal}")
        if isinstance(error, NotFoundError):
            return False
        raise error from exc
    return True


def quarantine_in_place(admin: IAMClient, principal: str) -> bool:
    """True when the principal carries the unconditional deny-all quarantine policy."""
    document = _inline_document(admin, principal, QUARANTINE_POLICY)
    return document is not None and is_deny_all(document)


def read_back(admin: IAMClient, credential: Credential) -> Verdict:
    """No secret to probe with: read key status and policies back from IAM."""
    to_prove = (
        f"no secret material for {credential.ref}: add it to a secret source (or pass the "
        "leaked value with the alert) and re-run to probe it"
    )
    try:
        if not principal_exists(admin, credential.principal):
            evidence = f"read back: {credential.principal} is deleted"
            return Verdict(VerdictStatus.UNVERIFIED, evidence, to_prove=to_prove)
        quarantined = quarantine_in_place(admin, credential.principal)
        seen = [f"{QUARANTINE_POLICY} {'attached' if quarantined else 'MISSING'}"]
        complete = quarantined
        if credential.kind == "aws.access-key":
            status = _key_status(admin, credential)
            seen.insert(0, f"key {status}")
            complete = complete and status in ("Inactive", "deleted")
        else:
            revoked = _inline_document(admin, credential.principal, REVOKE_SESSIONS_POLICY)
            seen.append(f"{REVOKE_SESSIONS_POLICY} {'attached' if revoked else 'MISSING'}")
            complete = complete and revoked is not None
    except KillSwitchError as exc:
        return Verdict(VerdictStatus.UNKNOWN, f"read-back failed: {exc}", to_prove=to_prove)
    evidence = "read back: " + "; ".join(seen) + f" on {credential.principal}"
    status_ = VerdictStatus.UNVERIFIED if complete else VerdictStatus.UNKNOWN
    return Verdict(status_, evidence, to_prove=to_prove)


def _key_status(admin: IAMClient, credential: Credential) -> str:
    try:
        keys = admin.list_access_keys(UserName=name_of(credential.principal))
    except Exception as exc:
        error = translate(exc, doing="iam:ListAccessKeys")
        if isinstance(error, NotFoundError):
            return "deleted"
        raise error from exc
    for meta in keys.get("AccessKeyMetadata", []):
        if meta["AccessKeyId"] == credential.ref:
            return str(meta.get("Status", "unknown"))
    return "deleted"
