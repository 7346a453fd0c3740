"""Google's OAuth2 token endpoint for service-account keys (jwt-bearer grant), served by
the sandbox's shared HTTP app at `/gcp/token`: it checks a key's RS256 JWT assertion
against its public key, then the key's and the account's state. A clock-skew mode per
account (`POST /_sandbox/gcp/clock-skew {"email", "on"}`, or `set_clock_skew`) answers
every assertion of it as Google does when the clocks disagree."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from killswitch.sandbox.gcp.state import GcpState

# Google's words for an assertion outside its time window (clock skew): `invalid_grant`,
# the same error as a dead key's.
CLOCK_SKEW = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
    "timeframe. Check your iat and exp values in the JWT claim."
)


def _b64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def token_exchange(state: GcpState, body: bytes) -> tuple[int, dict[str, Any]]:
    """POST /token (jwt-bearer): check the assertion's RS256 signature with the key's public
    key, then the key's and the account's state; Google's answer shapes."""

    def refused(description: str) -> tuple[int, dict[str, Any]]:
        return 400, {"error": "invalid_grant", "error_description": description}

    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
        return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type: "}
    try:
        head, claims_part, signature = form["assertion"].split(".")
        header = json.loads(_b64(head))
        claims = json.loads(_b64(claims_part))
    except (KeyError, ValueError):
        return refused(CLOCK_SKEW)
    found = state.by_key_id(str(header.get("kid", "")))
    if found is None:
        return refused("Invalid JWT Signature.")
    account, key = found
    if account.email in state.skewed:
        # As Google answers an assertion whose iat/exp its own clock finds out of range:
        # before it looks at the key, so a dead key answers this too.
        return refused(CLOCK_SKEW)
    public = serialization.load_pem_public_key(key.public_pem)
    try:
        if not isinstance(public, rsa.RSAPublicKey):
            return refused("Invalid JWT Signature.")
        public.verify(
            _b64(signature), f"{head}.{claims_part}".encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        return refused("Invalid JWT Signature.")
    now = time.time()
    if claims.get("iss") != account.email or not (
        now - 300 <= float(claims.get("exp", 0)) <= now + 3900
    ):
        return refused(CLOCK_SKEW)
    if key.disabled:
        return refused("Invalid JWT Signature.")
    if account.disabled:
        return refused("Invalid grant: account not found")
    return 200, {
        "access_token": "ya29.sandbox-" + secrets.token_urlsafe(32),
        "expires_in": 3599,
        "token_type": "Bearer",
    }


def set_clock_skew(http_url: str, email: str, on: bool = True) -> None:
    """Turn the token endpoint's clock-skew answer on or off for one service account
    (`http_url`: the sandbox's shared HTTP app, direct)."""
    import httpx

    httpx.post(
        f"{http_url}/_sandbox/gcp/clock-skew", json={"email": email, "on": on}, timeout=10
    ).raise_for_status()
