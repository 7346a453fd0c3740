"""Probes: the agent's own key file exchanged for an access token (google-auth, the
jwt-bearer grant at the key's `token_uri`): `invalid_grant` is the provider's rejection.
Read-back without the key: the key's `disabled` flag, or its absence."""

from __future__ import annotations

import json
from typing import Any

import google.auth.transport.requests
import requests
from google.auth import exceptions as auth_exceptions
from google.oauth2 import service_account

from killswitch.errors import NotFoundError, TransientError
from killswitch.models import Credential, Verdict, VerdictStatus
from killswitch.secrets import Material
from revokers.base import ProbeAttempt, ProbeOutcome
from revokers.gcp.client import Clients
from revokers.gcp.errors import translate

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


class _Timed(google.auth.transport.requests.Request):
    """google-auth's requests transport, with our timeout instead of its 120 s default."""

    def __init__(self, session: requests.Session, timeout_s: float) -> None:
        super().__init__(session=session)
        self.timeout_s = timeout_s

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self.timeout_s)
        return super().__call__(*args, **kwargs)  # type: ignore[no-untyped-call]


def probe(material: Material, session: requests.Session, timeout_s: float) -> ProbeAttempt:
    raw = material.get("key_file")
    if not raw:
        return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, "probe material lacks the key file")
    try:
        info = json.loads(raw)
        credentials = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
    except (ValueError, KeyError) as exc:
        return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, f"unusable key file: {type(exc).__name__}")
    request = _Timed(session, timeout_s)
    try:
        credentials.refresh(request)
    except auth_exceptions.RefreshError as exc:
        detail = exc.args[0] if exc.args else str(exc)
        if "invalid_grant" in str(detail):
            return ProbeAttempt(ProbeOutcome.REJECTED, f"token exchange → {detail}")
        if getattr(exc, "retryable", False):
            raise TransientError(f"token exchange: {detail}", provider="gcp") from exc
        return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, f"token exchange → {detail}")
    except auth_exceptions.TransportError as exc:
        raise TransientError(
            f"token endpoint unreachable: {type(exc).__name__}", provider="gcp"
        ) from exc
    return ProbeAttempt(
        ProbeOutcome.ACCEPTED, "token exchange with the agent's key: access token issued"
    )


def read_back(clients: Clients, credential: Credential, key_name: str) -> Verdict:
    to_prove = "put the key file in a secret source to probe it"
    try:
        key = clients.iam.get_service_account_key(name=key_name)
    except Exception as exc:
        error = translate(exc, doing=f"get key {credential.ref}")
        if isinstance(error, NotFoundError):
            return Verdict(
                VerdictStatus.UNVERIFIED, "read back: key deleted (NOT_FOUND)", to_prove=to_prove
            )
        return Verdict(
            VerdictStatus.UNKNOWN, f"read back failed: {error.message}", to_prove=to_prove
        )
    if key.disabled:
        return Verdict(VerdictStatus.UNVERIFIED, "read back: key disabled", to_prove=to_prove)
    return Verdict(VerdictStatus.UNKNOWN, "read back: key still enabled", to_prove=to_prove)
