"""The leaked value of a GitHub secret-scanning alert, read from GitHub's REST API.

GitHub's `secret_scanning_alert` webhook names the alert but not the secret: the value is
only in `GET /repos/{owner}/{repo}/secret-scanning/alerts/{alert_number}` (field `secret`),
for a token with "Secret scanning alerts: read". It is probe material: the leaked token is
proven dead with the very value the attacker holds. It is returned as a `SecretStr` and
never logged; the token is sent only to the configured `api_url`, never to an address the
payload names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from killswitch.alerts.models import Alert, LeakedCredential
from killswitch.alerts.settings import GithubAlertSettings
from killswitch.errors import ProviderError, TransientError

REPOSITORY = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")


class _RestAlert(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    number: int
    secret_type: str | None = None
    secret: SecretStr | None = Field(None, max_length=10_000)


@dataclass(frozen=True, slots=True)
class LeakedValue:
    """What GitHub answered for one alert: the value, or why there is none."""

    value: SecretStr | None
    problem: str | None = None


def leaked_value(
    alert: Alert, settings: GithubAlertSettings, client: httpx.Client | None = None
) -> LeakedValue:
    """`GET {api_url}/repos/{owner}/{repo}/secret-scanning/alerts/{alert_number}`: the
    `secret` of a GitHub alert (raises TransientError on throttling, 5xx and timeouts)."""
    if settings.api_token is None:
        return LeakedValue(None, "no alerts.github.api_token: the value is not fetched")
    repository, number = alert.labels.get("repository", ""), alert.labels.get("alert_number", "")
    if alert.source != "github" or not REPOSITORY.fullmatch(repository) or not number.isdigit():
        return LeakedValue(None, "not a GitHub secret-scanning alert")
    url = f"{settings.api_url.rstrip('/')}/repos/{repository}/secret-scanning/alerts/{number}"
    headers = {
        "authorization": f"Bearer {settings.api_token.get_secret_value()}",
        "accept": "application/vnd.github+json",
        "x-github-api-version": "2022-11-28",
    }
    own = client is None
    http = client or httpx.Client(timeout=10.0, follow_redirects=False)
    try:
        answer = http.get(url, headers=headers)
    except httpx.HTTPError as exc:
        raise TransientError(
            f"GitHub did not answer for alert {number} ({type(exc).__name__})", provider="github"
        ) from None
    finally:
        if own:
            http.close()
    if answer.status_code == 429 or answer.status_code >= 500:
        raise TransientError(
            f"GitHub answered {answer.status_code} for alert {number}",
            provider="github",
            provider_code=str(answer.status_code),
        )
    if answer.status_code in (401, 403):
        raise ProviderError(
            f"GitHub refused the alerts token ({answer.status_code}) for {repository}",
            provider="github",
            provider_code=str(answer.status_code),
            remediation="Give alerts.github.api_token 'Secret scanning alerts: read' on the "
            "organisation's repositories.",
        )
    if answer.status_code == 404:
        return LeakedValue(None, f"GitHub has no alert {number} in {repository} (404)")
    if answer.status_code != 200:
        return LeakedValue(None, f"GitHub answered {answer.status_code} for alert {number}")
    try:
        found = _RestAlert.model_validate_json(answer.content)
    except ValidationError:
        return LeakedValue(None, "GitHub's answer is not a secret-scanning alert")
    if found.secret is None:
        return LeakedValue(None, "GitHub's answer holds no secret (hidden or withdrawn)")
    return LeakedValue(found.secret)


def with_leaked_value(credential: LeakedCredential, value: SecretStr) -> LeakedCredential:
    """The credential of a GitHub alert, now holding its leaked value as probe material."""
    return LeakedCredential(credential.provider, credential.identifier, value, credential.kind)
