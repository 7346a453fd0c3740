"""The alert receiver under test: real sources, a real replay cache on a throwaway
inventory, a stub `handle` (the lead's decision code is not ours to test here) that records
what it was given, and a `refuse` that records every refusal."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from killswitch.alerts.models import Alert
from killswitch.alerts.receiver import app
from killswitch.alerts.refusals import AlertRefusedError
from killswitch.alerts.replay import SeenAlerts
from killswitch.alerts.settings import AlertSettings
from killswitch.inventory import Inventory
from killswitch.sandbox.senders import SnsSigner, new_generic_secret

TOPIC = "arn:aws:sns:us-east-1:123456789012:killswitch-alerts"


@dataclass
class Secrets:
    aws: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    alertmanager: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    github: str = field(default_factory=lambda: secrets.token_hex(20))
    generic: str = field(default_factory=new_generic_secret)


@dataclass
class Door:
    """The receiver and what reached each side of it."""

    client: TestClient
    settings: AlertSettings
    keys: Secrets
    signer: SnsSigner
    handled: list[Alert] = field(default_factory=list)
    refused: list[tuple[str, AlertRefusedError, str, str]] = field(default_factory=list)

    def post(self, source: str, body: bytes, headers: dict[str, str]) -> Any:
        return self.client.post(f"/alerts/{source}", content=body, headers=headers)

    def assert_refused(self, answer: Any, status: int, code: str) -> None:
        """Refused with this status and code, ledgered, and nothing handled."""
        assert answer.status_code == status, answer.text
        assert answer.json()["code"] == code
        assert answer.json()["error"]
        assert self.refused and self.refused[-1][1].code == code
        assert self.handled == []


def alert_settings(keys: Secrets, **overrides: Any) -> AlertSettings:
    return AlertSettings.model_validate(
        {
            "aws": {"api_key": keys.aws},
            "sns": {"enabled": True, "topic_arns": [TOPIC]},
            "alertmanager": {"bearer_token": keys.alertmanager},
            "github": {"webhook_secret": keys.github},
            "generic": {"secret": keys.generic},
            **overrides,
        }
    )


def open_door(
    tmp_path: Path,
    settings: AlertSettings | None = None,
    fetch: Callable[[str], bytes] | None = None,
    signer: SnsSigner | None = None,
    keys: Secrets | None = None,
) -> Iterator[Door]:
    keys = keys or Secrets()
    signer = signer or SnsSigner()
    settings = settings or alert_settings(keys)
    replay = SeenAlerts(Inventory(tmp_path / "inventory.db"))
    handled: list[Alert] = []
    refused: list[tuple[str, AlertRefusedError, str, str]] = []

    async def handle(alert: Alert) -> dict[str, Any]:
        handled.append(alert)
        return {"decision": "stub", "alert_id": alert.alert_id}

    def refuse(source: str, problem: AlertRefusedError, client: str, claimed: str) -> None:
        refused.append((source, problem, client, claimed))

    receiver = app(
        settings, handle=handle, refuse=refuse, replay=replay, fetch=fetch or signer.fetch
    )
    with TestClient(receiver, raise_server_exceptions=False) as client:
        yield Door(client, settings, keys, signer, handled, refused)


@pytest.fixture
def door(tmp_path: Path) -> Iterator[Door]:
    yield from open_door(tmp_path)
