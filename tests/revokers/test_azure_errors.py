"""azure-identity's ClientAuthenticationError, as MSAL shapes it, read by the error table:
Entra throttling, failing or unreachable is transient; only our identity refused pages.
(Through the sandbox's proxy: tests/sandbox/test_proxy_clouds.py.)"""

from __future__ import annotations

import pytest
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError

from killswitch.errors import OwnIdentityError, TransientError
from revokers.azure.errors import translate


def wrapped(message: str, cause: BaseException | None = None) -> ClientAuthenticationError:
    """What azure-identity raises: its message, the exception it wrapped as the cause."""
    try:
        raise ClientAuthenticationError(message=message) from cause
    except ClientAuthenticationError as exc:
        return exc


class Answer:
    """The HTTP response azure-identity keeps on the error when MSAL hands it one."""

    def __init__(self, status_code: int, headers: dict[str, str]) -> None:
        self.status_code = status_code
        self.headers = headers
        self.reason = "whatever"

    def text(self) -> str:
        return "{}"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        # A 5xx token answer: MSAL keeps only the status, in its own exception's words.
        (wrapped("Authentication failed: HTTP Error: 503", RuntimeError("HTTP Error: 503")), "503"),
        # The authority's OpenID configuration throttled (MSAL: a ValueError).
        (
            wrapped(
                "Authentication failed: Unable to get authority configuration",
                ValueError("OIDC Discovery failed on https://x. HTTP status: 429, Error: {}"),
            ),
            "429",
        ),
        # No answer at all: a reset, a timeout.
        (
            wrapped("Authentication failed: Connection aborted", ServiceRequestError("aborted")),
            "token-endpoint-unreachable",
        ),
        # Entra's own service errors (throttled by request budget, the directory down).
        (wrapped("Authentication failed: AADSTS90024: RequestBudgetExceededError"), "AADSTS90024"),
        (wrapped("Authentication failed: AADSTS90033: MsodsServiceUnavailable"), "AADSTS90033"),
    ],
)
def test_a_failing_token_endpoint_is_transient(error: ClientAuthenticationError, code: str) -> None:
    translated = translate(error, doing="token")
    assert isinstance(translated, TransientError), translated
    assert translated.provider_code == code


def test_a_kept_429_answer_is_transient_with_its_retry_after() -> None:
    error = ClientAuthenticationError(
        message="Authentication failed: throttled",
        response=Answer(429, {"Retry-After": "7"}),  # type: ignore[arg-type]
    )
    translated = translate(error, doing="token")
    assert isinstance(translated, TransientError)
    assert translated.retry_after == 7.0


@pytest.mark.parametrize(
    "error",
    [
        wrapped("Authentication failed: AADSTS7000215: Invalid client secret provided."),
        wrapped(
            "Authentication failed: Unable to get authority configuration",
            ValueError("OIDC Discovery failed on https://x. HTTP status: 400, Error: {}"),
        ),
        ClientAuthenticationError(
            message="Authentication failed: unauthorized_client",
            response=Answer(400, {}),  # type: ignore[arg-type]
        ),
    ],
)
def test_our_identity_refused_is_never_retried(error: ClientAuthenticationError) -> None:
    assert isinstance(translate(error, doing="token"), OwnIdentityError)
