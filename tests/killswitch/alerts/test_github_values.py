"""Reading a GitHub alert's leaked value from GitHub's REST API (a local app standing in for
`GET /repos/{owner}/{repo}/secret-scanning/alerts/{n}`, answering as GitHub's schema says)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from killswitch.alerts.models import Alert, LeakedCredential
from killswitch.alerts.settings import GithubAlertSettings
from killswitch.alerts.sources.github_values import leaked_value, with_leaked_value
from killswitch.errors import ProviderError, TransientError

LEAKED = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"  # made up


def alert(repository: str = "octo-org/agent-7", number: str = "7") -> Alert:
    return Alert(
        source="github",
        alert_id=f"{repository}/secret-scanning/{number}",
        event="secret_scanning_alert.created",
        finding_type="github_personal_access_token",
        severity=None,
        agent_id=None,
        environment=None,
        credentials=(LeakedCredential("github", None, None, "github.token"),),
        summary="",
        received_at=datetime.now(UTC),
        labels={"repository": repository, "alert_number": number},
    )


def github(status: int, body: dict[str, Any] | None, seen: list[httpx.Request]) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, content=json.dumps(body or {}).encode())

    return httpx.Client(transport=httpx.MockTransport(answer))


SETTINGS = GithubAlertSettings(webhook_secret=SecretStr("w"), api_token=SecretStr("gho_token"))


def test_the_value_is_read_from_the_configured_api_only() -> None:
    seen: list[httpx.Request] = []
    body = {"number": 7, "secret_type": "github_personal_access_token", "secret": LEAKED}
    found = leaked_value(alert(), SETTINGS, github(200, body, seen))
    assert found.value is not None and found.value.get_secret_value() == LEAKED
    [request] = seen
    assert str(request.url) == (
        "https://api.github.com/repos/octo-org/agent-7/secret-scanning/alerts/7"
    )
    assert request.headers["authorization"] == "Bearer gho_token"
    credential = with_leaked_value(alert().credentials[0], found.value)
    assert LEAKED not in repr(credential)


def test_no_token_no_request_and_no_address_from_the_payload() -> None:
    seen: list[httpx.Request] = []
    no_token = GithubAlertSettings(webhook_secret=SecretStr("w"))
    assert leaked_value(alert(), no_token, github(200, {}, seen)).value is None
    assert (
        leaked_value(alert(repository="../../evil"), SETTINGS, github(200, {}, seen)).value is None
    )
    assert leaked_value(alert(number="7/../x"), SETTINGS, github(200, {}, seen)).value is None
    assert seen == []


@pytest.mark.parametrize(
    ("status", "body", "problem"),
    [
        (404, {"message": "Not Found"}, "404"),
        (200, {"number": 7}, "holds no secret"),
        (200, {"unexpected": True}, "not a secret-scanning alert"),
    ],
)
def test_no_value_says_why(status: int, body: dict[str, Any], problem: str) -> None:
    found = leaked_value(alert(), SETTINGS, github(status, body, []))
    assert found.value is None and found.problem and problem in found.problem


def test_throttling_is_transient_and_a_refused_token_is_not() -> None:
    with pytest.raises(TransientError):
        leaked_value(alert(), SETTINGS, github(503, {}, []))
    with pytest.raises(TransientError):
        leaked_value(alert(), SETTINGS, github(429, {}, []))
    with pytest.raises(ProviderError) as refused:
        leaked_value(alert(), SETTINGS, github(403, {"message": "Resource not accessible"}, []))
    assert not isinstance(refused.value, TransientError)
    assert "gho_token" not in str(refused.value)
