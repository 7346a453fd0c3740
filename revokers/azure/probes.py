"""The probe: a client-credentials token request with the agent's secret, sent straight to
the tenant's token endpoint, and the Entra token endpoint's answers to it — which AADSTS
codes mean the credential is dead (the allow-list); every other code, service errors first
of all, proves nothing."""

from __future__ import annotations

import re
import threading
from typing import Any

import httpx

from revokers.azure.graph import tls
from revokers.base import ProbeAttempt, ProbeOutcome

# The AADSTS codes of a token request that mean the credential is dead; any other (90024,
# 90033: service errors; 700027, 50034…) is inconclusive.
DEAD: dict[str, str] = {
    "AADSTS7000215": "invalid client secret (removed or wrong)",
    "AADSTS7000222": "client secret expired",
    "AADSTS7000112": "application disabled",
    "AADSTS700016": "application not found in the tenant",
}
AADSTS = re.compile(r"AADSTS\d+")


def classify(message: str) -> ProbeAttempt:
    """A refused client-credentials token request: an allow-listed AADSTS code rejects."""
    found = AADSTS.search(message)
    code = found.group(0) if found else ""
    said = f"token request → {_first_line(message, code)}"
    if code in DEAD:
        return ProbeAttempt(ProbeOutcome.REJECTED, f"{said} [{DEAD[code]}]", code)
    return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, f"{said} (not a dead credential)", code)


def _first_line(message: Any, code: str) -> str:
    text = str(message)
    at = text.find(code) if code else 0
    return text[at:].split("\r\n")[0].split("\n")[0][:200]


class TokenRequests:
    """`POST {authority}/{tenant}/oauth2/v2.0/token` (grant_type=client_credentials) with a
    credential's own client id and secret: one round trip a probe. The token endpoint comes
    from the tenant's OpenID configuration (`GET …/v2.0/.well-known/openid-configuration`),
    read once per tenant and kept: it describes the tenant, not the credential. (A
    ClientSecretCredential per probe read that document again every time — two round trips
    a probe — and one credential across probes would answer from its token cache, as MSAL's
    HTTP cache answers a repeated refused request for a minute: never a probe.) No token
    issued here is kept or used."""

    def __init__(self, authority: str, verify: bool | str, timeout_s: float) -> None:
        host = authority.rstrip("/")
        self.authority = host if "://" in host else f"https://{host}"
        self.http = httpx.Client(verify=tls(verify), timeout=timeout_s)
        self._endpoints: dict[str, str] = {}
        self._lock = threading.Lock()

    def endpoint(self, tenant: str) -> str:
        """The tenant's token endpoint, from its OpenID configuration (read once)."""
        with self._lock:
            known = self._endpoints.get(tenant)
        if known is not None:
            return known
        response = self.http.get(f"{self.authority}/{tenant}/v2.0/.well-known/openid-configuration")
        response.raise_for_status()
        found = str(response.json()["token_endpoint"])
        with self._lock:
            self._endpoints[tenant] = found
        return found

    def probe(self, tenant: str, client_id: str, secret: str, scope: str) -> ProbeAttempt:
        """One token request; the provider's answer, judged against the allow-list."""
        try:
            response = self.http.post(
                self.endpoint(tenant),
                data={
                    "grant_type": "client_credentials",
                    "client_id": client_id,
                    "client_secret": secret,
                    "scope": scope,
                },
                headers={"Accept": "application/json"},
            )
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            return ProbeAttempt(
                ProbeOutcome.INCONCLUSIVE, f"token request: {type(exc).__name__} (no answer)"
            )
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        if response.status_code == 200 and body.get("access_token"):
            return ProbeAttempt(
                ProbeOutcome.ACCEPTED, "token request with the agent's secret: access token issued"
            )
        described = str(body.get("error_description") or body.get("error") or "")
        if response.status_code >= 500:
            # A service error, whatever code it carries: never a dead credential.
            code = AADSTS.search(described)
            said = _first_line(described, code.group(0) if code else "")
            return ProbeAttempt(
                ProbeOutcome.INCONCLUSIVE,
                f"token request → HTTP Error: {response.status_code}"
                + (f": {said}" if said else "")
                + " (not a dead credential)",
                code.group(0) if code else "",
            )
        return classify(described or f"HTTP Error: {response.status_code}")

    def close(self) -> None:
        self.http.close()
