"""Probes: the agent's own key file exchanged for an access token (google-auth, the
jwt-bearer grant at the key's `token_uri`): `invalid_grant` with a description on the
allow-list below is the provider's rejection; `invalid_grant` also means clock skew
("Invalid JWT: Token must be a short-lived token…", iat/exp), which proves nothing.
Read-back without the key: the key's `disabled` flag, or its absence."""

from __future__ import annotations

import functools
import json
from typing import Any

import google.auth.transport.requests
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt
from google.auth import exceptions as auth_exceptions
from google.oauth2 import service_account

from killswitch.errors import NotFoundError, TransientError
from killswitch.models import Credential, Verdict, VerdictStatus
from killswitch.secrets import Material
from revokers.base import ProbeAttempt, ProbeOutcome
from revokers.gcp.client import Clients
from revokers.gcp.errors import translate

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
# invalid_grant descriptions that mean a dead key or account; any other is inconclusive.
DEAD: dict[str, str] = {
    "Invalid JWT Signature.": "the key is disabled or deleted",
    "Invalid grant: account not found": "the service account is disabled or deleted",
    # Google's answer for a disabled service account as reported in the field (client
    # library issues); not in Google's docs (unconfirmed).
    "Robot is disabled.": "the service account is disabled",
}


def classify(detail: str) -> ProbeAttempt:
    """A refused token exchange (google-auth's `invalid_grant: <description>`): an
    allow-listed description rejects; anything else, clock skew included, is inconclusive."""
    error, _, description = detail.partition(":")
    description = description.strip()
    said = f"token exchange → {detail[:200]}"
    if error.strip() == "invalid_grant" and description in DEAD:
        return ProbeAttempt(ProbeOutcome.REJECTED, f"{said} [{DEAD[description]}]", error)
    if error.strip() == "invalid_grant" and ("JWT" in description or "iat" in description):
        said += " (a clock-skew or malformed assertion, not a dead key)"
    return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, said, error.strip())


class _Timed(google.auth.transport.requests.Request):
    """google-auth's requests transport, with our timeout instead of its 120 s default."""

    def __init__(self, session: requests.Session, timeout_s: float) -> None:
        super().__init__(session=session)
        self.timeout_s = timeout_s

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self.timeout_s)
        return super().__call__(*args, **kwargs)  # type: ignore[no-untyped-call]


def _signer(info: dict[str, Any]) -> crypt.Signer:
    """The key file's RSA key, loaded without OpenSSL's key validation: that check costs
    ~40 ms of CPU a key (a fleet's probes stood in line for it on a busy core) and guards
    against a malformed key whose signatures could leak it — a key Google issued, read from
    the operator's own secret source, to be refused. A key that is not RSA is unusable."""
    key = serialization.load_pem_private_key(
        str(info["private_key"]).encode(), password=None, unsafe_skip_rsa_key_validation=True
    )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the key file's private_key is not an RSA key")
    return crypt.RSASigner(key, key_id=info.get("private_key_id"))


@functools.lru_cache(maxsize=256)
def _parsed(raw: str) -> service_account.Credentials:
    """The key file parsed once, for the probes that follow each other for a settle window;
    never refreshed itself — each probe refreshes a copy. As google-auth's own
    `from_service_account_info` builds it (the same fields), but with `_signer`."""
    info = json.loads(raw)
    if not isinstance(info, dict):
        raise ValueError("the key file is not a JSON object")
    credentials: service_account.Credentials = service_account.Credentials(
        _signer(info),
        service_account_email=info["client_email"],
        token_uri=info["token_uri"],
        scopes=SCOPES,
        project_id=info.get("project_id"),
        universe_domain=info.get("universe_domain", "googleapis.com"),
    )
    return credentials


def probe(material: Material, session: requests.Session, timeout_s: float) -> ProbeAttempt:
    """One jwt-bearer token exchange with the agent's key file."""
    raw = material.get("key_file")
    if not raw:
        return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, "probe material lacks the key file")
    try:
        # A copy of the parsed key file: a credential never refreshed, so no token is reused.
        credentials = _parsed(raw).with_scopes(SCOPES)
    except (ValueError, KeyError) as exc:
        return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, f"unusable key file: {type(exc).__name__}")
    request = _Timed(session, timeout_s)
    try:
        credentials.refresh(request)
    except auth_exceptions.RefreshError as exc:
        detail = str(exc.args[0] if exc.args else exc)
        if getattr(exc, "retryable", False) and not detail.startswith("invalid_grant"):
            raise TransientError(f"token exchange: {detail}", provider="gcp") from exc
        return classify(detail)
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
