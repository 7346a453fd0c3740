"""One table from botocore errors to the kill switch's error tree."""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

from killswitch.errors import (
    KillSwitchError,
    NotFoundError,
    OwnIdentityError,
    ProviderError,
    TransientError,
)

TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ServiceFailure",
        "InternalError",
        "InternalFailure",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "ConcurrentModification",
    }
)
# Raised against the kill switch's own identity: never retried, always paged.
OWN_IDENTITY_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
        "ExpiredToken",
        "ExpiredTokenException",
        "AuthFailure",
    }
)
NOT_FOUND_CODES = frozenset({"NoSuchEntity"})
TRANSIENT_EXCEPTIONS = (
    EndpointConnectionError,
    ConnectTimeoutError,
    ReadTimeoutError,
    ConnectionClosedError,
)
# A body botocore cannot parse (an HTML 503 page from a proxy or load balancer, a cut-off
# answer): not AWS's verdict on the request, so retried like a 5xx. ResponseParserError is
# not a BotoCoreError; the message quotes the whole body, which is never repeated here.
UNPARSEABLE_EXCEPTIONS = (ResponseParserError,)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def unparseable(exc: Exception) -> str:
    """What botocore says of a body it could not parse, without the body it quotes."""
    first = str(exc).split("\n", 1)[0].split(":\n", 1)[0]
    return (first[:200] or "unparseable response body") + " (body not shown)"


def translate(exc: Exception, *, doing: str) -> KillSwitchError:
    """Map a botocore exception raised while `doing` something into the error tree."""
    if isinstance(exc, ClientError):
        code, message = error_code(exc), error_message(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        text = f"{doing}: {code}: {message}"
        if code in NOT_FOUND_CODES:
            return NotFoundError(text, provider="aws", provider_code=code)
        if code in TRANSIENT_CODES or status >= 500 or status == 429:
            return TransientError(text, provider="aws", provider_code=code)
        if code in OWN_IDENTITY_CODES:
            return OwnIdentityError(text, provider="aws", provider_code=code)
        return ProviderError(text, provider="aws", provider_code=code)
    if isinstance(exc, TRANSIENT_EXCEPTIONS):
        return TransientError(f"{doing}: {type(exc).__name__}: {exc}", provider="aws")
    if isinstance(exc, UNPARSEABLE_EXCEPTIONS):
        return TransientError(
            f"{doing}: {type(exc).__name__}: {unparseable(exc)}",
            provider="aws",
            provider_code="unparseable-body",
        )
    if isinstance(exc, BotoCoreError):
        return ProviderError(f"{doing}: {type(exc).__name__}: {exc}", provider="aws")
    raise exc
