"""The Entra token endpoint's answers to a probe: which AADSTS codes mean the credential is
dead (the allow-list); every other code, service errors first of all, proves nothing."""

from __future__ import annotations

import json
import re
from typing import Any

from azure.core.exceptions import ClientAuthenticationError

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


def said(exc: ClientAuthenticationError) -> str:
    """What Entra said: azure-identity's message, or, when it kept only the HTTP status (a
    5xx answer), the `error_description` of the response it carries (no secret in it)."""
    message = str(exc.message)
    if AADSTS.search(message) or exc.response is None:
        return message
    try:
        body = json.loads(exc.response.text())
    except (ValueError, TypeError, AttributeError):
        return message
    described = body.get("error_description") if isinstance(body, dict) else None
    return f"{message}: {described}" if described else message
