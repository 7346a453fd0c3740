"""google-api-core / google-auth exceptions → the kill switch's error tree."""

from __future__ import annotations

from google.api_core import exceptions as gexc

from killswitch.errors import (
    KillSwitchError,
    NotFoundError,
    OwnIdentityError,
    ProviderError,
    TransientError,
)

TRANSIENT = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.TooManyRequests,
    gexc.ResourceExhausted,
    gexc.Aborted,  # a concurrent IAM policy change: re-read and retry
    gexc.InternalServerError,
)


def translate(exc: Exception, *, doing: str) -> KillSwitchError:
    """Map a Google client exception raised while `doing` something into the error tree."""
    if isinstance(exc, gexc.GoogleAPICallError):
        code = getattr(exc.grpc_status_code, "name", "") or str(exc.code)
        text = f"{doing}: {code}: {exc.message}"
        if isinstance(exc, gexc.NotFound):
            return NotFoundError(text, provider="gcp", provider_code=code)
        if isinstance(exc, TRANSIENT):
            return TransientError(text, provider="gcp", provider_code=code)
        if isinstance(exc, gexc.PermissionDenied | gexc.Unauthenticated):
            return OwnIdentityError(text, provider="gcp", provider_code=code)
        return ProviderError(text, provider="gcp", provider_code=code)
    if isinstance(exc, gexc.RetryError):
        return TransientError(f"{doing}: {exc}", provider="gcp")
    raise exc
