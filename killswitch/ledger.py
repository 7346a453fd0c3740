"""The ledger: append-only, hash-chained with an HMAC key, SQLite by default, PostgreSQL when
settings.database_url is set (one chain for every process on every host).

Each entry carries the HMAC of its content and of the previous entry's HMAC, so an edit,
a deletion or a reordering breaks the chain, and a database writer without the key cannot
forge a new one. A head row (the last sequence number and HMAC, itself under the HMAC key),
written in the same transaction as the entries, catches a truncated tail; a head file
beside the database and the configured anchors (killswitch/anchors.py), outside it, catch an
older head row or an older copy of the whole database put back.
Entries hold references, outcomes and evidence, never secret material. The chain is computed
here; where its rows live is a store (killswitch/ledger_store.py, ledger_postgres.py).

A shared (PostgreSQL) ledger: every host holds the same key (KILLSWITCH_LEDGER_KEY); the
database records a check value of it, and a host holding another key is refused before it
writes. The head file is per host (`<ledger_path>.postgres.head`): the last checkpoint this
host appended. The shared chain only grows, so it may lag the database, never lead it, and
`audit verify` on that host proves the database still holds, unchanged, everything up to this
host's last append (an older backup restored, a tail cut off). Entries other hosts appended
since are vouched for by the anchors, which mean what they mean with SQLite: configure the
same ones on every host (S3 Object Lock; a stream file only on storage the hosts share) and
each run's closing head is checkpointed there, whichever host ran it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from killswitch.anchors import (
    Anchor,
    Anchored,
    AnchorError,
    Checkpoint,
    HeadFile,
    judge,
    seal_payload,
)
from killswitch.errors import own_copy
from killswitch.ledger_key import LedgerKeyError, LedgerMissingError, create_key, load_key
from killswitch.ledger_key import ledger_key_from as ledger_key_from  # (where it was)
from killswitch.ledger_store import FIELDS, LedgerStore, SqliteStore, StoreUnreadable

log = logging.getLogger(__name__)
GENESIS = "0" * 64
_FIELDS = FIELDS
KEY_CHECK = b"killswitch ledger key check"


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
    """What `verify` found: `problems` are tampering; `unchecked` are anchors it could not
    read (so a rollback cannot be ruled out); `notes` say what each anchor confirmed."""

    ok: bool
    entries: int
    problems: tuple[str, ...]
    unchecked: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def _canonical(seq: int, ts: str, values: Mapping[str, str], detail: str, prev: str) -> bytes:
    body = {"seq": seq, "ts": ts, **values, "detail": detail, "prev_hash": prev}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


@dataclass(slots=True)
class _Queued:
    """One caller's entries waiting for a group commit, and what became of them."""

    entries: list[Entry]
    seqs: list[int] = field(default_factory=list)
    done: bool = False
    error: BaseException | None = None


class Ledger:
    """Append and verify. Appends are serialised in-process and across processes (and, on
    PostgreSQL, across hosts); the chain is computed here whatever the store."""

    def __init__(
        self,
        path: Path,
        key: bytes | None = None,
        *,
        anchors: Sequence[Anchor] = (),
        private: bool = True,
        create: bool = True,
        database_url: str | None = None,
        deadline_s: float = 30.0,
    ) -> None:
        """`create=False` (audit commands) opens an existing ledger and its key or raises;
        `private` makes a new directory 0700 and new files 0600 (everywhere but the sandbox).
        `database_url` keeps the entries in that PostgreSQL database: `path` then only
        places this host's key file and head file (`<path>.key`, `<path>.postgres.head`), and
        `deadline_s` bounds how long an append retries a database that went away."""
        self.path = path
        self.anchors = list(anchors)
        self._key_path = path.with_name(path.name + ".key")
        self.database_url = database_url
        head_name = path.name + (".postgres.head" if database_url else ".head")
        self.head_file = HeadFile(path.with_name(head_name))
        if database_url is None and not create and not path.is_file():
            was = self._head_says()
            raise LedgerMissingError(f"no ledger at {path}" + (f" ({was})" if was else ""))
        if create and database_url is not None:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700 if private else 0o777)
        self._key = key if key is not None else load_key(self._key_path)
        self._lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Queued] = []  # appends waiting for the next commit
        self._store = self._open_store(create, private, deadline_s)
        self._key_claimed = False
        if create:
            if self._key is None and not self._brand_new():
                self._store.close()
                raise LedgerKeyError(
                    f"the ledger's key {self._key_path} is missing and the ledger is not new: "
                    "it is not regenerated"
                )
        elif self._key is None:
            self._store.close()
            raise LedgerKeyError(f"the ledger's key {self._key_path} is missing")
        self._verified: tuple[int, str] | None = None

    def _open_store(self, create: bool, private: bool, deadline_s: float) -> LedgerStore:
        if self.database_url is None:
            return SqliteStore(self.path, create=create, private=private)
        from killswitch.ledger_postgres import PostgresStore

        return PostgresStore(self.database_url, create=create, deadline_s=deadline_s)

    @property
    def location(self) -> str:
        """Where the entries are (a path, or the database URL without its password)."""
        return self._store.location

    def close(self) -> None:
        with self._lock:
            self._store.close()
            self.head_file.close()

    def _head_says(self) -> str:
        try:
            point = Checkpoint.parse(self.head_file.path.read_bytes())
        except OSError:
            return ""
        return f"its head file says it held {point.seq} entries" if point else ""

    def _brand_new(self) -> bool:
        """No entry, no head row, no head file: only such a ledger may get a new key."""
        if self.head_file.exists():
            return False
        return self._store.brand_new()

    def _mac(self, payload: bytes) -> str:
        if self._key is None:
            raise LedgerKeyError(f"the ledger's key {self._key_path} is missing")
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()

    def _claim_key(self) -> None:
        """A shared ledger records its key's check value; a host holding another key (its
        entries would never verify) is refused before it writes."""
        if self._key_claimed or not hasattr(self._store, "claim_key"):
            return
        if not self._store.claim_key(self._mac(KEY_CHECK)):
            raise LedgerKeyError(
                f"this host's ledger key ({self._key_path} or KILLSWITCH_LEDGER_KEY) is not "
                f"the key the ledger in {self.location} was started with: nothing was written",
                remediation="Give every host the same ledger key (KILLSWITCH_LEDGER_KEY); "
                "entries under another key could never be verified.",
            )
        self._key_claimed = True

    def _seal(self, seq: int, digest: str) -> Checkpoint:
        ts = datetime.now(UTC).isoformat()
        return Checkpoint(seq, digest, ts, self._mac(seal_payload(seq, digest, ts)))

    def _genuine(self, point: Checkpoint) -> bool:
        expected = self._mac(seal_payload(point.seq, point.hash, point.ts))
        return hmac.compare_digest(expected, point.mac)

    def append(self, entry: Entry) -> int:
        return self.append_many([entry])[-1]

    def append_many(self, entries: Sequence[Entry]) -> list[int]:
        """Append entries in one transaction; returns their sequence numbers once committed.

        Group commit: the threads of this process that append at the same time are written
        in one transaction by whichever of them gets the ledger first (a PostgreSQL commit is
        a few milliseconds and serialised across every host; a lane's agents append
        together). Each caller still returns only once its own entries are committed, and
        raises what their transaction raised."""
        if not entries:
            return []
        mine = _Queued(list(entries))
        with self._queue_lock:
            self._queue.append(mine)
        with self._lock:
            if not mine.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit(batch)
        if mine.error is not None:
            raise own_copy(mine.error)  # each caller its own (they raise it at once)
        return mine.seqs

    def _commit(self, batch: list[_Queued]) -> None:
        """Write every queued append of `batch` in one transaction (under `_lock`)."""
        entries = [entry for queued in batch for entry in queued.entries]
        seqs: list[int] = []
        tail: list[tuple[int, str]] = []

        def build(last: int, last_hash: str) -> tuple[list[tuple[Any, ...]], tuple[int, str, str]]:
            # Called again when a store retries a transaction that did not commit.
            seqs.clear()
            tail.clear()
            seq, prev = last, last_hash or GENESIS
            rows = []
            for entry in entries:
                seq += 1
                ts = datetime.now(UTC).isoformat()
                values = {name: str(getattr(entry, name)) for name in _FIELDS}
                detail = json.dumps(dict(entry.detail), sort_keys=True, default=str)
                digest = self._mac(_canonical(seq, ts, values, detail, prev))
                rows.append((seq, ts, *(values[n] for n in _FIELDS), detail, prev, digest))
                seqs.append(seq)
                prev = digest
            tail.append((seq, prev))
            return rows, (seq, prev, self._head_mac(seq, prev))

        try:
            if self._key is None:
                self._key = create_key(self._key_path)
            self._claim_key()
            self._store.append(build)
        except BaseException as exc:
            for queued in batch:
                queued.error = exc
                queued.done = True
            return
        start = 0
        for queued in batch:
            queued.seqs = seqs[start : start + len(queued.entries)]
            queued.done = True
            start += len(queued.entries)
        seq, prev = tail[-1]
        # After the commit: a crash in between leaves the file behind the ledger, which
        # verify accepts; it never claims an entry that was not committed.
        try:
            self.head_file.write(self._seal(seq, prev))
        except AnchorError as exc:  # the entries are committed: say so, do not fail
            log.warning("%s", exc.message)

    def anchor(self) -> Anchored:
        """Checkpoint the verified head to every configured anchor: the engine calls it once
        per run, after the run's closing entry. A chain that does not verify is not anchored;
        an anchor that fails is returned in `failed`, never raised."""
        checked = self.verify_new()
        if not checked.ok:
            return Anchored(0, GENESIS, failed=(("ledger", "; ".join(checked.problems)),))
        if self._verified is None or not self.anchors:
            return Anchored(*(self._verified or (0, GENESIS)))
        self._store.durable()
        point = self._seal(*self._verified)
        written: list[str] = []
        failed: list[tuple[str, str]] = []
        for anchor in self.anchors:
            try:
                anchor.write(point)
                written.append(anchor.name)
            except AnchorError as exc:
                failed.append((anchor.name, exc.message))
        return Anchored(point.seq, point.hash, tuple(written), tuple(failed))

    def _head_mac(self, seq: int, digest: str) -> str:
        return self._mac(f"head:{seq}:{digest}".encode())

    def rows(
        self,
        *,
        agent: str | None = None,
        run_id: str | None = None,
        run_ids: Sequence[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Entries in order, as dicts (the JSON-lines export shape); `run_ids`: of any of
        these runs (one query for many)."""
        try:
            for item in self._store.rows(agent=agent, run_id=run_id, run_ids=run_ids):
                item["detail"] = json.loads(item["detail"])
                yield item
        except StoreUnreadable as exc:
            raise LedgerMissingError(
                exc.message,
                remediation="Run `killswitch audit verify`: the ledger was tampered with "
                "or is not a ledger.",
            ) from exc

    def export_jsonl(self, out: TextIO) -> int:
        count = 0
        for item in self.rows():
            out.write(json.dumps(item, sort_keys=True) + "\n")
            count += 1
        return count

    def verify(self) -> Verification:
        """Recompute the chain (any edit, deletion, insertion, reordering or truncation) and
        compare it with the newest checkpoint of the head file and of every anchor."""
        problems: list[str] = []
        unchecked: list[str] = []
        notes: list[str] = []
        points: list[tuple[str, Checkpoint]] = []
        # Anchors first: the database can then only be ahead of them, never falsely behind.
        for anchor in (self.head_file, *self.anchors):
            try:
                point, found = anchor.newest(self._genuine)
            except AnchorError as exc:
                unchecked.append(
                    f"{exc.message}: anchor unreadable, a rollback of the newest entries "
                    "cannot be ruled out"
                )
                continue
            problems.extend(f"{anchor.name}: {p}" for p in found)
            if point is None:
                notes.append(f"{anchor.name}: no checkpoint yet")
            else:
                points.append((anchor.name, point))
        key_matches = getattr(self._store, "key_matches", None)
        if key_matches is not None and key_matches(self._mac(KEY_CHECK)) is False:
            problems.append(
                f"the ledger in {self.location} was started with another key than this "
                "host's: its entries cannot be checked here"
            )
        chain, hashes = self._chain(0, GENESIS, {p.seq for _, p in points})
        problems[:0] = chain.problems
        for name, point in points:
            problem, note = judge(name, point, hashes.get(point.seq), chain.entries)
            problems.extend([problem] if problem else [])
            notes.extend([note] if note else [])
        ok = not problems and not unchecked
        return Verification(ok, chain.entries, tuple(problems), tuple(unchecked), tuple(notes))

    def verify_new(self) -> Verification:
        """The hot path's check: entries appended since this process last verified the whole
        chain continue it intact (the first call verifies everything). `audit verify` is the
        full check of every entry."""
        if self._verified is None:
            return self._verify_from(0, GENESIS)
        seq, digest = self._verified
        with self._lock:
            row = self._store.entry(seq)
        if row is None or row[1] != digest:
            return Verification(False, 0, (f"entry {seq}, verified before, changed or vanished",))
        # From the verified head itself, so that an edit of it is found too.
        return self._verify_from(seq - 1, row[0])

    def _verify_from(self, after: int, prev: str) -> Verification:
        return self._chain(after, prev, set())[0]

    def _chain(
        self, after: int, prev: str, wanted: set[int]
    ) -> tuple[Verification, dict[int, str]]:
        """Check the entries after `after` against the head, in one consistent snapshot;
        also returns the hashes of the `wanted` entries."""
        try:
            return self._read_chain(after, prev, wanted)
        except StoreUnreadable as exc:
            problem = (
                f"the ledger's tables cannot be read ({exc.message}): dropped, or not a ledger"
            )
            return Verification(False, after, (problem,)), {}

    def _read_chain(
        self, after: int, prev: str, wanted: set[int]
    ) -> tuple[Verification, dict[int, str]]:
        problems: list[str] = []
        hashes: dict[int, str] = {}
        expected, count = after + 1, 0
        with self._store.snapshot(after) as (head, cursor):
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
                if seq in wanted:
                    hashes[seq] = str(digest)
                prev, expected = digest, seq + 1
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
        return Verification(not problems, count + after, tuple(problems)), hashes
