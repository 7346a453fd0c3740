"""What enumeration saw (every NHI each provider holds) and the sweep's cases, kept in the
inventory's database: a re-run after a crash continues where it stopped.

Discovery is mark-and-sweep: every NHI an enumeration yields is stamped with the run; when
a provider's enumeration completes, its rows the run did not stamp are gone at the provider
and are dropped. An enumeration that fails half-way drops nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from killswitch.inventory import Inventory, SideConnection
from killswitch.models import Nhi

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nhis (
    provider TEXT NOT NULL,
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    principal TEXT NOT NULL,
    agent_tag TEXT NOT NULL,
    works INTEGER NOT NULL,
    privileged INTEGER NOT NULL,
    protected INTEGER NOT NULL,
    created_at TEXT,
    last_used_at TEXT,
    expires_at TEXT,
    detail TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    seen_run TEXT NOT NULL,
    PRIMARY KEY (provider, kind, ref)
);
CREATE TABLE IF NOT EXISTS sweep_cases (
    key TEXT PRIMARY KEY,
    category TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    notified_at TEXT,
    contain_after TEXT,
    contained_at TEXT,
    destroy_after TEXT,
    destroyed_at TEXT,
    closed_at TEXT
);
CREATE TABLE IF NOT EXISTS sweep_runs (
    run_id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    dry_run INTEGER NOT NULL,
    findings INTEGER NOT NULL
);
"""

BATCH = 500
_COLUMNS = (
    "provider, kind, ref, principal, agent_tag, works, privileged, protected, created_at, "
    "last_used_at, expires_at, detail"
)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True, slots=True)
class Recorded:
    """What one provider's enumeration did to the inventory."""

    provider: str
    seen: int
    new: int
    gone: int


@dataclass(frozen=True, slots=True)
class Case:
    """The sweep's memory of one finding it acts on: when it notified, when it may act."""

    key: str
    category: str
    agent_id: str
    first_seen: datetime
    notified_at: datetime | None
    contain_after: datetime | None
    contained_at: datetime | None
    destroy_after: datetime | None
    destroyed_at: datetime | None


class Sightings:
    """The `nhis` and `sweep_*` tables, on the inventory's own connection and lock."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        with inventory.transaction() as db:
            db.executescript(_SCHEMA)

    def record(self, provider: str, stream: Iterable[Nhi], run_id: str) -> Recorded:
        """Upsert every NHI the stream yields (a batch at a time: memory stays flat), then
        drop the provider's NHIs this run did not see."""
        now = datetime.now(UTC).isoformat()
        seen = new = 0
        batch: list[Nhi] = []

        def flush() -> int:
            with self.inventory.transaction() as db:
                known = _existing(db, batch)
                db.executemany(
                    f"INSERT INTO nhis ({_COLUMNS}, first_seen, last_seen, seen_run) "  # noqa: S608
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(provider, kind, ref) DO UPDATE SET principal=excluded.principal, "
                    "agent_tag=excluded.agent_tag, works=excluded.works, "
                    "privileged=excluded.privileged, protected=excluded.protected, "
                    "created_at=excluded.created_at, last_used_at=excluded.last_used_at, "
                    "expires_at=excluded.expires_at, detail=excluded.detail, "
                    "last_seen=excluded.last_seen, seen_run=excluded.seen_run",
                    [(*_row(n), now, now, run_id) for n in batch],
                )
            fresh = sum(1 for n in batch if (n.kind, n.ref) not in known)
            batch.clear()
            return fresh

        for nhi in stream:
            batch.append(nhi)
            seen += 1
            if len(batch) >= BATCH:
                new += flush()
        if batch:
            new += flush()
        with self.inventory.transaction() as db:
            gone = db.execute(
                "DELETE FROM nhis WHERE provider = ? AND seen_run != ?", (provider, run_id)
            ).rowcount
        return Recorded(provider, seen, new, gone)

    def nhis(self, provider: str | None = None) -> Iterator[Nhi]:
        """Every recorded NHI (of one provider), read a batch at a time in key order (the
        lock is not held between batches)."""
        last: tuple[str, str, str] = ("", "", "")
        where = "provider = ? AND " if provider else ""
        while True:
            with self.inventory.transaction() as db:
                rows = db.execute(
                    f"SELECT {_COLUMNS} FROM nhis WHERE {where}"  # noqa: S608
                    "(provider, kind, ref) > (?, ?, ?) ORDER BY provider, kind, ref LIMIT ?",
                    (*((provider,) if provider else ()), *last, BATCH),
                ).fetchall()
            for row in rows:
                yield _nhi(row)
            if len(rows) < BATCH:
                return
            last = (rows[-1][0], rows[-1][1], rows[-1][2])

    def by_ref(self, ref: str) -> list[Nhi]:
        """The recorded NHIs whose reference (key id, accessor…) is `ref`."""
        with self.inventory.transaction() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM nhis WHERE ref = ? ORDER BY provider, kind",  # noqa: S608
                (ref,),
            ).fetchall()
        return [_nhi(row) for row in rows]

    def count(self) -> dict[str, int]:
        with self.inventory.transaction() as db:
            rows = db.execute("SELECT provider, COUNT(*) FROM nhis GROUP BY provider").fetchall()
        return {str(p): int(n) for p, n in rows}

    def case(self, key: str) -> Case | None:
        with self.inventory.transaction() as db:
            row = db.execute(
                "SELECT key, category, agent_id, first_seen, notified_at, contain_after, "
                "contained_at, destroy_after, destroyed_at FROM sweep_cases "
                "WHERE key = ? AND closed_at IS NULL",
                (key,),
            ).fetchone()
        return _case(row) if row else None

    def open_case(self, key: str, category: str, agent_id: str) -> Case:
        now = datetime.now(UTC).isoformat()
        with self.inventory.transaction() as db:
            db.execute(
                "INSERT INTO sweep_cases (key, category, agent_id, first_seen, last_seen) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET last_seen=excluded.last_seen",
                (key, category, agent_id, now, now),
            )
        found = self.case(key)
        assert found is not None  # noqa: S101  (just written, under the same connection)
        return found

    def update_case(self, key: str, **stamps: datetime | None) -> None:
        """Set when a case was notified / contained / destroyed, or its grace deadlines."""
        allowed = {
            "notified_at",
            "contain_after",
            "contained_at",
            "destroy_after",
            "destroyed_at",
            "closed_at",
        }
        unknown = set(stamps) - allowed
        if unknown:
            raise ValueError(f"unknown case fields {sorted(unknown)}")
        sets = ", ".join(f"{name} = ?" for name in stamps)
        with self.inventory.transaction() as db:
            db.execute(
                f"UPDATE sweep_cases SET {sets} WHERE key = ?",  # noqa: S608  (names checked above)
                (*(_iso(v) for v in stamps.values()), key),
            )

    def cases(self) -> list[Case]:
        with self.inventory.transaction() as db:
            rows = db.execute(
                "SELECT key, category, agent_id, first_seen, notified_at, contain_after, "
                "contained_at, destroy_after, destroyed_at FROM sweep_cases "
                "WHERE closed_at IS NULL ORDER BY key"
            ).fetchall()
        return [_case(row) for row in rows]

    def record_sweep(self, run_id: str, *, dry_run: bool, findings: int) -> None:
        with self.inventory.transaction() as db:
            db.execute(
                "INSERT INTO sweep_runs (run_id, started_at, dry_run, findings) "
                "VALUES (?, ?, ?, ?) "
                "ON CONFLICT(run_id) DO UPDATE SET started_at=excluded.started_at, "
                "dry_run=excluded.dry_run, findings=excluded.findings",
                (run_id, datetime.now(UTC).isoformat(), int(dry_run), findings),
            )

    def clear(self) -> None:
        """Forget every sighting and sweep case (the sandbox's reset)."""
        with self.inventory.transaction() as db:
            db.execute("DELETE FROM nhis")
            db.execute("DELETE FROM sweep_cases")
            db.execute("DELETE FROM sweep_runs")

    def sweeps(self) -> int:
        with self.inventory.transaction() as db:
            return int(db.execute("SELECT COUNT(*) FROM sweep_runs").fetchone()[0])


def _existing(db: SideConnection, batch: Sequence[Nhi]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    provider = batch[0].provider
    refs = [n.ref for n in batch]
    for start in range(0, len(refs), 400):
        chunk = refs[start : start + 400]
        marks = ",".join("?" * len(chunk))
        rows = db.execute(
            f"SELECT kind, ref FROM nhis WHERE provider = ? AND ref IN ({marks})",  # noqa: S608
            (provider, *chunk),
        ).fetchall()
        found.update((str(k), str(r)) for k, r in rows)
    return found


def _row(nhi: Nhi) -> tuple[Any, ...]:
    return (
        nhi.provider,
        nhi.kind,
        nhi.ref,
        nhi.principal,
        nhi.agent_tag,
        int(nhi.works),
        int(nhi.privileged),
        int(nhi.protected),
        _iso(nhi.created_at),
        _iso(nhi.last_used_at),
        _iso(nhi.expires_at),
        nhi.detail,
    )


def _nhi(row: Sequence[Any]) -> Nhi:
    return Nhi(
        provider=row[0],
        kind=row[1],
        ref=row[2],
        principal=row[3],
        agent_tag=row[4],
        works=bool(row[5]),
        privileged=bool(row[6]),
        protected=bool(row[7]),
        created_at=_when(row[8]),
        last_used_at=_when(row[9]),
        expires_at=_when(row[10]),
        detail=row[11],
    )


def _case(row: Sequence[Any]) -> Case:
    return Case(
        key=row[0],
        category=row[1],
        agent_id=row[2],
        first_seen=datetime.fromisoformat(row[3]),
        notified_at=_when(row[4]),
        contain_after=_when(row[5]),
        contained_at=_when(row[6]),
        destroy_after=_when(row[7]),
        destroyed_at=_when(row[8]),
    )
