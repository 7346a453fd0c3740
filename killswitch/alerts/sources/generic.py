"""`POST /alerts/generic`: JSON from any detector or SIEM, signed with the Standard Webhooks
scheme (`webhook-id`, `webhook-timestamp`, `webhook-signature`: HMAC-SHA256 of
`id.timestamp.body` with the `whsec_…` secret), verified by the `standardwebhooks` library;
timestamp window, then replay check on `webhook-id`.

The body (documented in `runbooks/alerts.md`, validated with `extra="forbid"`):

    {"id": "det-42",                      # optional: the detector's own id (dedup)
     "event": "credential.leaked",        # what happened (a playbook matches on it)
     "finding_type": "exfiltration",      # optional
     "severity": 8.5,                     # optional, 0–10
     "agent_id": "agent-7",               # optional when a credential is named
     "environment": "prod",               # optional
     "summary": "…",                      # optional, one line (no secrets: withheld if so)
     "credentials": [{"provider": "aws", "kind": "aws.access-key",
                      "id": "AKIA…", "value": "…"}],   # id and/or the leaked value
     "labels": {"k": "v"}}                # optional
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from killswitch.alerts.models import Alert, LeakedCredential
from killswitch.alerts.refusals import (
    ForgedError,
    ReplayedError,
    StaleError,
    UnsignedError,
)
from killswitch.alerts.replay import ReplayCache
from killswitch.alerts.settings import GenericAlertSettings
from killswitch.alerts.sources import Admitted, Incoming, claim, parse, shown

NAME = r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}"
# The library's own tolerance (fixed): the receiver's window can only narrow it.
LIBRARY_TOLERANCE_S = 300


class _Ours(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GenericCredential(_Ours):
    provider: str | None = Field(None, pattern=r"^[a-z0-9-]{1,32}$")
    kind: str | None = Field(None, pattern=r"^[a-z0-9-]{1,32}\.[a-z0-9-]{1,64}$")
    id: str | None = Field(None, min_length=1, max_length=512, description="not secret")
    value: SecretStr | None = Field(None, min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _something(self) -> GenericCredential:
        if self.id is None and self.value is None:
            raise ValueError("a credential needs an id or a value")
        return self


class GenericAlert(_Ours):
    """The generic source's documented body."""

    id: str | None = Field(None, pattern=f"^{NAME}$")
    event: str = Field(pattern=f"^{NAME}$")
    finding_type: str | None = Field(None, pattern=f"^{NAME}$")
    severity: float | None = Field(None, ge=0, le=10, allow_inf_nan=False)
    agent_id: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    environment: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    summary: str = Field("", max_length=1000)
    credentials: tuple[GenericCredential, ...] = Field((), max_length=50)
    labels: dict[str, str] = Field(default_factory=dict, max_length=64)

    @model_validator(mode="after")
    def _names_something(self) -> GenericAlert:
        if self.agent_id is None and not self.credentials:
            raise ValueError("an alert names an agent_id or at least one credential")
        return self


def json_schema() -> dict[str, Any]:
    """The generic body's JSON Schema (for the OpenAPI document and the runbook)."""
    return GenericAlert.model_json_schema()


class GenericSource:
    """Any detector → `POST /alerts/generic`."""

    name = "generic"

    def __init__(self, settings: GenericAlertSettings, replay: ReplayCache, window_s: int) -> None:
        self.settings = settings
        self.replay = replay
        self.window_s = min(window_s, LIBRARY_TOLERANCE_S)
        self.webhook = (
            Webhook(settings.secret.get_secret_value()) if settings.secret is not None else None
        )

    def disabled(self) -> str | None:
        """No secret: the source is off."""
        if self.webhook is None:
            return "the generic source has no secret configured (settings.alerts.generic)"
        return None

    def claimed(self, incoming: Incoming) -> str:
        """The message id the headers claim."""
        return claim(f"webhook-id {incoming.headers.get('webhook-id', '-')}")

    def accept(self, incoming: Incoming) -> Admitted:
        """Standard Webhooks signature and window, then the id, then the body."""
        assert self.webhook is not None  # noqa: S101  (disabled() said so)
        headers = incoming.headers
        msg_id = headers.get("webhook-id", "")
        stamp = headers.get("webhook-timestamp", "")
        signature = headers.get("webhook-signature", "")
        if not (msg_id and stamp and signature):
            raise UnsignedError("webhook-id, webhook-timestamp and webhook-signature are required")
        if not re.fullmatch(r"\d{1,12}", stamp.strip()):
            raise UnsignedError("webhook-timestamp is not whole seconds since the epoch")
        stamped = int(stamp)
        age = time.time() - stamped
        if not math.isfinite(age) or abs(age) > self.window_s:
            raise StaleError(
                f"webhook-timestamp is {age:.0f}s off (the window is {self.window_s}s)"
            )
        try:
            self.webhook.verify(incoming.body, dict(headers), json_parse=False)
        except (WebhookVerificationError, ValueError) as exc:
            # The library raises ValueError (not its own error) on a malformed signature list.
            raise ForgedError("webhook-signature does not match the secret") from exc
        key = f"generic:{msg_id[:200]}"
        if not self.replay.first_time(key, stamped + self.window_s + 1):
            raise ReplayedError(f"webhook-id {claim(msg_id)} was accepted before")
        body = parse(GenericAlert, incoming.body, "generic alert")
        return Admitted((self._alert(body, incoming),), replay_key=key)

    def _alert(self, body: GenericAlert, incoming: Incoming) -> Alert:
        credentials = tuple(
            LeakedCredential(
                provider=c.provider or (c.kind.split(".")[0] if c.kind else None),
                identifier=c.id,
                secret=c.value,
                kind=c.kind,
            )
            for c in body.credentials
        )
        values = [c.value.get_secret_value() for c in body.credentials if c.value is not None]

        def safe(text: str, limit: int) -> str:
            if any(v in text for v in values):
                return "<withheld: it held a leaked value>"
            return shown(text, limit)

        named = body.agent_id or ", ".join(c.describe() for c in credentials)
        summary = safe(body.summary, 300) or f"{body.event}: {named}"
        return Alert(
            source=self.name,
            alert_id=body.id,
            event=body.event,
            finding_type=body.finding_type,
            severity=body.severity,
            agent_id=body.agent_id,
            environment=body.environment,
            credentials=credentials,
            summary=summary,
            received_at=incoming.received_at,
            labels={claim(k)[:100]: safe(v, 200) for k, v in body.labels.items()},
        )
