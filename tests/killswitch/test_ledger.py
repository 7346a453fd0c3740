"""The ledger's chain finds any edit, deletion, insertion, reordering or truncation."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from killswitch.ledger import Entry, Ledger
from tests.conftest import run_cli


def filled(tmp_path: Path, n: int = 6) -> Ledger:
    ledger = Ledger(tmp_path / "ledger.db")
    for i in range(n):
        ledger.append(
            Entry(
                run_id="r1",
                actor="alice",
                trigger="cli",
                agent=f"agent-{i}",
                action="deactivate-key",
                outcome="done",
                provider="aws",
                credential=f"AKIA{i:016d}",
                detail={"i": i},
            )
        )
    return ledger


def sql(ledger: Ledger, statement: str, *args: object) -> None:
    with sqlite3.connect(ledger.path) as db:
        db.execute(statement, args)


def test_an_untouched_ledger_verifies(tmp_path: Path) -> None:
    result = filled(tmp_path).verify()
    assert result.ok and result.entries == 6 and not result.problems


def test_an_edit_is_found(tmp_path: Path) -> None:
    ledger = filled(tmp_path)
    sql(ledger, "UPDATE entries SET outcome = 'failed' WHERE seq = 3")
    result = ledger.verify()
    assert not result.ok and any("entry 3" in p and "edited" in p for p in result.problems)


def test_an_edit_of_the_detail_is_found(tmp_path: Path) -> None:
    ledger = filled(tmp_path)
    sql(ledger, "UPDATE entries SET detail = ? WHERE seq = 2", json.dumps({"i": 99}))
    assert not ledger.verify().ok


def test_a_deletion_in_the_middle_is_found(tmp_path: Path) -> None:
    ledger = filled(tmp_path)
    sql(ledger, "DELETE FROM entries WHERE seq = 4")
    result = ledger.verify()
    assert not result.ok and any("deleted" in p for p in result.problems)


def test_a_deletion_at_the_end_is_found(tmp_path: Path) -> None:
    ledger = filled(tmp_path)
    sql(ledger, "DELETE FROM entries WHERE seq = 6")
    result = ledger.verify()
    assert not result.ok and any("head" in p for p in result.problems)


def test_a_reordering_is_found(tmp_path: Path) -> None:
    ledger = filled(tmp_path)
    with sqlite3.connect(ledger.path) as db:
        a = db.execute("SELECT * FROM entries WHERE seq = 2").fetchone()
        b = db.execute("SELECT * FROM entries WHERE seq = 5").fetchone()
        db.execute("DELETE FROM entries WHERE seq IN (2, 5)")
        insert = "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        db.execute(insert, (2, *b[1:]))
        db.execute(insert, (5, *a[1:]))
    assert not ledger.verify().ok


def test_a_forged_entry_without_the_key_is_found(tmp_path: Path) -> None:
    ledger = filled(tmp_path)
    forger = Ledger(tmp_path / "ledger.db", key=b"not the key")
    forger.append(
        Entry(
            run_id="r2",
            actor="mallory",
            trigger="cli",
            agent="agent-1",
            action="restore",
            outcome="done",
        )
    )
    result = ledger.verify()
    assert not result.ok and any("entry 7" in p for p in result.problems)


def test_appends_from_two_handles_keep_one_chain(tmp_path: Path) -> None:
    first = filled(tmp_path, 2)
    second = Ledger(tmp_path / "ledger.db")
    second.append(Entry("r", "a", "t", "agent-x", "probe", "dead"))
    first.append(Entry("r", "a", "t", "agent-x", "probe", "dead"))
    assert first.verify().ok and first.verify().entries == 4


@pytest.mark.parametrize(
    "tamper",
    ["UPDATE entries SET actor = 'mallory' WHERE seq = 1", "DELETE FROM entries WHERE seq = 2"],
)
def test_audit_verify_exits_1_on_a_broken_chain(tmp_path: Path, tamper: str) -> None:
    ledger = filled(tmp_path)
    ok = run_cli(tmp_path / "home", "audit", "verify", "--ledger", str(ledger.path), "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["entries"] == 6
    sql(ledger, tamper)
    broken = run_cli(tmp_path / "home", "audit", "verify", "--ledger", str(ledger.path))
    assert broken.returncode == 1
    assert "BROKEN" in broken.stdout


def test_the_hot_path_check_verifies_what_is_new_from_a_verified_head(tmp_path: Path) -> None:
    ledger = filled(tmp_path)
    assert ledger.verify_new().ok  # first call: the whole chain
    ledger.append(Entry("r2", "bob", "cli", "agent-9", "probe", "dead"))
    assert ledger.verify_new().ok
    assert ledger.verify_new().entries == 7
    sql(ledger, "UPDATE entries SET outcome = 'alive' WHERE seq = 7")  # the verified head
    assert not ledger.verify_new().ok
    assert not ledger.verify().ok


def test_a_tampered_head_row_is_found(tmp_path: Path) -> None:
    ledger = filled(tmp_path)
    sql(ledger, "DELETE FROM entries WHERE seq = 6")
    sql(ledger, "UPDATE head SET seq = 5, hash = (SELECT hash FROM entries WHERE seq = 5)")
    result = ledger.verify()
    assert not result.ok and any("head row" in p for p in result.problems)


def test_verify_while_others_append_sees_one_consistent_snapshot(tmp_path: Path) -> None:
    import threading

    filled(tmp_path, 50)
    other = Ledger(tmp_path / "ledger.db")
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            other.append(Entry("r", "a", "t", "agent-x", "probe", "dead"))

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert all(Ledger(tmp_path / "ledger.db").verify().ok for _ in range(20))
    finally:
        stop.set()
        thread.join()


def test_an_older_head_row_put_back_after_deleting_the_newest_entries_is_found(
    tmp_path: Path,
) -> None:
    ledger = filled(tmp_path, 3)
    with sqlite3.connect(ledger.path) as db:
        old_head = db.execute("SELECT seq, hash, mac FROM head").fetchone()
    for i in range(3):
        ledger.append(Entry("r2", "bob", "cli", f"agent-{i}", "probe", "dead"))
    sql(ledger, "DELETE FROM entries WHERE seq > 3")
    sql(ledger, "UPDATE head SET seq = ?, hash = ?, mac = ?", *old_head)
    result = ledger.verify()
    assert not result.ok and any("head file" in p and "6" in p for p in result.problems)


@pytest.mark.parametrize(
    "tamper",
    [
        ("DELETE FROM entries", "DELETE FROM head"),
        ("DROP TABLE entries", "DROP TABLE head"),
    ],
    ids=["emptied", "dropped"],
)
def test_an_emptied_ledger_or_dropped_tables_are_not_intact(
    tmp_path: Path, tamper: tuple[str, str]
) -> None:
    ledger = filled(tmp_path)
    for statement in tamper:
        sql(ledger, statement)
    result = Ledger(ledger.path, create=False).verify()
    assert not result.ok and result.problems
    done = run_cli(tmp_path / "home", "audit", "verify", "--ledger", str(ledger.path))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    shown = run_cli(tmp_path / "home", "audit", "show", "--ledger", str(ledger.path))
    assert shown.returncode in (0, 3) and "Traceback" not in shown.stderr


def test_verify_of_a_missing_ledger_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ledger.db"
    done = run_cli(tmp_path / "home", "audit", "verify", "--ledger", str(missing), "--json")
    assert done.returncode == 3, done.stdout + done.stderr
    assert json.loads(done.stdout)["error"]["code"] == "ledger-missing"
    assert not missing.parent.exists()
    assert not (tmp_path / "home").exists() or not list((tmp_path / "home").rglob("ledger*"))


def test_a_deleted_ledger_file_is_an_error_not_an_empty_intact_ledger(tmp_path: Path) -> None:
    ledger = filled(tmp_path)
    ledger.close()
    for suffix in ("", "-wal", "-shm"):
        Path(str(ledger.path) + suffix).unlink(missing_ok=True)
    done = run_cli(tmp_path / "home", "audit", "verify", "--ledger", str(ledger.path))
    assert done.returncode == 3, done.stdout + done.stderr
    assert "intact" not in done.stdout and "6 entries" in done.stderr
    assert not ledger.path.exists()


def test_a_missing_key_is_never_regenerated(tmp_path: Path) -> None:
    from killswitch.ledger_key import LedgerKeyError

    ledger = filled(tmp_path)
    key_file = tmp_path / "ledger.db.key"
    key_file.unlink()
    done = run_cli(tmp_path / "home", "audit", "verify", "--ledger", str(ledger.path), "--json")
    assert done.returncode == 3, done.stdout + done.stderr
    assert json.loads(done.stdout)["error"]["code"] == "ledger-key"
    assert not key_file.exists()
    with pytest.raises(LedgerKeyError):
        Ledger(ledger.path).append(Entry("r", "a", "t", "agent-x", "probe", "dead"))
    assert not key_file.exists()


def test_a_malformed_key_is_a_clear_error(tmp_path: Path) -> None:
    ledger = filled(tmp_path)
    (tmp_path / "ledger.db.key").write_text("not hex at all\n")
    done = run_cli(tmp_path / "home", "audit", "verify", "--ledger", str(ledger.path))
    assert done.returncode == 3, done.stdout + done.stderr
    assert "error[ledger-key]" in done.stderr and "Traceback" not in done.stderr


def test_outside_the_sandbox_state_is_private(tmp_path: Path) -> None:
    from killswitch.runtime import Runtime
    from killswitch.settings import load_settings

    home = tmp_path / "state"
    runtime = Runtime.open(load_settings(home=home, target="live"), providers=[])
    runtime.ledger.append(Entry("r", "a", "t", "agent-x", "probe", "dead"))
    runtime.close()
    assert home.stat().st_mode & 0o777 == 0o700
    files = [p for p in home.iterdir() if p.is_file()]
    assert {p.name for p in files} >= {"ledger.db", "ledger.db.key", "inventory.db"}
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in files), [
        (p.name, oct(p.stat().st_mode)) for p in files
    ]


def test_the_sqlite_ledger_keeps_its_schema(tmp_path: Path) -> None:
    """The embedded default is unchanged by the PostgreSQL store: two tables, two indexes."""
    ledger = filled(tmp_path, 2)
    with sqlite3.connect(ledger.path) as db:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert names == {"entries", "entries_by_agent", "entries_by_run", "head"}
    assert ledger.location == str(ledger.path) and ledger.database_url is None


def test_audit_unfinished_lists_runs_started_or_planned_and_never_finished(
    tmp_path: Path,
) -> None:
    """A run killed after `started` is unfinished; so is one killed right after its plan
    (before `started`): both exit 1 and are named; finished runs and dry runs are not."""
    ledger = Ledger(tmp_path / "ledger.db")

    def row(run_id: str, action: str, outcome: str, **detail: object) -> None:
        ledger.append(
            Entry(
                run_id=run_id,
                actor="alice",
                trigger="cli",
                agent=f"agent-{run_id}",
                action=action,
                outcome=outcome,
                detail=detail,
            )
        )

    row("done", "plan", "planned", workflow="contain")
    row("done", "contain", "started")
    row("done", "contain", "proven")
    row("dry", "plan", "dry-run", workflow="contain")
    row("planned", "plan", "planned", workflow="contain")
    row("killed", "plan", "planned", workflow="decommission")
    row("killed", "decommission", "started")
    row("killed", "deactivate-key", "done")
    # Planned, never run (Prefect down), then the same containment break-glass: covered.
    row("orphan", "plan", "planned", workflow="contain")
    ledger.append(
        Entry(
            run_id="bg",
            actor="alice",
            trigger="cli",
            agent="agent-orphan",
            action="contain",
            outcome="started",
        )
    )
    row("bg", "contain", "proven")
    done = run_cli(tmp_path / "home", "audit", "unfinished", "--ledger", str(ledger.path), "--json")
    assert done.returncode == 1, done.stderr
    listed = {r["run_id"]: (r["action"], r["stage"]) for r in json.loads(done.stdout)}
    assert listed == {"planned": ("contain", "planned"), "killed": ("decommission", "started")}
    said = run_cli(tmp_path / "home", "audit", "unfinished", "--ledger", str(ledger.path))
    assert "planned, never started" in said.stdout and "started, never finished" in said.stdout
