"""The inventory in PostgreSQL, shared by hosts that have nothing else in common: its own
tables and every table other modules keep beside it (plans, run-ticket nonces, alert dedup
and breaker, replay ids, fingerprints, sightings), with no SQLite file left on a host.

The side tables' behaviour on both backends is tested where each lives (test_plans.py,
test_run_tickets.py, alerts/test_guard.py, …, through the `inventory_at` fixture); here is
what only a shared server shows: several processes racing, the types, the server gone.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from killswitch.alerts.fingerprints import Fingerprints
from killswitch.alerts.guard import Dedup, StormBreaker
from killswitch.alerts.replay import SeenAlerts
from killswitch.inventory import Inventory
from killswitch.inventory_postgres import SIDE_LOCK, PostgresInventory
from killswitch.models import Action, Agent, AgentStatus, CredentialRef, Verb
from killswitch.plans import PlanNotRunnableError, Plans
from killswitch.postgres import free_port
from killswitch.request import Request
from killswitch.run_tickets import Nonces
from killswitch.sightings import Sightings
from killswitch.slack_app.gate import SeenRequests
from killswitch.store_postgres import DatabaseUnavailable
from tests.killswitch.test_plans import a_plan

SIDE_TABLES = {
    "plans",
    "run_ticket_nonces",
    "alert_seen",
    "alert_containments",
    "alert_breaker",
    "alert_seen_requests",
    "slack_seen_requests",
    "secret_fingerprints",
    "nhis",
    "sweep_cases",
    "sweep_runs",
}


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as db:
        rows = db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def test_the_inventory_round_trips_and_is_shared_between_hosts(tmp_path: Path, pg_url: str) -> None:
    shared = {n for n in vars(Inventory) if not n.startswith("_")}
    assert shared <= set(vars(PostgresInventory)), "a method would fall through to SQLite"
    one = PostgresInventory(pg_url, tmp_path / "a" / "inventory.db")
    other = PostgresInventory(pg_url, tmp_path / "b" / "inventory.db")  # another host
    expires = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)
    one.upsert_agent(Agent("agent-7", "team-a", AgentStatus.ACTIVE, "research", "prod", expires))
    one.upsert_agent(Agent("bot-2", "team-b", AgentStatus.ACTIVE))
    one.upsert_agent(Agent("bot-2", "team-c", AgentStatus.ACTIVE))  # an upsert
    key = CredentialRef("aws", "aws.access-key", "AKIAEXAMPLE")
    for _ in range(2):  # declaring twice is one declaration
        one.declare("agent-7", key)
    one.declare("bot-2", key)
    assert other.get_agent("agent-7") == Agent(
        "agent-7", "team-a", AgentStatus.ACTIVE, "research", "prod", expires
    )
    assert [a.owner for a in other.list_agents()] == ["team-a", "team-c"]
    assert other.get_agent("nobody") is None
    assert other.declared("agent-7") == [key]
    assert other.declared_by() == {(key.kind, key.ref): ["agent-7", "bot-2"]}
    other.set_status("agent-7", AgentStatus.CONTAINED)
    assert one.get_agent("agent-7").status is AgentStatus.CONTAINED  # type: ignore[union-attr]

    action = Action("aws", Verb.DETACH, "RemoveUserFromGroup", "user/a7", "group:admins", True)
    first = one.record_undo(run_id="r1", agent_id="agent-7", action=action, data={})
    second = one.record_undo(run_id="r1", agent_id="agent-7", action=action, data={"n": 2})
    one.settle_undo(first, {"group": "admins"})
    pending = other.pending_undo("agent-7")
    assert [(r.id, r.action, r.data) for r in pending] == [
        (first, action, {"group": "admins"}),
        (second, action, {"n": 2}),
    ]
    other.settle_undo(second, None)  # nothing changed: the record goes
    other.mark_restored([first], run_id="r2")
    assert one.pending_undo("agent-7") == []
    one.clear()
    assert other.list_agents() == [] and other.declared("agent-7") == []
    one.close()
    other.close()


def test_the_tables_beside_it_live_in_postgres_and_nothing_on_the_host(
    tmp_path: Path, pg_url: str
) -> None:
    host = tmp_path / "host-a"
    inventory = PostgresInventory(pg_url, host / "inventory.db")
    try:
        Plans(inventory)
        Nonces(inventory)
        Dedup(inventory, 60).first("k", now=1_765_000_000.123456)
        StormBreaker(inventory, 2, 60)
        SeenAlerts(inventory)
        SeenRequests(inventory)
        Fingerprints(inventory, b"k" * 32, {"access_key_id"}).add(
            "aws.access-key", "AKIA1", {"access_key_id": "AKIA1", "secret": "s3cr3t-canary"},
            agent_id="agent-1",
        )  # fmt: skip
        Sightings(inventory)
        assert SIDE_TABLES <= tables(pg_url)
        assert not host.exists(), "a SQLite file was made on the host"
        with psycopg.connect(pg_url) as db:
            # Epoch seconds keep their microseconds (SQLite's REAL is PostgreSQL's float8).
            assert db.execute("SELECT first_at FROM alert_seen").fetchone() == (
                1_765_000_000.123456,
            )
            rows = db.execute("SELECT * FROM secret_fingerprints").fetchall()
        assert len(rows) == 1 and "s3cr3t-canary" not in repr(rows)  # keyed, never the secret
    finally:
        inventory.close()


def _claim(url: str, side: str, run_id: str, start: Any, out: Any) -> None:
    plans = Plans(PostgresInventory(url, Path(side)))  # a process of its own: another host
    start.wait()
    try:
        plans.claim(run_id)
        out.put("claimed")
    except PlanNotRunnableError:
        out.put("refused")


def _admit(url: str, side: str, agent_id: str, start: Any, out: Any) -> None:
    breaker = StormBreaker(PostgresInventory(url, Path(side)), max_agents=3, window_s=600)
    start.wait()
    out.put((agent_id, breaker.admit(agent_id, f"run-{agent_id}").contain))


def race(target: Any, url: str, tmp_path: Path, args: list[str]) -> list[Any]:
    """`target(url, side, arg, start, out)` in one process per arg, released at once."""
    context = multiprocessing.get_context("fork")
    start, out = context.Event(), context.Queue()
    workers = [
        context.Process(target=target, args=(url, str(tmp_path / f"h{n}"), arg, start, out))
        for n, arg in enumerate(args)
    ]
    for worker in workers:
        worker.start()
    time.sleep(0.5)  # every process connected and waiting
    start.set()
    results = [out.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    return results


def test_a_plan_is_claimed_once_by_hosts_racing_for_it(tmp_path: Path, pg_url: str) -> None:
    request = Request("agent-1", "leak", "cli:me")
    Plans(PostgresInventory(pg_url, tmp_path / "planner")).save(request, a_plan(request.run_id))
    said = race(_claim, pg_url, tmp_path, [request.run_id] * 6)
    assert sorted(said) == ["claimed"] + ["refused"] * 5


def test_the_storm_breaker_counts_every_hosts_containments(tmp_path: Path, pg_url: str) -> None:
    said = dict(race(_admit, pg_url, tmp_path, [f"agent-{n}" for n in range(7)]))
    assert sum(said.values()) == 3, said  # max_agents, whichever hosts asked first


def test_a_database_that_is_gone_is_a_clear_error(tmp_path: Path) -> None:
    url = f"postgresql://killswitch:hunter2-secret@127.0.0.1:{free_port()}/nowhere"
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as raised:
        Plans(PostgresInventory(url, tmp_path / "inventory.db", deadline_s=1.0))
    assert time.monotonic() - started < 10
    assert "hunter2" not in str(raised.value) and "did not answer" in str(raised.value)


def end_idle_sessions(url: str) -> int:
    """End every other session of the database, as a fast restart or a failover does
    (57P01 admin_shutdown); how many."""
    with psycopg.connect(url, autocommit=True) as db:
        row = db.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_connection_ended_while_idle_is_made_again_for_the_tables_beside_it(
    tmp_path: Path, pg_url: str
) -> None:
    """The server restarted between two transactions (the server is back): the next one
    connects again, as the inventory's own calls do, instead of failing once per process."""
    inventory = PostgresInventory(pg_url, tmp_path / "inventory.db", deadline_s=5.0)
    nonces = Nonces(inventory)
    try:
        assert nonces.first_time("n-1", "contain", time.time() + 60)
        assert end_idle_sessions(pg_url) == 1
        assert nonces.first_time("n-2", "contain", time.time() + 60)
        assert not nonces.first_time("n-1", "contain", time.time() + 60)
        # Ended inside a block: not re-run (nothing of it written), a clear error, and the
        # side lock is free for another host at once.
        with pytest.raises(DatabaseUnavailable, match="did not answer"):
            with inventory.transaction() as db:
                db.execute("DELETE FROM run_ticket_nonces")
                end_idle_sessions(pg_url)
                db.execute("SELECT 1")
        other = Nonces(PostgresInventory(pg_url, tmp_path / "other.db", deadline_s=5.0))
        assert not other.first_time("n-2", "contain", time.time() + 60)
        assert nonces.first_time("n-3", "contain", time.time() + 60)
    finally:
        inventory.close()


def test_a_host_that_stops_inside_a_transaction_does_not_stop_every_other_host(
    tmp_path: Path, pg_url: str
) -> None:
    """A host frozen (or cut off) inside a transaction beside the inventory holds its lock
    until the server notices, hours without keepalives: another host waits as long as SQLite
    waits for a writer (the deadline), then fails clearly, instead of hanging its Slack
    commands and alert replay checks for as long."""
    nonces = Nonces(PostgresInventory(pg_url, tmp_path / "inventory.db", deadline_s=1.0))
    frozen = psycopg.connect(pg_url)  # another host's transaction, never finished
    frozen.execute("SELECT pg_advisory_xact_lock(%s)", (SIDE_LOCK,))
    said: list[BaseException | bool] = []

    def check() -> None:
        try:
            said.append(nonces.first_time("n-1", "contain", time.time() + 60))
        except Exception as exc:  # noqa: BLE001  (what it raised is the assertion)
            said.append(exc)

    waiting = threading.Thread(target=check, daemon=True)
    started = time.monotonic()
    waiting.start()
    waiting.join(15)
    frozen.close()  # the host is gone: the lock with it
    waiting.join(15)
    assert time.monotonic() - started < 15, "waited for the frozen host"
    assert len(said) == 1 and isinstance(said[0], DatabaseUnavailable), said
    assert "locked" in said[0].message
    assert nonces.first_time("n-1", "contain", time.time() + 60)  # nothing was written
