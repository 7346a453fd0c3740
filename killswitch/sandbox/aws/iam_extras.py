"""What moto's IAM lacks and real IAM does, taught to moto inside the sandbox daemon.

moto 5.2 has no service-specific credentials at all (`CreateServiceSpecificCredential` and
friends answer "not implemented"): CodeCommit Git credentials, Keyspaces and Bedrock API keys
are such credentials, and they outlive the user's access keys. And its `DeleteUser` refuses
only while policies are attached; real IAM answers `DeleteConflict` while the user has *any*
of a password, access keys, signing certificates, SSH keys, service-specific credentials, MFA
devices, inline or attached policies, or group memberships (IAM API reference, DeleteUser).

moto's `GetAccountAuthorizationDetails` answers the whole account in one page and ignores
`MaxItems`; IAM pages it, 100 items by default and at most 1,000 a page (`IsTruncated`,
`Marker`): paged here as IAM does, so that a caller that does not follow the marker misses
principals in the sandbox as it would in a large account.

All are added to moto's own response class and backend, so moto's SigV4 authentication and
policy evaluation (`iam:<Action>`) apply to them as to every other call.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# IAM's documented service names for service-specific credentials.
SERVICES = ("codecommit.amazonaws.com", "cassandra.amazonaws.com", "bedrock.amazonaws.com")
LIMIT_PER_SERVICE = 2  # IAM: at most two per user and service
GAAD_PAGE, GAAD_MAX = 100, 1000  # GetAccountAuthorizationDetails: MaxItems default, most


@dataclass
class ServiceCredential:
    """One service-specific credential of a moto user (the password never leaves Create)."""

    id: str
    user: str
    service: str
    service_user: str
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    status: str = "Active"

    def metadata(self) -> dict[str, Any]:
        return {
            "UserName": self.user,
            "Status": self.status,
            "ServiceUserName": self.service_user,
            "CreateDate": self.created,
            "ServiceSpecificCredentialId": self.id,
            "ServiceName": self.service,
        }


def _credentials(user: Any) -> dict[str, ServiceCredential]:
    """The user's service-specific credentials, kept on moto's own User object (a moto
    reset forgets them with the user)."""
    found: dict[str, ServiceCredential] | None = getattr(user, "_killswitch_ssc", None)
    if found is None:
        found = {}
        user._killswitch_ssc = found
    return found


def conflicts(backend: Any, user: Any) -> list[str]:
    """What still hangs on a user that real IAM's DeleteUser refuses to delete it with."""
    found = []
    checks = (
        (user.password, "a login profile (console password)"),
        (user.access_keys, "access keys"),
        (user.signing_certificates, "signing certificates"),
        (user.ssh_public_keys, "SSH public keys"),
        (_credentials(user), "service-specific credentials (e.g. Git credentials)"),
        (user.mfa_devices, "MFA devices"),
        (user.policies, "inline policies"),
        (user.managed_policies, "attached managed policies"),
        (backend.get_groups_for_user(user.name), "group memberships"),
    )
    for present, what in checks:
        if present:
            found.append(what)
    return found


_installed = False


def install() -> None:
    """Add the service-specific-credential actions to moto's IAM and make its DeleteUser as
    strict as IAM's (idempotent; the daemon calls it before starting moto)."""
    global _installed
    if _installed:
        return
    from moto.core.responses import ActionResult, EmptyResult
    from moto.iam.exceptions import (
        DeleteConflictException,
        IAMException,
        LimitExceededException,
        NotFoundException,
        ValidationError,
    )
    from moto.iam.models import IAMBackend
    from moto.iam.responses import IamResponse

    class ServiceNotSupported(IAMException):
        code = "NotSupportedService"

    original_delete_user = IAMBackend.delete_user

    def delete_user(self: Any, user_name: str) -> None:
        user = self.get_user(user_name)
        left = conflicts(self, user)
        if left:
            raise DeleteConflictException(
                f"Cannot delete entity, must remove {', '.join(left)} first."
            )
        original_delete_user(self, user_name)

    def create_service_specific_credential(self: Any) -> Any:
        user = self.backend.get_user(self._get_param("UserName"))
        service = self._get_param("ServiceName")
        if service not in SERVICES:
            raise ServiceNotSupported(f"Service {service} does not support this credential")
        held = _credentials(user)
        if sum(c.service == service for c in held.values()) >= LIMIT_PER_SERVICE:
            raise LimitExceededException(
                f"Cannot exceed quota for ServiceSpecificCredentialsPerUserPerService: "
                f"{LIMIT_PER_SERVICE}"
            )
        alphabet = string.ascii_uppercase + string.digits
        credential = ServiceCredential(
            "ACCA" + "".join(secrets.choice(alphabet) for _ in range(17)),
            user.name,
            service,
            f"{user.name}-at-{secrets.randbelow(10**12):012d}",
        )
        held[credential.id] = credential
        answer = {**credential.metadata(), "ServicePassword": secrets.token_urlsafe(30)}
        return ActionResult({"ServiceSpecificCredential": answer})

    def list_service_specific_credentials(self: Any) -> Any:
        user = self.backend.get_user(self._get_param("UserName"))
        service = self._get_param("ServiceName")
        listed = [
            c.metadata()
            for c in _credentials(user).values()
            if service is None or c.service == service
        ]
        return ActionResult({"ServiceSpecificCredentials": listed, "IsTruncated": False})

    def _find(self: Any) -> ServiceCredential:
        user = self.backend.get_user(self._get_param("UserName"))
        wanted = self._get_param("ServiceSpecificCredentialId")
        credential = _credentials(user).get(wanted)
        if credential is None:
            raise NotFoundException(f"No such credential {wanted}")
        return credential

    def update_service_specific_credential(self: Any) -> Any:
        _find(self).status = self._get_param("Status")
        return EmptyResult()

    def delete_service_specific_credential(self: Any) -> Any:
        credential = _find(self)
        del _credentials(self.backend.get_user(credential.user))[credential.id]
        return EmptyResult()

    def get_account_authorization_details(self: Any) -> Any:
        """moto's answer, one page of it: MaxItems (1..1000, 100 by default) items over the
        users, groups, roles and policies in that order, the marker an offset (opaque at
        IAM: never parsed by a caller)."""
        max_items = self._get_int_param("MaxItems", GAAD_PAGE)
        if not 1 <= max_items <= GAAD_MAX:
            raise ValidationError(
                f"1 validation error detected: Value '{max_items}' at 'maxItems' failed to "
                f"satisfy constraint: Member must have value "
                + (
                    "greater than or equal to 1"
                    if max_items < 1
                    else f"less than or equal to {GAAD_MAX}"
                )
            )
        marker = self._get_param("Marker")
        if marker is not None and not str(marker).isdigit():
            raise ValidationError("Invalid Marker")
        start = int(marker or 0)
        details = self.backend.get_account_authorization_details(self._get_param("Filter", []))
        lists = (
            ("UserDetailList", details["users"]),
            ("GroupDetailList", details["groups"]),
            ("RoleDetailList", details["roles"]),
            ("Policies", details["managed_policies"]),
        )
        every = [(name, item) for name, items in lists for item in items]
        page = every[start : start + max_items]
        result: dict[str, Any] = {name: [i for n, i in page if n == name] for name, _ in lists}
        result["IsTruncated"] = start + max_items < len(every)
        if result["IsTruncated"]:
            result["Marker"] = str(start + max_items)
        return ActionResult(result)

    IAMBackend.delete_user = delete_user  # type: ignore[method-assign]
    for handler in (
        get_account_authorization_details,
        create_service_specific_credential,
        list_service_specific_credentials,
        update_service_specific_credential,
        delete_service_specific_credential,
    ):
        setattr(IamResponse, handler.__name__, handler)
    _installed = True
