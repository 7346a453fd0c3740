"""The inventory (SQLite): known agents, credentials declared by reference, and undo records,
and the tables other modules keep beside it through `transaction()`. With a database URL,
killswitch/inventory_postgres.py keeps all of them in PostgreSQL instead."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from killswitch.codec import action_from_dict, action_to_dict
from killswitch.models import Action, Agent, AgentStatus, CredentialRef, UndoRecord

if TYPE_CHECKING:
    from killswitch.settings import Settings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    purpose TEXT NOT NULL DEFAULT '',
    environment TEXT NOT NULL DEFAULT '',
    expires_at TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS declared_credentials (
    agent_id TEXT NOT NULL REFERENCES agents(id),
    provider TEXT NOT NULL,
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    PRIMARY KEY (agent_id, kind, ref)
);
CREATE TABLE IF NOT EXISTS undo_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    action TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL,
    restored_at TEXT,
    restored_by TEXT
);
CREATE INDEX IF NOT EXISTS undo_by_agent ON undo_records (agent_id, restored_at);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat()


class SideCursor(Protocol):
    """What the side tables read from a statement (sqlite3's cursor, psycopg's)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class SideConnection(Protocol):
    """The calls the tables kept beside the inventory make, in SQLite's dialect (`?`
    placeholders, `ON CONFLICT` upserts): sqlite3's connection, or the PostgreSQL one's
    translation (killswitch/inventory_postgres.py)."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> SideCursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> SideCursor: ...

    def executescript(self, sql_script: str, /) -> object: ...


class Inventory:
    """Agents and what is known of them. One connection for the inventory's life (closing a
    WAL connection checkpoints), shared by threads under a lock."""

    def __init__(self, path: Path, *, private: bool = True) -> None:
        """`private`: a new directory is made 0700 and a new database 0600 (its WAL and shared
        memory files take the database's mode); the sandbox passes False."""
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700 if private else 0o777)
        if private and not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._tx() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._db:
            yield self._db

    def transaction(self) -> AbstractContextManager[SideConnection]:
        """The connection, locked, in one transaction (for tables kept beside the inventory)."""
        return self._tx()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def upsert_agent(self, agent: Agent) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO agents (id, owner, status, purpose, environment, expires_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                "owner=excluded.owner, status=excluded.status, purpose=excluded.purpose, "
                "environment=excluded.environment, expires_at=excluded.expires_at, "
                "updated_at=excluded.updated_at",
                (
                    agent.id,
                    agent.owner,
                    agent.status.value,
                    agent.purpose,
                    agent.environment,
                    agent.expires_at.isoformat() if agent.expires_at else None,
                    _now(),
                ),
            )

    def get_agent(self, agent_id: str) -> Agent | None:
        with self._tx() as db:
            row = db.execute(
                "SELECT id, owner, status, purpose, environment, expires_at FROM agents "
                "WHERE id = ?",
                (agent_id,),
            ).fetchone()
        return _agent(row) if row else None

    def list_agents(self) -> list[Agent]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, owner, status, purpose, environment, expires_at FROM agents ORDER BY id"
            ).fetchall()
        return [_agent(row) for row in rows]

    def set_status(self, agent_id: str, status: AgentStatus) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE agents SET status = ?, updated_at = ? WHERE id = ?",
                (status.value, _now(), agent_id),
            )

    def declare(self, agent_id: str, credential: CredentialRef) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO declared_credentials (agent_id, provider, kind, ref) "
                "VALUES (?, ?, ?, ?)",
                (agent_id, credential.provider, credential.kind, credential.ref),
            )

    def declared(self, agent_id: str) -> list[CredentialRef]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT provider, kind, ref FROM declared_credentials WHERE agent_id = ? "
                "ORDER BY kind, ref",
                (agent_id,),
            ).fetchall()
        return [CredentialRef(*row) for row in rows]

    def declared_by(self) -> dict[tuple[str, str], list[str]]:
        """(kind, ref) → the agents whose entry declares that credential."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT kind, ref, agent_id FROM declared_credentials ORDER BY agent_id"
            ).fetchall()
        return _grouped(rows)

    def record_undo(
        self, *, run_id: str, agent_id: str, action: Action, data: Mapping[str, Any]
    ) -> int:
        """Keep what a restore needs to reverse one change; returns the record's id."""
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO undo_records (run_id, agent_id, action, data, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    run_id,
                    agent_id,
                    json.dumps(action_to_dict(action), sort_keys=True),
                    json.dumps(dict(data), sort_keys=True),
                    _now(),
                ),
            )
            return int(cursor.lastrowid or 0)

    def settle_undo(self, record_id: int, data: Mapping[str, Any] | None) -> None:
        """Complete a record written before its change was made: its undo data, or None when
        nothing changed (the record goes)."""
        with self._tx() as db:
            if data is None:
                db.execute("DELETE FROM undo_records WHERE id = ?", (record_id,))
            else:
                db.execute(
                    "UPDATE undo_records SET data = ? WHERE id = ?",
                    (json.dumps(dict(data), sort_keys=True), record_id),
                )

    def pending_undo(self, agent_id: str) -> list[UndoRecord]:
        """Changes made to the agent by containments and not restored yet, oldest first."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, run_id, agent_id, action, data FROM undo_records "
                "WHERE agent_id = ? AND restored_at IS NULL ORDER BY id",
                (agent_id,),
            ).fetchall()
        return [_undo(row) for row in rows]

    def mark_restored(self, ids: Sequence[int], *, run_id: str) -> None:
        with self._tx() as db:
            db.executemany(
                "UPDATE undo_records SET restored_at = ?, restored_by = ? WHERE id = ?",
                [(_now(), run_id, record_id) for record_id in ids],
            )

    def clear(self) -> None:
        """Forget everything (the sandbox's reset; never used on a live inventory)."""
        with self._tx() as db:
            db.execute("DELETE FROM declared_credentials")
            db.execute("DELETE FROM undo_records")
            db.execute("DELETE FROM agents")


def open_inventory(settings: Settings) -> Inventory:
    """The configured inventory: in PostgreSQL when settings.database_url is set (the tables
    kept beside it stay in this host's SQLite file), else the SQLite file alone."""
    private = settings.target != "sandbox"
    if settings.database is None:
        return Inventory(settings.inventory_file, private=private)
    from killswitch.inventory_postgres import PostgresInventory

    return PostgresInventory(settings.database, settings.inventory_file, private=private)


def _grouped(rows: Sequence[Sequence[Any]]) -> dict[tuple[str, str], list[str]]:
    """(kind, ref, agent_id) rows as (kind, ref) → agents, in row order."""
    found: dict[tuple[str, str], list[str]] = {}
    for kind, ref, agent_id in rows:
        found.setdefault((kind, ref), []).append(agent_id)
    return found


def _undo(row: Sequence[Any]) -> UndoRecord:
    """An (id, run_id, agent_id, action, data) row."""
    return UndoRecord(
        id=int(row[0]),
        run_id=row[1],
        agent_id=row[2],
        action=action_from_dict(json.loads(row[3])),
        data=json.loads(row[4]),
    )


def _agent(row: Sequence[Any]) -> Agent:
    return Agent(
        id=row[0],
        owner=row[1],
        status=AgentStatus(row[2]),
        purpose=row[3],
        environment=row[4],
        expires_at=datetime.fromisoformat(row[5]) if row[5] else None,
    )
