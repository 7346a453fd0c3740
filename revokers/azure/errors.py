"""azure-core / Graph / Entra errors → the kill switch's error tree."""

from __future__ import annotations

import json

import httpx
from azure.core import exceptions as aexc

from killswitch.errors import (
    KillSwitchError,
    NotFoundError,
    OwnIdentityError,
    ProviderError,
    TransientError,
)


def translate(exc: Exception, *, doing: str) -> KillSwitchError:
    """Map an azure-core or httpx exception raised while `doing` something."""
    if isinstance(exc, aexc.ResourceNotFoundError):
        return NotFoundError(f"{doing}: {exc.message}", provider="azure", provider_code="404")
    if isinstance(exc, aexc.ClientAuthenticationError):
        return OwnIdentityError(f"{doing}: {exc.message}", provider="azure", provider_code="401")
    if isinstance(exc, aexc.HttpResponseError):
        status = exc.status_code or 0
        code = str(getattr(exc.error, "code", "") or status)
        if status == 429 or status >= 500:
            return TransientError(f"{doing}: {exc.message}", provider="azure", provider_code=code)
        if status == 403:
            return OwnIdentityError(f"{doing}: {exc.message}", provider="azure", provider_code=code)
        return ProviderError(f"{doing}: {exc.message}", provider="azure", provider_code=code)
    if isinstance(exc, aexc.ServiceRequestError | aexc.ServiceResponseError | httpx.TransportError):
        return TransientError(f"{doing}: {type(exc).__name__}", provider="azure")
    if isinstance(exc, json.JSONDecodeError):  # an HTML page where JSON was due: not Azure's
        return TransientError(
            f"{doing}: unparseable response body (body not shown)",
            provider="azure",
            provider_code="unparseable-body",
        )
    raise exc


def graph_error(response: httpx.Response, doing: str) -> KillSwitchError:
    """A Graph answer that is not a success: `{"error": {"code", "message"}}`."""
    try:
        error = response.json().get("error", {})
    except ValueError:
        error = {}
    code = str(error.get("code") or response.status_code)
    text = f"{doing}: HTTP {response.status_code} {code}: {error.get('message', '')}"
    if response.status_code == 404:
        return NotFoundError(text, provider="azure", provider_code=code)
    if response.status_code in (401, 403):
        return OwnIdentityError(text, provider="azure", provider_code=code)
    if response.status_code == 429 or response.status_code >= 500:
        return TransientError(text, provider="azure", provider_code=code)
    return ProviderError(text, provider="azure", provider_code=code)
