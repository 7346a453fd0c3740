"""The ledger: append-only, hash-chained with an HMAC key, SQLite by default.

Each entry carries the HMAC of its content and of the previous entry's HMAC, so an edit,
a deletion or a reordering breaks the chain, and a database writer without the key cannot
forge a new one. A head row (the last sequence number and HMAC, itself under the HMAC key),
written in the same transaction as the entries, catches a truncated tail.
Entries hold references, outcomes and evidence, never secret material.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

GENESIS = "0" * 64
_FIELDS = ("run_id", "actor", "trigger", "agent", "provider", "credential", "action", "outcome")

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
CREATE TABLE IF NOT EXISTS head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    mac TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger line as written by a run (without its chain fields)."""

    run_id: str
    actor: str
    trigger: str
    agent: str
    action: str
    outcome: str
    provider: str = ""
    credential: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    entries: int
    problems: tuple[str, ...]


def _canonical(seq: int, ts: str, values: Mapping[str, str], detail: str, prev: str) -> bytes:
    body = {"seq": seq, "ts": ts, **values, "detail": detail, "prev_hash": prev}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


class Ledger:
    """Append and verify. Appends are serialised in-process and across processes."""

    def __init__(self, path: Path, key: bytes | None = None) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._key = key if key is not None else self._load_or_create_key()
        self._lock = threading.Lock()
        # One connection for the ledger's life (closing a WAL connection checkpoints: half a
        # millisecond per append on the hot path); every use holds the lock.
        self._db = self._connect()
        self._db.executescript(_SCHEMA)
        self._verified: tuple[int, str] | None = None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _load_or_create_key(self) -> bytes:
        key_path = self.path.with_name(self.path.name + ".key")
        try:
            return bytes.fromhex(key_path.read_text().strip())
        except FileNotFoundError:
            key = secrets.token_bytes(32)
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(key.hex())
            return key

    def _mac(self, payload: bytes) -> str:
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()

    def append(self, entry: Entry) -> int:
        return self.append_many([entry])[-1]

    def append_many(self, entries: Sequence[Entry]) -> list[int]:
        """Append entries in one transaction; returns their sequence numbers."""
        if not entries:
            return []
        seqs: list[int] = []
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1")
                last = row.fetchone()
                seq, prev = (last[0], last[1]) if last else (0, GENESIS)
                for entry in entries:
                    seq += 1
                    ts = datetime.now(UTC).isoformat()
                    values = {name: str(getattr(entry, name)) for name in _FIELDS}
                    detail = json.dumps(dict(entry.detail), sort_keys=True, default=str)
                    digest = self._mac(_canonical(seq, ts, values, detail, prev))
                    db.execute(
                        "INSERT INTO entries (seq, ts, run_id, actor, trigger, agent, provider, "
                        "credential, action, outcome, detail, prev_hash, hash) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (seq, ts, *(values[n] for n in _FIELDS), detail, prev, digest),
                    )
                    seqs.append(seq)
                    prev = digest
                db.execute(
                    "INSERT OR REPLACE INTO head (id, seq, hash, mac) VALUES (1, ?, ?, ?)",
                    (seq, prev, self._head_mac(seq, prev)),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return seqs

    def _head_mac(self, seq: int, digest: str) -> str:
        return self._mac(f"head:{seq}:{digest}".encode())

    def rows(
        self, *, agent: str | None = None, run_id: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Entries in order, as dicts (the JSON-lines export shape)."""
        query = "SELECT * FROM entries"
        clauses, args = [], []
        if agent is not None:
            clauses.append("agent = ?")
            args.append(agent)
        if run_id is not None:
            clauses.append("run_id = ?")
            args.append(run_id)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        with closing(self._connect()) as db:  # its own: a reader may take its time
            db.row_factory = sqlite3.Row
            for row in db.execute(query + " ORDER BY seq", args):
                item = dict(row)
                item["detail"] = json.loads(item["detail"])
                yield item

    def export_jsonl(self, out: TextIO) -> int:
        count = 0
        for item in self.rows():
            out.write(json.dumps(item, sort_keys=True) + "\n")
            count += 1
        return count

    def verify(self) -> Verification:
        """Recompute the chain: find any edit, deletion, insertion, reordering or truncation."""
        return self._verify_from(0, GENESIS)

    def verify_new(self) -> Verification:
        """The hot path's check: entries appended since this process last verified the whole
        chain continue it intact (the first call verifies everything). `audit verify` is the
        full check of every entry."""
        if self._verified is None:
            return self.verify()
        seq, digest = self._verified
        with self._lock:
            row = self._db.execute(
                "SELECT prev_hash, hash FROM entries WHERE seq = ?", (seq,)
            ).fetchone()
        if row is None or row[1] != digest:
            return Verification(False, 0, (f"entry {seq}, verified before, changed or vanished",))
        # From the verified head itself, so that an edit of it is found too.
        return self._verify_from(seq - 1, str(row[0]))

    def _verify_from(self, after: int, prev: str) -> Verification:
        """Check the entries after `after` against the head, in one consistent snapshot."""
        problems: list[str] = []
        expected, count = after + 1, 0
        with closing(self._connect()) as db:
            db.execute("BEGIN")  # entries and head read from one snapshot
            head = db.execute("SELECT seq, hash, mac FROM head WHERE id = 1").fetchone()
            cursor = db.execute(
                "SELECT seq, ts, run_id, actor, trigger, agent, provider, credential, action, "
                "outcome, detail, prev_hash, hash FROM entries WHERE seq > ? ORDER BY seq",
                (after,),
            )
            for row in cursor:
                count += 1
                seq, ts = row[0], row[1]
                values = dict(zip(_FIELDS, row[2:10], strict=True))
                detail, prev_hash, digest = row[10], row[11], row[12]
                if seq != expected:
                    problems.append(f"entry {seq}: expected sequence {expected} (a gap: deleted)")
                if prev_hash != prev:
                    problems.append(f"entry {seq}: does not follow its predecessor (reordered?)")
                recomputed = self._mac(_canonical(seq, ts, values, detail, prev_hash))
                if not hmac.compare_digest(recomputed, digest):
                    problems.append(f"entry {seq}: content does not match its HMAC (edited)")
                prev, expected = digest, seq + 1
            db.execute("COMMIT")
        last = expected - 1
        if head is None:
            if count or after:
                problems.append("the head row is missing")
        elif not hmac.compare_digest(str(head[2]), self._head_mac(int(head[0]), str(head[1]))):
            problems.append("the head row does not match its HMAC (altered)")
        elif int(head[0]) != last or str(head[1]) != prev:
            problems.append(
                f"head says the last entry is {head[0]}, the table ends at {last} "
                "(entries deleted from the end, or the head was altered)"
            )
        if not problems:
            self._verified = (last, prev) if last else None
        return Verification(ok=not problems, entries=count + after, problems=tuple(problems))


def ledger_key_from(value: str | None) -> bytes | None:
    """A configured key (hex or text) as bytes; None means the key file beside the ledger."""
    if not value:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return value.encode()
