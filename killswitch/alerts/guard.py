"""The guard rails between an alert and a containment: the same alert starts one run (dedup),
a flood of alerts stops containing on its own (the storm breaker), and no source may send
more than its rate. Dedup and the breaker live in the inventory's database, so every
replica shares them and they survive a restart.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from killswitch.inventory import Inventory

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_seen (
    dedup_key TEXT PRIMARY KEY,
    run_ids TEXT NOT NULL,
    first_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_containments (
    agent_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_breaker (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    tripped_at REAL,
    told INTEGER NOT NULL DEFAULT 0,
    held INTEGER NOT NULL DEFAULT 0,
    resumed_at REAL NOT NULL DEFAULT 0,
    resumed_by TEXT
);
INSERT INTO alert_breaker (id) VALUES (1) ON CONFLICT DO NOTHING;
"""


class GuardSettings(BaseModel):
    """How many alert-started containments are too many, and how alike two alerts must be
    to be one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dedup_window_s: int = Field(3600, ge=1, description="copies of one alert inside: one run")
    storm_max_agents: int = Field(
        5, ge=1, description="agents contained by alerts inside the window before the breaker"
    )
    storm_window_s: int = Field(600, ge=1, description="the storm breaker's window")
    rate_per_minute: int = Field(120, ge=1, description="alerts accepted per source per minute")


@dataclass(frozen=True, slots=True)
class Seen:
    """What dedup knows of an alert: first time, or the runs its first copy started."""

    first: bool
    run_ids: tuple[str, ...] = ()


class Dedup:
    """Alerts already seen inside the window, by their dedup key."""

    def __init__(self, inventory: Inventory, window_s: int) -> None:
        self.inventory = inventory
        self.window_s = window_s
        with inventory.transaction() as db:
            db.executescript(_SCHEMA)

    def first(self, key: str, now: float | None = None) -> Seen:
        """Record the key; a copy inside the window is told the runs of its first."""
        now = time.time() if now is None else now
        with self.inventory.transaction() as db:
            db.execute("DELETE FROM alert_seen WHERE expires_at < ?", (now,))
            inserted = db.execute(
                "INSERT INTO alert_seen VALUES (?, '[]', ?, ?) ON CONFLICT DO NOTHING",
                (key, now, now + self.window_s),
            ).rowcount
            if inserted:
                return Seen(True)
            row = db.execute(
                "SELECT run_ids FROM alert_seen WHERE dedup_key = ?", (key,)
            ).fetchone()
        return Seen(False, tuple(json.loads(row[0])) if row else ())

    def link(self, key: str, run_id: str) -> None:
        """Name a run the alert started (its copies are linked to it)."""
        with self.inventory.transaction() as db:
            row = db.execute(
                "SELECT run_ids FROM alert_seen WHERE dedup_key = ?", (key,)
            ).fetchone()
            runs = [*json.loads(row[0]), run_id] if row else [run_id]
            db.execute(
                "UPDATE alert_seen SET run_ids = ? WHERE dedup_key = ?", (json.dumps(runs), key)
            )


@dataclass(frozen=True, slots=True)
class Admission:
    """The breaker's answer for one agent: contain it, or hold it for a human; `tell` is True
    exactly once per trip (the one message to the incident channel)."""

    contain: bool
    contained: int
    held: int = 0
    tell: bool = False


@dataclass(frozen=True, slots=True)
class BreakerState:
    tripped: bool
    contained: int
    held: int
    tripped_at: float | None
    resumed_by: str | None


class StormBreaker:
    """More than `max_agents` agents contained by alerts inside `window_s` trips the breaker:
    every further alert asks a human, until someone resumes it."""

    def __init__(self, inventory: Inventory, max_agents: int, window_s: int) -> None:
        self.inventory = inventory
        self.max_agents = max_agents
        self.window_s = window_s
        with inventory.transaction() as db:
            db.executescript(_SCHEMA)

    def admit(self, agent_id: str, run_id: str, now: float | None = None) -> Admission:
        """Count the agent in (atomically with every other replica), or hold it."""
        now = time.time() if now is None else now
        with self.inventory.transaction() as db:
            tripped_at, told, held, resumed_at = db.execute(
                "SELECT tripped_at, told, held, resumed_at FROM alert_breaker WHERE id = 1"
            ).fetchone()
            since = max(now - self.window_s, resumed_at)
            contained = db.execute(
                "SELECT COUNT(DISTINCT agent_id) FROM alert_containments WHERE at >= ?", (since,)
            ).fetchone()[0]
            already = db.execute(
                "SELECT 1 FROM alert_containments WHERE at >= ? AND agent_id = ?",
                (since, agent_id),
            ).fetchone()
            if tripped_at is None and (already or contained < self.max_agents):
                db.execute(
                    "INSERT INTO alert_containments VALUES (?, ?, ?)", (agent_id, run_id, now)
                )
                return Admission(True, contained + (0 if already else 1))
            tell = not told
            db.execute(
                "UPDATE alert_breaker SET tripped_at = COALESCE(tripped_at, ?), told = 1, "
                "held = held + 1 WHERE id = 1",
                (now,),
            )
            return Admission(False, contained, held + 1, tell)

    def resume(self, by: str, now: float | None = None) -> BreakerState:
        """Close the breaker again: counting starts afresh from now."""
        now = time.time() if now is None else now
        with self.inventory.transaction() as db:
            db.execute(
                "UPDATE alert_breaker SET tripped_at = NULL, told = 0, held = 0, "
                "resumed_at = ?, resumed_by = ? WHERE id = 1",
                (now, by),
            )
        return self.state(now)

    def state(self, now: float | None = None) -> BreakerState:
        now = time.time() if now is None else now
        with self.inventory.transaction() as db:
            tripped_at, held, resumed_at, resumed_by = db.execute(
                "SELECT tripped_at, held, resumed_at, resumed_by FROM alert_breaker WHERE id = 1"
            ).fetchone()
            contained = db.execute(
                "SELECT COUNT(DISTINCT agent_id) FROM alert_containments WHERE at >= ?",
                (max(now - self.window_s, resumed_at),),
            ).fetchone()[0]
        return BreakerState(tripped_at is not None, contained, held, tripped_at, resumed_by)


class SourceRate:
    """At most `per_minute` alerts per source in any sliding minute (per process: the
    receiver's own protection, not a shared quota)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, source: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            stamps = self._seen.setdefault(source, deque())
            while stamps and stamps[0] <= now - 60:
                stamps.popleft()
            if len(stamps) >= self.per_minute:
                return False
            stamps.append(now)
            return True
