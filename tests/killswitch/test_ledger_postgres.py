"""One ledger in PostgreSQL shared by many processes: one chain after any interleaving, the
same tamper evidence as SQLite, and no entry lost or doubled when the server restarts.

A real PostgreSQL (the pgserver wheel's binaries, killswitch/postgres.py) is started once for
the module in a temporary directory (~1.5-4 s here: initdb dominates); each test gets a
database of its own.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import multiprocessing
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

from killswitch.ledger import Entry, Ledger
from killswitch.ledger_key import LedgerKeyError
from killswitch.ledger_postgres import LedgerUnavailable
from killswitch.postgres import LocalPostgres, redact_url
from tests.conftest import run_cli

KEY = secrets.token_bytes(32)
_names = itertools.count()


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalPostgres]:
    # Not under pytest's basetemp: as root the cluster runs as `pgserver`, which must traverse
    # the parents, and every pytest session resets pytest-of-root/ to 0700.
    started = time.monotonic()
    pg = LocalPostgres(Path(tempfile.mkdtemp(prefix="killswitch-test-pg-")), durable=False)
    pg.start()
    print(f"PostgreSQL up in {time.monotonic() - started:.2f} s")  # noqa: T201
    yield pg
    pg.destroy()


@pytest.fixture
def url(cluster: LocalPostgres) -> str:
    return cluster.ensure_database(f"ledger_{next(_names)}")


def entry(i: int, who: str = "p0") -> Entry:
    return Entry(
        run_id=f"run-{who}",
        actor=who,
        trigger="test",
        agent=f"agent-{i % 7}",
        action="contain",
        outcome="done",
        provider="aws",
        credential=f"AKIA{i:016d}",
        detail={"i": i, "who": who},
    )


def ledger(tmp_path: Path, url: str, name: str = "host", **kwargs: Any) -> Ledger:
    return Ledger(tmp_path / name / "ledger.db", kwargs.pop("key", KEY), database_url=url, **kwargs)


def sql(url: str, statement: str, *args: object) -> None:
    with psycopg.connect(url) as db:
        db.execute(statement, args or None)


def _append_from_process(
    url: str, home: str, who: str, count: int, start: Any, out: Any
) -> None:  # a child process: its own connection, its own head file ("host")
    book = Ledger(Path(home) / who / "ledger.db", KEY, database_url=url)
    start.wait()
    seqs: list[int] = []
    i = 0
    while i < count:
        batch = 1 + (i % 3)  # single appends and small batches interleave
        seqs += book.append_many([entry(j, who) for j in range(i, min(count, i + batch))])
        i += batch
    book.close()
    out.put((who, seqs))


def test_four_processes_append_to_one_chain(tmp_path: Path, url: str) -> None:
    context = multiprocessing.get_context("fork")
    start, out = context.Event(), context.Queue()
    per_process = 250
    workers = [
        context.Process(
            target=_append_from_process,
            args=(url, str(tmp_path), f"p{n}", per_process, start, out),
        )
        for n in range(4)
    ]
    for worker in workers:
        worker.start()
    start.set()
    results = dict(out.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    every = sorted(seq for seqs in results.values() for seq in seqs)
    assert every == list(range(1, 4 * per_process + 1))  # no gap, no seq twice
    assert all(seqs == sorted(seqs) for seqs in results.values())
    interleaved = [row["actor"] for row in ledger(tmp_path, url).rows()]
    assert len({tuple(interleaved[k : k + 50]) for k in range(0, 1000, 50)}) > 1
    assert sum(a != b for a, b in itertools.pairwise(interleaved)) > 10  # really concurrent
    result = ledger(tmp_path, url, "auditor").verify()
    assert result.ok and result.entries == 4 * per_process, result.problems


def filled(tmp_path: Path, url: str, n: int = 6) -> Ledger:
    book = ledger(tmp_path, url)
    for i in range(n):
        book.append(entry(i))
    assert book.verify().ok
    return book


def test_an_edit_is_found(tmp_path: Path, url: str) -> None:
    book = filled(tmp_path, url)
    sql(url, "UPDATE entries SET outcome = 'failed' WHERE seq = 3")
    result = book.verify()
    assert not result.ok and any("entry 3" in p and "edited" in p for p in result.problems)
    sql(url, "UPDATE entries SET outcome = 'done', detail = %s WHERE seq = 3", json.dumps({"i": 9}))
    assert not book.verify().ok


def test_a_deletion_in_the_middle_and_at_the_end_is_found(
    tmp_path: Path, url: str, cluster: LocalPostgres
) -> None:
    book = filled(tmp_path, url)
    sql(url, "DELETE FROM entries WHERE seq = 4")
    assert any("deleted" in p for p in book.verify().problems)
    tail = cluster.ensure_database(f"ledger_{next(_names)}")
    other = filled(tmp_path / "tail", tail)
    sql(tail, "DELETE FROM entries WHERE seq = 6")
    assert any("head" in p for p in other.verify().problems)


def test_a_reordering_and_an_altered_head_are_found(
    tmp_path: Path, url: str, cluster: LocalPostgres
) -> None:
    book = filled(tmp_path, url)
    with psycopg.connect(url) as db:
        a = db.execute("SELECT * FROM entries WHERE seq = 2").fetchone()
        b = db.execute("SELECT * FROM entries WHERE seq = 5").fetchone()
        assert a is not None and b is not None
        db.execute("DELETE FROM entries WHERE seq IN (2, 5)")
        insert = "INSERT INTO entries VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        db.execute(insert, (2, *b[1:]))
        db.execute(insert, (5, *a[1:]))
    assert not book.verify().ok
    head = cluster.ensure_database(f"ledger_{next(_names)}")
    again = filled(tmp_path / "head", head)
    sql(head, "UPDATE head SET seq = 5")
    assert any("head row" in p for p in again.verify().problems)


def test_a_host_with_another_key_is_refused_before_it_writes(tmp_path: Path, url: str) -> None:
    filled(tmp_path, url, 2)
    stranger = ledger(tmp_path, url, "stranger", key=secrets.token_bytes(32))
    with pytest.raises(LedgerKeyError, match="not the key"):
        stranger.append(entry(99))
    assert any("another key" in p for p in stranger.verify().problems)
    assert ledger(tmp_path, url).verify().entries == 2


def test_a_restart_mid_appends_loses_and_doubles_nothing(
    tmp_path: Path, url: str, cluster: LocalPostgres
) -> None:
    """Appends retry through a fast restart (57P01, then refused connections) and through
    connections killed mid-transaction; every acknowledged entry is there exactly once."""
    book = ledger(tmp_path, url)
    total, acknowledged, failures, kills = 200, [], [], [0]
    stop = threading.Event()

    def writer() -> None:
        for i in range(total):
            try:
                seq = book.append(entry(i))
                acknowledged.append((i, seq, time.monotonic()))
            except Exception as exc:  # noqa: BLE001  (counted: the test requires none)
                failures.append(exc)

    def killer() -> None:  # terminate the writer's backend at random points (57P01 too)
        while not stop.is_set() and kills[0] < 10:
            try:
                with psycopg.connect(url) as db:
                    found = db.execute(
                        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                        "FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    ).fetchone()
                kills[0] += found[0] if found else 0
            except psycopg.OperationalError:
                pass
            time.sleep(0.05)

    thread, chaos = threading.Thread(target=writer), threading.Thread(target=killer)
    thread.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    went_down = time.monotonic()
    cluster.restart("fast")
    came_back = time.monotonic()
    while len(acknowledged) < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    chaos.start()
    thread.join(60)
    stop.set()
    chaos.join(10)
    assert not failures, failures
    # The restart and the kills really came while appends were being made.
    assert any(at < went_down for *_, at in acknowledged) and acknowledged[-1][2] > came_back
    assert len(acknowledged) > 0 and kills[0] > 0
    rows = list(ledger(tmp_path, url, "auditor").rows())
    assert sorted(row["detail"]["i"] for row in rows) == list(range(total))  # once each
    assert [seq for _, seq, _ in acknowledged] == [row["seq"] for row in rows]
    result = ledger(tmp_path, url, "auditor").verify()
    assert result.ok and result.entries == total, result.problems


class CommitCutter:
    """A TCP relay in front of PostgreSQL that, when armed, cuts the connection at the
    client's COMMIT: after the server got it (`after=True`: committed, unacknowledged) or
    before (`after=False`: never committed). The driver and server are real."""

    def __init__(self, port: int) -> None:
        self.upstream = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.armed: bool | None = None  # None: relay; True/False: cut after/before COMMIT
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            cut = threading.Event()  # this connection's: its answers are no longer relayed
            for args in ((client, server, True, cut), (server, client, False, cut)):
                threading.Thread(target=self._pump, args=args, daemon=True).start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, upstream: bool, cut: threading.Event
    ) -> None:
        try:
            while chunk := source.recv(65536):
                if cut.is_set():
                    break
                if upstream and self.armed is not None and b"COMMIT" in chunk:
                    after, self.armed = self.armed, None
                    cut.set()
                    self.cuts += 1
                    if after:
                        sink.sendall(chunk)
                        time.sleep(0.3)  # the server commits; its answer is not relayed
                    break
                sink.sendall(chunk)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize("committed", [True, False], ids=["committed", "not-committed"])
def test_a_commit_whose_answer_is_lost_is_neither_lost_nor_doubled(
    tmp_path: Path, url: str, cluster: LocalPostgres, committed: bool
) -> None:
    cutter = CommitCutter(cluster.port)
    try:
        book = ledger(tmp_path, url.replace(f":{cluster.port}/", f":{cutter.port}/"))
        book.append_many([entry(0), entry(1)])
        cutter.armed = committed
        assert book.append_many([entry(2), entry(3)]) == [3, 4]
        assert cutter.cuts == 1
        assert book.append(entry(4)) == 5
        rows = list(ledger(tmp_path, url, "auditor").rows())
        assert [r["detail"]["i"] for r in rows] == [0, 1, 2, 3, 4]
        assert ledger(tmp_path, url, "auditor").verify().ok
    finally:
        cutter.close()


def test_a_database_that_stays_down_fails_loudly_within_the_deadline(
    tmp_path: Path, cluster: LocalPostgres
) -> None:
    url = cluster.ensure_database("ledger_down")
    book = ledger(tmp_path, url, deadline_s=1.5)
    book.append(entry(0))
    cluster.stop("fast")
    try:
        started = time.monotonic()
        with pytest.raises(LedgerUnavailable, match="did not answer within 1.5 s") as raised:
            book.append(entry(1))
        assert time.monotonic() - started < 8
        assert "postgresql://postgres@127.0.0.1" in raised.value.message
    finally:
        cluster.start()
    book.append(entry(2))
    rows = list(book.rows())
    assert [r["detail"]["i"] for r in rows] == [0, 2] and book.verify().ok


def test_audit_verify_reads_the_postgres_ledger(tmp_path: Path, url: str) -> None:
    book = filled(tmp_path, url, 3)
    env = {"KILLSWITCH_DATABASE_URL": url, "KILLSWITCH_LEDGER_KEY": KEY.hex()}
    home = tmp_path / "cli-home"
    home.mkdir()
    done = run_cli(home, "audit", "verify", "--json", **env)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] and report["entries"] == 3 and report["ledger"] == redact_url(url)
    shown = run_cli(home, "audit", "show", "--agent", "agent-1", "--json", **env)
    assert [row["seq"] for row in json.loads(shown.stdout)] == [2], shown.stderr
    sql(url, "UPDATE entries SET actor = 'mallory' WHERE seq = 2")
    broken = run_cli(home, "audit", "verify", **env)
    assert broken.returncode == 1 and "ledger BROKEN" in broken.stdout
    assert "entry 2" in broken.stdout
    book.close()


def test_a_password_in_the_url_is_never_shown() -> None:
    from killswitch.errors import ConfigurationError
    from killswitch.settings import load_settings

    url = "postgresql://killswitch:hunter2-secret@db.internal:5432/ledger"
    settings = load_settings(database_url=url)
    assert settings.database == url and "hunter2" not in repr(settings)
    assert redact_url(f"failed: {url}") == (
        "failed: postgresql://killswitch:***@db.internal:5432/ledger"
    )
    assert "hunter2" not in redact_url("host=db password=hunter2-secret dbname=x")
    with pytest.raises(ConfigurationError) as raised:
        load_settings(database_url="mysql://root:hunter2-secret@db/x")
    assert "hunter2" not in str(raised.value) and "postgresql://" in str(raised.value)


def test_the_runtime_opens_both_in_postgres(tmp_path: Path, url: str) -> None:
    from killswitch.inventory_postgres import PostgresInventory
    from killswitch.runtime import Runtime
    from killswitch.settings import load_settings

    settings = load_settings(
        home=tmp_path / "home", database_url=url, ledger_key=KEY.hex(), target="live"
    )
    runtime = Runtime.open(settings, providers=[])
    try:
        assert isinstance(runtime.inventory, PostgresInventory)
        assert runtime.ledger.location == redact_url(url)
        runtime.ledger.append(entry(1))
        assert ledger(tmp_path, url, "auditor").verify().entries == 1
    finally:
        runtime.close()


def test_threads_appending_at_once_share_commits_and_keep_one_chain(
    tmp_path: Path, url: str
) -> None:
    """Group commit: a lane's agents append together; each gets its own entries back, in
    order, and the chain is whole — in fewer transactions than appends."""
    book = ledger(tmp_path, url)
    got: dict[int, list[int]] = {}

    def appender(n: int) -> None:
        got[n] = [book.append(entry(i, f"t{n}")) for i in range(50)]

    threads = [threading.Thread(target=appender, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    every = sorted(s for seqs in got.values() for s in seqs)
    assert every == list(range(1, 401))
    assert all(seqs == sorted(seqs) for seqs in got.values())  # each thread's own order
    with psycopg.connect(url) as db:
        commits = db.execute("SELECT COUNT(*) FROM ledger_appends").fetchone()
    assert commits is not None and commits[0] < 400, commits
    rows = list(book.rows())
    assert all(r["actor"] == f"t{n}" for n, seqs in got.items() for r in rows if r["seq"] in seqs)
    assert ledger(tmp_path, url, "auditor").verify().ok
    book.close()


def test_reads_after_the_server_ended_the_kept_readers_connect_again(
    tmp_path: Path, url: str
) -> None:
    """The readers' connections are kept for the next read (a fleet's monitor reads every
    half second); a restart or a failover ends them while idle: the next reads connect
    again instead of failing, as they did when every read made its connection."""
    book = ledger(tmp_path, url)
    book.append(entry(0))
    with ThreadPoolExecutor(4) as pool:  # several readers at once: several kept
        assert list(pool.map(lambda _: len(list(book.rows())), range(8))) == [1] * 8
    sql(
        url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    assert [len(list(book.rows(run_id="run-p0"))) for _ in range(6)] == [1] * 6
    book.append(entry(1))
    assert [r["detail"]["i"] for r in book.rows()] == [0, 1]
    book.close()
