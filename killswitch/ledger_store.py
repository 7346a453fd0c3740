"""Where the ledger's rows live: the seam between the chain (killswitch/ledger.py, which
computes and checks every HMAC) and a database. SQLite here (the embedded default);
PostgreSQL in killswitch/ledger_postgres.py. A store only moves rows: it never computes a hash.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, closing, contextmanager
from pathlib import Path
from typing import Any, Protocol

from killswitch.anchors import sync_to_disk
from killswitch.errors import KillSwitchError

FIELDS = ("run_id", "actor", "trigger", "agent", "provider", "credential", "action", "outcome")
# An entry row as stored: seq, ts, the FIELDS, detail, prev_hash, hash.
COLUMNS = ("seq", "ts", *FIELDS, "detail", "prev_hash", "hash")
Row = tuple[Any, ...]
# The head row: last seq, its hash, and the HMAC of both.
Head = tuple[int, str, str]
# Given the last stored (seq, hash), the rows to append and the new head.
Build = Callable[[int, str], tuple[Sequence[Row], Head]]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    run_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    trigger TEXT NOT NULL,
    agent TEXT NOT NULL,
    provider TEXT NOT NULL,
    credential TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_by_agent ON entries (agent, seq);
CREATE INDEX IF NOT EXISTS entries_by_run ON entries (run_id, seq);
CREATE TABLE IF NOT EXISTS head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    mac TEXT NOT NULL
);
"""

_SELECT = (
    "SELECT seq, ts, run_id, actor, trigger, agent, provider, credential, action, outcome, "
    "detail, prev_hash, hash FROM entries"
)


def filters(
    mark: str,
    *,
    agent: str | None,
    run_id: str | None,
    run_ids: Sequence[str] | None = None,
) -> tuple[str, list[str]]:
    """The WHERE clause (empty, or with a leading space) and arguments of `rows`; `mark` is
    the driver's placeholder. `run_ids`: the entries of any of these runs."""
    clauses: list[str] = []
    args: list[str] = []
    for column, value in (("agent", agent), ("run_id", run_id)):
        if value is not None:
            clauses.append(f"{column} = {mark}")
            args.append(value)
    if run_ids is not None:
        clauses.append(f"run_id IN ({', '.join([mark] * len(run_ids))})" if run_ids else "0 = 1")
        args += list(run_ids)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


class StoreUnreadable(KillSwitchError):
    """The ledger's tables cannot be read: dropped, damaged, or not a ledger."""

    code = "ledger-unreadable"
    remediation = "Run `killswitch audit verify`: the ledger was tampered with or is not a ledger."


class LedgerStore(Protocol):
    """The rows of one ledger. `append` runs `build` inside one transaction that excludes
    every other appender (in this process, other processes and other hosts)."""

    location: str  # what messages name (a path, or a URL without its password)

    def brand_new(self) -> bool:
        """No entry and no head row."""
        ...

    def append(self, build: Build) -> None:
        """Read the last (seq, hash), insert `build`'s rows and head, commit; all or nothing."""
        ...

    def entry(self, seq: int) -> tuple[str, str] | None:
        """(prev_hash, hash) of one entry."""
        ...

    def snapshot(self, after: int) -> AbstractContextManager[tuple[Row | None, Iterator[Row]]]:
        """The head row and the entries after `after` in order, read from one snapshot."""
        ...

    def rows(
        self,
        *,
        agent: str | None,
        run_id: str | None,
        run_ids: Sequence[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Entries in order as dicts of COLUMNS (detail still text)."""
        ...

    def durable(self) -> None:
        """Make every committed entry survive a power loss (before it is anchored)."""
        ...

    def close(self) -> None: ...


class SqliteStore:
    """One SQLite file in WAL mode; one connection for the store's life (closing a WAL
    connection checkpoints: half a millisecond per append on the hot path). The caller
    serialises use in-process; BEGIN IMMEDIATE serialises processes."""

    def __init__(self, path: Path, *, create: bool, private: bool) -> None:
        self.path = path
        self.location = str(path)
        if create:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700 if private else 0o777)
            if private and not path.exists():
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._db = self._connect()
        if create:
            self._db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def brand_new(self) -> bool:
        found = self._db.execute(
            "SELECT (SELECT COUNT(*) FROM entries) + (SELECT COUNT(*) FROM head)"
        ).fetchone()
        return not found[0]

    def append(self, build: Build) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            last = db.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
            rows, head = build(*((last[0], last[1]) if last else (0, "")))
            db.executemany(
                "INSERT INTO entries (seq, ts, run_id, actor, trigger, agent, provider, "
                "credential, action, outcome, detail, prev_hash, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            db.execute("INSERT OR REPLACE INTO head (id, seq, hash, mac) VALUES (1, ?, ?, ?)", head)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def entry(self, seq: int) -> tuple[str, str] | None:
        row = self._db.execute(
            "SELECT prev_hash, hash FROM entries WHERE seq = ?", (seq,)
        ).fetchone()
        return (str(row[0]), str(row[1])) if row else None

    @contextmanager
    def snapshot(self, after: int) -> Iterator[tuple[Row | None, Iterator[Row]]]:
        try:
            with closing(self._connect()) as db:
                db.execute("BEGIN")  # entries and head read from one snapshot
                head = db.execute("SELECT seq, hash, mac FROM head WHERE id = 1").fetchone()
                cursor = db.execute(_SELECT + " WHERE seq > ? ORDER BY seq", (after,))
                yield head, iter(cursor)
                db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise StoreUnreadable(str(exc)) from exc

    def rows(
        self,
        *,
        agent: str | None,
        run_id: str | None,
        run_ids: Sequence[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        where, args = filters("?", agent=agent, run_id=run_id, run_ids=run_ids)
        query = "SELECT * FROM entries" + where  # noqa: S608  (fixed columns, bound values)
        with closing(self._connect()) as db:  # its own: a reader may take its time
            db.row_factory = sqlite3.Row
            try:
                for row in db.execute(query + " ORDER BY seq", args):
                    yield dict(row)
            except sqlite3.DatabaseError as exc:
                raise StoreUnreadable(f"cannot read the entries of {self.path} ({exc})") from exc

    def durable(self) -> None:
        # Appends run with synchronous=NORMAL: a checkpoint that outlived its entries after
        # a power loss would look like a rollback.
        sync_to_disk(Path(f"{self.path}-wal"))

    def close(self) -> None:
        self._db.close()
