"""One table from hvac and requests errors to the kill switch's error tree."""

from __future__ import annotations

from hvac import exceptions as hv
from requests import exceptions as rq

from killswitch.errors import (
    KillSwitchError,
    NotFoundError,
    OwnIdentityError,
    ProviderError,
    TransientError,
)

TRANSIENT = (
    hv.RateLimitExceeded,
    hv.InternalServerError,
    hv.BadGateway,
    hv.VaultDown,
    hv.VaultNotInitialized,
    rq.ConnectionError,
    rq.Timeout,
)


def translate(exc: Exception, *, doing: str) -> KillSwitchError:
    """Map an hvac/requests exception raised while `doing` something into the error tree."""
    if isinstance(exc, rq.JSONDecodeError):  # a 200 with an HTML page: not Vault's answer
        text = f"{doing}: unparseable response body (body not shown)"
        return TransientError(text, provider="vault", provider_code="unparseable-body")
    text = f"{doing}: {type(exc).__name__}: {_message(exc)}"
    if isinstance(exc, TRANSIENT):
        return TransientError(text, provider="vault", provider_code=type(exc).__name__)
    if isinstance(exc, hv.InvalidPath):
        return NotFoundError(text, provider="vault", provider_code="InvalidPath")
    if isinstance(exc, hv.Forbidden | hv.Unauthorized):
        return OwnIdentityError(text, provider="vault", provider_code=type(exc).__name__)
    if isinstance(exc, hv.VaultError):
        return ProviderError(text, provider="vault", provider_code=type(exc).__name__)
    raise exc


def _message(exc: Exception) -> str:
    """hvac puts the URL after the errors; keep the errors (never a request body)."""
    errors = getattr(exc, "errors", None)
    if errors:
        return "; ".join(str(e) for e in errors)
    return str(exc).split(", on ")[0]
