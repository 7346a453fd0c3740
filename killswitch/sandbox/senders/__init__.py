"""Senders for the alert receiver: each signs like the real one does, with payloads of the
senders' published shapes — one module per source family (`aws`: AWS Health and GuardDuty
EventBridge events, SNS signing and its https certificate host; `github`:
`secret_scanning_alert`; `alertmanager`: the version 4 webhook; `generic`: the Standard
Webhooks body). Used by the tests and by `killswitch demo --via-alert`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any


def now() -> str:
    """Now, as AWS and GitHub write a timestamp."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def encode(payload: dict[str, Any]) -> bytes:
    """The body as a sender writes it."""
    return json.dumps(payload, separators=(",", ":")).encode()
