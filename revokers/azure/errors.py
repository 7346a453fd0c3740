"""azure-core / Graph / Entra errors → the kill switch's error tree."""

from __future__ import annotations

import json
import re

import httpx
from azure.core import exceptions as aexc

from killswitch.errors import (
    KillSwitchError,
    NotFoundError,
    OwnIdentityError,
    ProviderError,
    TransientError,
)

TRANSPORT = (aexc.ServiceRequestError, aexc.ServiceResponseError, httpx.TransportError)
# How MSAL words a status it did not keep the response of: "HTTP Error: 503" (a token
# request), "OIDC Discovery failed on … HTTP status: 429" (the authority's configuration).
HTTP_STATUS = re.compile(r"HTTP (?:Error|status):? (\d{3})")
# Entra's service errors (a transient error, the directory unavailable): never our identity.
SERVICE_ERROR = re.compile(r"AADSTS(?:90024|90033)\b")


def translate(exc: Exception, *, doing: str) -> KillSwitchError:
    """Map an azure-core or httpx exception raised while `doing` something."""
    if isinstance(exc, aexc.ResourceNotFoundError):
        return NotFoundError(f"{doing}: {exc.message}", provider="azure", provider_code="404")
    if isinstance(exc, aexc.ClientAuthenticationError):
        return _authentication(exc, doing)
    if isinstance(exc, aexc.HttpResponseError):
        status = exc.status_code or 0
        code = str(getattr(exc.error, "code", "") or status)
        if status == 429 or status >= 500:
            return TransientError(
                f"{doing}: {exc.message}",
                provider="azure",
                provider_code=code,
                retry_after=_retry_after(exc.response),
            )
        if status == 403:
            return OwnIdentityError(f"{doing}: {exc.message}", provider="azure", provider_code=code)
        return ProviderError(f"{doing}: {exc.message}", provider="azure", provider_code=code)
    if isinstance(exc, TRANSPORT):
        return TransientError(f"{doing}: {type(exc).__name__}", provider="azure")
    if isinstance(exc, json.JSONDecodeError):  # an HTML page where JSON was due: not Azure's
        return TransientError(
            f"{doing}: unparseable response body (body not shown)",
            provider="azure",
            provider_code="unparseable-body",
        )
    raise exc


def _authentication(exc: aexc.ClientAuthenticationError, doing: str) -> KillSwitchError:
    """azure-identity raises ClientAuthenticationError for anything the token endpoint did
    not grant: our identity refused (a 4xx) pages, but Entra throttling or failing (429,
    5xx) or the path to it failing (a reset, a timeout) is transient. The status is on the
    response when MSAL kept it, else only in the message of the error it wraps."""
    status = exc.response.status_code if exc.response is not None else None
    seen: BaseException | None = exc
    while status is None and seen is not None:
        if isinstance(seen, TRANSPORT):
            return TransientError(
                f"{doing}: the token endpoint did not answer ({type(seen).__name__})",
                provider="azure",
                provider_code="token-endpoint-unreachable",
            )
        found = HTTP_STATUS.search(str(seen))
        status = int(found.group(1)) if found else None
        seen = seen.__cause__ or seen.__context__
    service = SERVICE_ERROR.search(str(exc.message))
    if service is not None:  # Entra's own "try again" (throttled, a directory outage)
        return TransientError(
            f"{doing}: the token endpoint answered {service.group(0)} (a service error)",
            provider="azure",
            provider_code=service.group(0),
        )
    if status is not None and (status == 429 or status >= 500):
        return TransientError(
            f"{doing}: the token endpoint answered HTTP {status}",
            provider="azure",
            provider_code=str(status),
            retry_after=_retry_after(exc.response),
        )
    return OwnIdentityError(f"{doing}: {exc.message}", provider="azure", provider_code="401")


def _retry_after(response: object) -> float | None:
    headers = getattr(response, "headers", None) or {}
    try:
        return float(headers.get("Retry-After", ""))
    except (TypeError, ValueError):
        return None


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
        return TransientError(
            text, provider="azure", provider_code=code, retry_after=_retry_after(response)
        )
    return ProviderError(text, provider="azure", provider_code=code)
