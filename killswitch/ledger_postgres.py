"""The ledger's rows in PostgreSQL: one chain shared by every process on every host.

Appends are serialised by a transaction-scoped advisory lock taken before the last entry
is read, and the head row is written in the same transaction, so any interleaving of
appenders yields one unbroken chain. A lost connection, a server restarting (57P01
admin_shutdown, 57P03 cannot connect now) and serialisation failures are retried inside a
deadline; anything else, or the deadline, raises LedgerUnavailable: never a silent loss.
Each append carries a token written in its transaction: when a connection dies during
COMMIT (committed or not: the client cannot know), the retry looks the token up first and
does not append the entries a second time.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

from killswitch.ledger_key import LedgerMissingError
from killswitch.ledger_store import _SCHEMA as SQLITE_SCHEMA
from killswitch.ledger_store import _SELECT, COLUMNS, Build, Row, StoreUnreadable, filters
from killswitch.store_postgres import DatabaseUnavailable, RetryingConnection, transient

if TYPE_CHECKING:
    import psycopg

# The ledger's errors when its database is gone past the deadline: entries were not written.
LedgerUnavailable = DatabaseUnavailable
# pg_advisory_xact_lock keys: the ledger's appenders ("killswit" as an integer), its schema.
APPEND_LOCK = 0x6B696C6C73776974
SCHEMA_LOCK = APPEND_LOCK + 1
READERS_KEPT = 4  # idle reader connections kept for the next reads

# SQLite's schema with 64-bit sequence numbers, and the tables only a shared ledger needs.
_SCHEMA = (
    SQLITE_SCHEMA.replace("seq INTEGER", "seq BIGINT")
    + """
CREATE TABLE IF NOT EXISTS ledger_appends (
    token TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    key_check TEXT NOT NULL
);
"""
)
# After the lock: was this append committed by an earlier attempt, and the last entry.
_LAST = (
    "SELECT EXISTS (SELECT 1 FROM ledger_appends WHERE token = %s), "
    "(SELECT seq FROM entries ORDER BY seq DESC LIMIT 1), "
    "(SELECT hash FROM entries ORDER BY seq DESC LIMIT 1)"
)
# The entries (each column as an array: one statement whatever the batch), the head row and
# the append's token, in one round trip inside the lock.
_WRITE = (
    "WITH appended AS (INSERT INTO entries (seq, ts, run_id, actor, trigger, agent, provider, "
    "credential, action, outcome, detail, prev_hash, hash) SELECT * FROM unnest(%s::bigint[], "
    "%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
    "%s::text[], %s::text[], %s::text[], %s::text[], %s::text[])), "
    "moved AS (INSERT INTO head (id, seq, hash, mac) VALUES (1, %s, %s, %s) "
    "ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, "
    "mac = EXCLUDED.mac) "
    "INSERT INTO ledger_appends (token, last_seq) VALUES (%s, %s)"
)


class PostgresStore:
    """One connection for appends (made again after a failure); readers have their own."""

    def __init__(self, url: str, *, create: bool, deadline_s: float = 30.0) -> None:
        self._pg = RetryingConnection(url, deadline_s, what="ledger's database")
        self._readers: list[psycopg.Connection[Any]] = []
        self._readers_lock = threading.Lock()
        self.location = self._pg.location
        if create:
            self._pg.run(_create_schema)
        elif not self._pg.run(_exists):
            raise LedgerMissingError(f"no ledger in {self.location} (its tables do not exist)")

    def claim_key(self, check: str) -> bool:
        """Record the key's check value for a new ledger; False when the ledger was started
        with another key (a host with the wrong key must not write to the shared chain)."""

        def work(db: psycopg.Connection[Any]) -> bool:
            db.execute(
                "INSERT INTO ledger_meta (id, key_check) VALUES (1, %s) "
                "ON CONFLICT (id) DO NOTHING",
                (check,),
            )
            row = db.execute("SELECT key_check FROM ledger_meta WHERE id = 1").fetchone()
            return bool(row and row[0] == check)

        return self._pg.run(work)

    def key_matches(self, check: str) -> bool | None:
        """Whether the ledger was started with this key (None: nothing recorded yet)."""

        def work(db: psycopg.Connection[Any]) -> bool | None:
            table = db.execute("SELECT to_regclass('ledger_meta') IS NOT NULL").fetchone()
            if not (table and table[0]):
                return None
            row = db.execute("SELECT key_check FROM ledger_meta WHERE id = 1").fetchone()
            return None if row is None else bool(row[0] == check)

        return self._pg.run(work)

    def brand_new(self) -> bool:
        def work(db: psycopg.Connection[Any]) -> bool:
            row = db.execute(
                "SELECT (SELECT COUNT(*) FROM entries) + (SELECT COUNT(*) FROM head)"
            ).fetchone()
            return not (row and row[0])

        return self._pg.run(work)

    def append(self, build: Build) -> None:
        token = uuid.uuid4().hex

        def work(db: psycopg.Connection[Any]) -> None:
            # Held until COMMIT: every appender on every host waits here, and an earlier
            # attempt of this append has finished (committed or not) once the lock is ours.
            # (Its own statement: a READ COMMITTED statement sees what committed before it.)
            db.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,))
            found = db.execute(_LAST, (token,)).fetchone()
            done, seq, digest = found if found else (False, None, None)
            if done:
                return  # an earlier attempt committed before its connection was lost
            rows, head = build(int(seq or 0), str(digest or ""))
            columns = [list(column) for column in zip(*rows, strict=True)]
            db.execute(_WRITE, (*columns, *head, token, head[0]))

        self._pg.run(work)

    def entry(self, seq: int) -> tuple[str, str] | None:
        row = self._pg.run(
            lambda db: db.execute(
                "SELECT prev_hash, hash FROM entries WHERE seq = %s", (seq,)
            ).fetchone()
        )
        return (str(row[0]), str(row[1])) if row else None

    @contextmanager
    def _reader(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection of the readers' own (a reader may take its time), in one REPEATABLE
        READ snapshot; kept for the next reader (a connection costs the server a process
        and an authentication: a fleet's monitor reads every half second)."""
        import psycopg

        db: psycopg.Connection[Any] | None = None
        finished = False
        try:
            db, block = self._begin()
            with ExitStack() as stack:
                stack.push(block)
                yield db
            finished = True
        except psycopg.errors.UndefinedTable as exc:
            raise StoreUnreadable(f"the ledger's tables in {self.location}: {exc}") from exc
        except psycopg.DatabaseError as exc:
            if transient(exc):
                raise self._pg.unavailable(exc, "went away during a read") from exc
            raise StoreUnreadable(f"{self.location}: {exc}") from exc
        finally:
            if db is not None:
                with self._readers_lock:
                    keep = finished and not db.broken and len(self._readers) < READERS_KEPT
                    if keep:
                        self._readers.append(db)
                if not keep:
                    db.close()

    def _begin(self) -> tuple[psycopg.Connection[Any], AbstractContextManager[Any]]:
        """A reader's connection with its snapshot begun: a kept one, or a new one when the
        server ended the kept ones while they were idle (a restart, a failover)."""
        import psycopg

        with self._readers_lock:
            kept = self._readers.pop() if self._readers else None
        if kept is not None and not (kept.closed or kept.broken):
            block = kept.transaction()
            try:
                block.__enter__()
                return kept, block
            except psycopg.Error as exc:
                kept.close()
                if not transient(exc):
                    raise
                self._close_readers()  # ended together: each would fail one read
        db = self._pg.connect()
        db.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        db.read_only = True
        block = db.transaction()
        try:
            block.__enter__()
        except BaseException:
            db.close()
            raise
        return db, block

    def _close_readers(self) -> None:
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for db in readers:
            db.close()

    @contextmanager
    def snapshot(self, after: int) -> Iterator[tuple[Row | None, Iterator[Row]]]:
        with self._reader() as db:
            head = db.execute("SELECT seq, hash, mac FROM head WHERE id = 1").fetchone()
            with db.cursor(name="ledger_chain") as cursor:  # server-side: memory stays flat
                cursor.itersize = 2000
                cursor.execute(_SELECT + " WHERE seq > %s ORDER BY seq", (after,))
                yield head, iter(cursor)

    def rows(
        self,
        *,
        agent: str | None,
        run_id: str | None,
        run_ids: Sequence[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        where, args = filters("%s", agent=agent, run_id=run_id, run_ids=run_ids)
        with self._reader() as db, db.cursor(name="ledger_rows") as cursor:
            cursor.itersize = 2000
            cursor.execute(_SELECT + where + " ORDER BY seq", args)
            for row in cursor:
                yield dict(zip(COLUMNS, row, strict=True))

    def durable(self) -> None:
        """A COMMIT is durable already (synchronous_commit on, PostgreSQL's default)."""

    def close(self) -> None:
        self._pg.close()
        self._close_readers()


def _create_schema(db: psycopg.Connection[Any]) -> None:
    # Concurrent CREATE TABLE IF NOT EXISTS can collide in the catalogue: one at a time.
    db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
    db.execute(_SCHEMA)


def _exists(db: psycopg.Connection[Any]) -> bool:
    row = db.execute("SELECT to_regclass('entries') IS NOT NULL").fetchone()
    return bool(row and row[0])
