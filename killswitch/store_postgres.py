"""A PostgreSQL connection that survives the server: every unit of work runs in one
transaction, and a lost or refused connection, a restarting server (57P01 admin_shutdown,
57P03 cannot connect now) or a lost serialisation race is retried with the house policy
(killswitch/retry.py) inside a deadline; anything else, or the deadline, raises. Shared by the
ledger (killswitch/ledger_postgres.py) and the inventory (killswitch/inventory_postgres.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from killswitch.errors import KillSwitchError, TransientError
from killswitch.postgres import redact_url
from killswitch.retry import retrying_transient

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")
# Errors worth another try: the server went away or is starting, or a transaction lost a race.
TRANSIENT_STATES = frozenset(
    {"40001", "40P01", "57P01", "57P02", "57P03", "08000", "08001", "08003", "08006", "53300"}
)
_TRANSIENT_FATAL = (
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "terminating connection due to administrator command",
    "too many clients",
)


class DatabaseUnavailable(KillSwitchError):
    """The database did not answer within the deadline: what was asked was not done."""

    code = "database-unavailable"
    remediation = (
        "Check the PostgreSQL server behind settings.database_url (is it up, reachable, "
        "accepting connections?). What was not written is reported as such: re-run the "
        "action once the database is back (every verb is idempotent)."
    )


def transient(exc: BaseException) -> bool:
    """A lost or refused connection, a restarting server, a lost serialisation race."""
    import psycopg

    if not isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return False
    state = getattr(exc, "sqlstate", None)
    if state is not None:
        return state in TRANSIENT_STATES
    # A failed connect carries no SQLSTATE: the server's FATAL says why (a wrong password or
    # database is no reason to wait); no answer at all (refused, reset, timeout) is transient.
    message = str(exc)
    if "FATAL:" not in message:
        return True
    return any(reason in message for reason in _TRANSIENT_FATAL)


class RetryingConnection:
    """One connection (made on first use, made again after a failure); `run` is the only
    way in. The caller serialises use (one thread at a time)."""

    def __init__(
        self, url: str, deadline_s: float, *, what: str = "database", connect_timeout_s: int = 5
    ) -> None:
        self.url = url
        self.location = redact_url(url)
        self.deadline_s = deadline_s
        self.what = what
        self._connect_timeout = connect_timeout_s
        self._db: psycopg.Connection[Any] | None = None

    def run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """`work(connection)` inside one transaction, retried whole after a transient error."""

        def attempt() -> T:
            db = self._conn()
            with db.transaction():
                return work(db)

        return self.retrying(attempt)

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction for work that cannot be re-run whole (a caller's `with` block):
        reaching the server is retried like `run`, the block is not — a lost connection inside
        it rolls back and raises DatabaseUnavailable (nothing of the block was written)."""

        def begin() -> tuple[psycopg.Connection[Any], AbstractContextManager[Any]]:
            # BEGIN is reaching the server: a connection ended while idle (a restart, a
            # failover) fails here, before the block, and is made again.
            db = self._conn()
            block = db.transaction()
            block.__enter__()
            return db, block

        db, block = self.retrying(begin)
        try:
            with ExitStack() as stack:
                stack.push(block)
                yield db
        except Exception as exc:
            if not transient(exc):
                raise
            self._drop()
            raise self.unavailable(exc) from exc

    def connect(self) -> psycopg.Connection[Any]:
        """A connection of the caller's own (a long reader), retried like `run`."""
        return self.retrying(self._connect)

    def unavailable(self, exc: BaseException, doing: str = "did not answer") -> DatabaseUnavailable:
        return DatabaseUnavailable(
            f"the {self.what} {self.location} {doing} ({type(exc).__name__}: "
            f"{redact_url(str(exc))})".replace("\n", " ")
        )

    def retrying(self, work: Callable[[], T]) -> T:
        def attempt() -> T:
            try:
                return work()
            except Exception as exc:
                if not transient(exc):
                    raise
                self._drop()
                raise TransientError(
                    f"{type(exc).__name__}: {redact_url(str(exc))}".strip(),
                    provider="postgresql",
                    provider_code=getattr(exc, "sqlstate", None) or "",
                ) from exc

        try:
            return retrying_transient(self.deadline_s)(attempt)
        except TransientError as exc:
            raise DatabaseUnavailable(
                f"the {self.what} {self.location} did not answer within "
                f"{self.deadline_s:g} s ({exc.message})".replace("\n", " ")
            ) from exc

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        return psycopg.connect(self.url, connect_timeout=self._connect_timeout)

    def _conn(self) -> psycopg.Connection[Any]:
        if self._db is None or self._db.closed or self._db.broken:
            self._drop()
            self._db = self._connect()
        return self._db

    def _drop(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except Exception:  # noqa: S110  (a broken connection may fail to close; it is gone)
                pass
            self._db = None

    def close(self) -> None:
        self._drop()
