"""Replay protection for the alert sources: each scheme's own id (an SNS MessageId, a
Standard Webhooks `webhook-id`, an `X-GitHub-Delivery`, an EventBridge event id) is
remembered until its request could no longer be accepted anyway."""

from __future__ import annotations

import threading
import time
from typing import Protocol

from killswitch.inventory import Inventory

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_seen_requests (
    key TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
"""


class ReplayCache(Protocol):
    """Where the receiver records the ids it has accepted."""

    def first_time(self, key: str, expires_at: float) -> bool:
        """Record `key` until `expires_at` (epoch seconds); False when it is already there."""
        ...

    def forget(self, key: str) -> None:
        """Drop `key` (its alert could not be handled: the sender's retry must be accepted)."""
        ...


class SeenAlerts:
    """The ids already accepted, in the inventory's database: shared by every replica of
    `killswitch serve` and kept across restarts (the Slack door's `SeenRequests`, for alerts)."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        with inventory.transaction() as db:
            db.executescript(_SCHEMA)

    def first_time(self, key: str, expires_at: float) -> bool:
        """Record the key; False when it was recorded before (a replay)."""
        with self.inventory.transaction() as db:
            db.execute("DELETE FROM alert_seen_requests WHERE expires_at < ?", (time.time(),))
            inserted = db.execute(
                "INSERT INTO alert_seen_requests VALUES (?, ?) ON CONFLICT DO NOTHING",
                (key, expires_at),
            ).rowcount
        return bool(inserted)

    def forget(self, key: str) -> None:
        """Drop the key."""
        with self.inventory.transaction() as db:
            db.execute("DELETE FROM alert_seen_requests WHERE key = ?", (key,))


class MemoryReplayCache:
    """The same in one process's memory: for a receiver with no inventory (benchmarks)."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_time(self, key: str, expires_at: float) -> bool:
        """Record the key; False when it was recorded before and has not expired."""
        now = time.time()
        with self._lock:
            if len(self._seen) > 100_000:
                self._seen = {k: t for k, t in self._seen.items() if t >= now}
            if self._seen.get(key, 0.0) >= now:
                return False
            self._seen[key] = expires_at
            return True

    def forget(self, key: str) -> None:
        """Drop the key."""
        with self._lock:
            self._seen.pop(key, None)
