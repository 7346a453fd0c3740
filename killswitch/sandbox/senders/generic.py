"""The generic source's sender: the documented body, signed by the `standardwebhooks`
library as any Standard Webhooks sender signs."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook


def generic_alert(
    *,
    agent_id: str | None = None,
    credentials: list[dict[str, str]] | None = None,
    event: str = "credential.leaked",
    severity: float | None = 9.0,
    alert_id: str | None = None,
) -> dict[str, Any]:
    """The generic source's documented body."""
    body: dict[str, Any] = {"id": alert_id or f"det-{uuid.uuid4().hex[:12]}", "event": event}
    if severity is not None:
        body["severity"] = severity
    if agent_id is not None:
        body["agent_id"] = agent_id
    if credentials:
        body["credentials"] = credentials
    return body


def generic_headers(
    secret: str, body: bytes, *, msg_id: str | None = None, at: datetime | None = None
) -> dict[str, str]:
    """Standard Webhooks headers, signed by the `standardwebhooks` library."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, at, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def new_generic_secret() -> str:
    """A fresh `whsec_…` secret."""
    return "whsec_" + base64.b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes).decode()
