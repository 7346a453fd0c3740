"""Sign a request the way Slack does (`v0=` HMAC-SHA256 of `v0:{timestamp}:{body}`): for the
demo's simulated slash command and for tests. The service verifies with slack-sdk's own
SignatureVerifier, so the two are checked against each other."""

from __future__ import annotations

import hashlib
import hmac
import time


def headers(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
