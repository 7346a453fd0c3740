"""What a request to `/slack/events` must pass before Slack-bolt sees it: a size limit,
Slack's signature, the five-minute window, and a replay check in the shared store — and
how its refusal is ledgered without letting noise bury the record or fill the disk."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from slack_sdk.signature import SignatureVerifier

from killswitch.errors import RefusedError
from killswitch.inventory import Inventory

# Slack's slash-command and block-action bodies are a few kilobytes; a block action carries
# the message's blocks, so leave room for a large report message.
MAX_BODY = 256 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS slack_seen_requests (
    digest TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
"""


class UnverifiedRequestError(RefusedError):
    code = "unverified-request"
    remediation = "Requests must come from Slack: signed, fresh (5 minutes), and not replayed."


class SeenRequests:
    """Signatures already seen, in the inventory's database: shared by every replica and
    kept across restarts until the request's own timestamp leaves the window."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        with inventory.transaction() as db:
            db.executescript(_SCHEMA)

    def first_time(self, digest: str, expires_at: float) -> bool:
        """Record the digest; False when it was recorded before (a replay)."""
        with self.inventory.transaction() as db:
            db.execute("DELETE FROM slack_seen_requests WHERE expires_at < ?", (time.time(),))
            inserted = db.execute(
                "INSERT INTO slack_seen_requests VALUES (?, ?) ON CONFLICT DO NOTHING",
                (digest, expires_at),
            ).rowcount
        return bool(inserted)


class RequestGuard:
    """Signature, timestamp window and replay check of Slack's signed requests."""

    def __init__(self, signing_secret: str, window_s: int, seen: SeenRequests) -> None:
        self.verifier = SignatureVerifier(signing_secret)
        self.window_s = window_s
        self.seen = seen

    def problem(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """Why the request is refused, or None when it is Slack's and new."""
        timestamp = headers.get("x-slack-request-timestamp")
        signature = headers.get("x-slack-signature")
        if not timestamp or not signature:
            return "unsigned request"
        try:
            stamped = int(timestamp)
        except ValueError:
            return "malformed timestamp"
        age = abs(time.time() - stamped)
        if age > self.window_s:
            return f"stale request ({age:.0f}s old; the window is {self.window_s}s)"
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return "the body is not UTF-8"
        if not self.verifier.is_valid(body=text, timestamp=timestamp, signature=signature):
            return "signature does not match the signing secret"
        digest = hashlib.sha256(signature.encode()).hexdigest()
        # Kept until the timestamp itself leaves the window (a request stamped in the future
        # stays refused for as long as it would be accepted).
        if not self.seen.first_time(digest, stamped + self.window_s + 1):
            return "replayed request (this exact signed request was seen before)"
        return None


def claimed(body: bytes) -> tuple[str, str, str]:
    """(user, channel, text) a request claims, cut to size, for the ledger line of its
    refusal: whatever the body is, this never raises."""
    form = {k: v[-1] for k, v in parse_qs(body.decode(errors="replace")).items()}
    if "payload" in form:
        try:
            payload: Any = json.loads(form["payload"])
        except ValueError:
            return "?", "?", "payload"
        if not isinstance(payload, dict):
            return "?", "?", "payload"
        user, channel = payload.get("user"), payload.get("channel")
        return (
            str(user.get("id", "?") if isinstance(user, dict) else "?")[:32],
            str(channel.get("id", "?") if isinstance(channel, dict) else "?")[:32],
            "button",
        )
    return form.get("user_id", "?")[:32], form.get("channel_id", "?")[:32], form.get("text", "")


@dataclass
class _Bucket:
    window_start: float
    written: int = 0
    suppressed: int = 0


class RefusalThrottle:
    """At most `per_source` ledger lines per `window_s` for refusals from one source (and
    `overall` from all sources together); the rest are counted, and the count goes into the
    next line that is written for that source."""

    def __init__(self, per_source: int = 5, overall: int = 60, window_s: float = 60.0) -> None:
        self.per_source, self.overall, self.window_s = per_source, overall, window_s
        self._buckets: dict[str, _Bucket] = {}
        self._all = _Bucket(time.monotonic())
        self._lock = threading.Lock()

    def admit(self, source: str) -> int | None:
        """None: do not write (counted). Otherwise how many were suppressed before this one."""
        now = time.monotonic()
        with self._lock:
            if now - self._all.window_start >= self.window_s:
                self._all = _Bucket(now)
            bucket = self._buckets.get(source)
            if bucket is None or now - bucket.window_start >= self.window_s:
                carried = bucket.suppressed if bucket else 0
                bucket = self._buckets[source] = _Bucket(now, suppressed=carried)
            if bucket.written >= self.per_source or self._all.written >= self.overall:
                bucket.suppressed += 1
                return None
            bucket.written += 1
            self._all.written += 1
            suppressed, bucket.suppressed = bucket.suppressed, 0
            if len(self._buckets) > 10_000:  # a flood of sources: forget the quiet ones
                self._buckets = {k: b for k, b in self._buckets.items() if b.suppressed}
            return suppressed
