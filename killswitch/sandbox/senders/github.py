"""GitHub's secret-scanning webhook sender: the `secret_scanning_alert` payload (the fields
of GitHub's `secret-scanning-alert-webhook` schema) and its X-Hub-Signature-256."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime
from typing import Any


def secret_scanning_alert(
    *,
    secret_type: str = "github_personal_access_token",  # noqa: S107
    number: int = 42,
    repository: str = "octo-org/agents",
    action: str = "created",
    validity: str = "active",
    secret: str | None = None,
) -> dict[str, Any]:
    """GitHub's `secret_scanning_alert` organisation webhook (the fields of GitHub's
    `secret-scanning-alert-webhook` schema: no secret value, unless `secret` is given to
    imitate a relayed REST alert)."""
    owner, _, name = repository.partition("/")
    api = f"https://api.github.com/repos/{repository}"
    alert: dict[str, Any] = {
        "number": number,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "updated_at": None,
        "url": f"{api}/secret-scanning/alerts/{number}",
        "html_url": f"https://github.com/{repository}/security/secret-scanning/{number}",
        "locations_url": f"{api}/secret-scanning/alerts/{number}/locations",
        "resolution": None,
        "resolved_at": None,
        "resolved_by": None,
        "resolution_comment": None,
        "secret_type": secret_type,
        "secret_type_display_name": secret_type.replace("_", " ").title(),
        "validity": validity,
        "push_protection_bypassed": False,
        "push_protection_bypassed_by": None,
        "push_protection_bypassed_at": None,
        "publicly_leaked": False,
        "multi_repo": False,
    }
    if secret is not None:
        alert["secret"] = secret
    org = {"login": owner, "id": 30846345, "url": f"https://api.github.com/orgs/{owner}"}
    return {
        "action": action,
        "alert": alert,
        "repository": {
            "id": 257423561,
            "name": name,
            "full_name": repository,
            "private": True,
            "owner": {**org, "type": "Organization"},
            "html_url": f"https://github.com/{repository}",
            "url": api,
        },
        "organization": org,
        "sender": {"login": "github", "id": 9919, "type": "Bot"},
    }


def github_headers(
    secret: str, body: bytes, *, event: str = "secret_scanning_alert", delivery: str | None = None
) -> dict[str, str]:
    """GitHub's webhook headers: the HMAC-SHA256 of the body, the event, the delivery id."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "x-hub-signature-256": f"sha256={digest}",
        "x-github-event": event,
        "x-github-delivery": delivery or str(uuid.uuid4()),
        "x-github-hook-id": "1",
        "user-agent": "GitHub-Hookshot/sandbox",
        "content-type": "application/json",
    }
