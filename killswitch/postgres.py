"""A local PostgreSQL cluster under one directory, from the binaries the `pgserver` wheel ships
(so `pip install` brings PostgreSQL with the project; no distribution package is needed).

`LocalPostgres(directory).start()` initialises the cluster on first use, starts it on a
loopback TCP port (kept in the cluster's configuration, so a restart keeps its address) and
returns its URL; `.stop()` stops it; it is also a context manager. Tests, the sandbox and the
scaled-out bring-up share it. PostgreSQL refuses to run as root: as root the cluster runs as
the unprivileged system user `pgserver` (created once, as pgserver itself does), owning the
directory; the directory's parents get o+x (traverse, not list) so that user can reach it
(choose a directory whose parents nothing resets: pytest makes its basetemp 0700 again).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from killswitch.errors import ConfigurationError

SYSTEM_USER = "pgserver"
SUPERUSER = "postgres"
DEFAULT_DATABASE = "killswitch"
_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresError(ConfigurationError):
    """The local PostgreSQL cluster could not be initialised, started or stopped."""

    code = "postgres-local"
    remediation = (
        "Read the cluster's log (postgres.log in its directory); `pip install pgserver` brings "
        "the binaries, or pass bin_dir= to use another PostgreSQL's."
    )


_URL_PASSWORD = re.compile(r"(?i)\b(postgres(?:ql)?(?:\+\w+)?://[^:/@\s]*):[^@\s]*@")
_KEYWORD_PASSWORD = re.compile(r"(?i)\b(password\s*=\s*)('[^']*'|\S+)")


def redact_url(text: str) -> str:
    """`text` with the password of any PostgreSQL URL (or `password=` keyword) masked."""
    return _KEYWORD_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1:***@", text))


def bin_dir_of_pgserver() -> Path:
    """The PostgreSQL binaries inside the pgserver wheel."""
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise PostgresError("the pgserver package is not installed (it ships PostgreSQL)")
    return Path(spec.origin).parent / "pginstall" / "bin"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _system_user(name: str) -> Any:
    """The passwd entry of `name`, made (a system account, no login) if missing."""
    import pwd

    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    subprocess.run(  # noqa: S603
        ["useradd", "--system", "--user-group", "--shell", "/usr/sbin/nologin", name],  # noqa: S607
        check=False,
        capture_output=True,
    )
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise PostgresError(
            f"PostgreSQL refuses to run as root and the user {name!r} could not be made"
        ) from None


class LocalPostgres:
    """One cluster under `directory` (`pgdata/`, `postgres.log`), listening on `host`:`port`
    with trust authentication on loopback only (a local cluster for one machine's processes;
    `password` switches TCP authentication to scram-sha-256 for a cluster other hosts reach)."""

    def __init__(
        self,
        directory: Path | str,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        database: str = DEFAULT_DATABASE,
        password: str | None = None,
        settings: Mapping[str, str | int] | None = None,
        bin_dir: Path | None = None,
        durable: bool = True,
    ) -> None:
        """`settings`: extra postgresql.conf lines for a new cluster (e.g. max_connections).
        `durable=False` (tests): no fsync at initdb nor after (a PostgreSQL crash or restart
        loses nothing; an operating-system crash may corrupt the cluster)."""
        if not _SAFE_NAME.match(database):
            raise PostgresError(f"not a plain database name: {database!r}")
        self.directory = Path(directory).expanduser().absolute()
        self.pgdata = self.directory / "pgdata"
        self.log_path = self.directory / "postgres.log"
        self.host = host
        self.database = database
        self._password = password
        self._port = port
        self._settings = dict(settings or {})
        self._bin_dir = bin_dir
        self._durable = durable
        self._user: str | None = SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = bin_dir_of_pgserver()
        return self._bin_dir

    @property
    def port(self) -> int:
        if self._port is None:
            self._port = self._configured_port()
        if self._port is None:
            raise PostgresError(f"the cluster under {self.directory} was never started")
        return self._port

    @property
    def url(self) -> str:
        """The URL of the cluster's database (with the password, if any: never print it)."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        auth = SUPERUSER + (f":{self._password}" if self._password else "")
        return f"postgresql://{auth}@{self.host}:{self.port}/{database}"

    def running(self) -> bool:
        if not (self.pgdata / "PG_VERSION").exists():
            return False
        done = self._run("pg_ctl", "-D", str(self.pgdata), "status", check=False)
        return done.returncode == 0

    def start(self, timeout_s: float = 30.0) -> str:
        """Initialise (first time) and start the cluster, or find it running; returns `url`."""
        self._prepare()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        if not self.running():
            self._run(
                "pg_ctl",
                "-D",
                str(self.pgdata),
                "-l",
                str(self.log_path),
                "-w",
                "-t",
                str(int(timeout_s)),
                "start",
                timeout=timeout_s + 5,
            )
        self._ensure_database(self.database, timeout_s)
        return self.url

    def stop(self, mode: str = "fast", timeout_s: float = 30.0) -> None:
        """Stop the cluster (`fast`: connections are ended with 57P01 admin_shutdown;
        `immediate`: a crash, recovered at the next start). Stopped already: nothing."""
        if mode not in ("smart", "fast", "immediate"):
            raise PostgresError(f"unknown shutdown mode {mode!r}")
        if not self.running():
            return
        self._run(
            "pg_ctl",
            "-D",
            str(self.pgdata),
            "-m",
            mode,
            "-w",
            "-t",
            str(int(timeout_s)),
            "stop",
            timeout=timeout_s + 5,
        )

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def ensure_database(self, database: str) -> str:
        """Create `database` if it is missing (e.g. one for a Prefect server); its URL."""
        self._ensure_database(database, 30.0)
        return self.url_for(database)

    def destroy(self) -> None:
        """Stop the cluster and delete its directory."""
        self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:  # never the password
        return f"LocalPostgres({str(self.directory)!r}, port={self._port})"

    def _prepare(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self._user is None:
            return
        entry = _system_user(self._user)
        for parent in self.directory.parents:  # traverse only
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                parent.chmod(mode | stat.S_IXOTH)
        binaries = self.bin_dir.parent
        for path in (binaries, *binaries.parents):
            mode = path.stat().st_mode
            if not mode & stat.S_IXOTH:
                path.chmod(mode | stat.S_IXOTH)
        for path in (self.directory, self.log_path):
            if path.exists() and path.stat().st_uid != entry.pw_uid:
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        auth = ["--auth-local=trust"]
        pwfile: Path | None = None
        if self._password:
            pwfile = self.directory / ".pwfile"
            pwfile.write_text(self._password + "\n")
            pwfile.chmod(0o600)
            self._chown(pwfile)
            auth += ["--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
        else:
            auth += ["--auth-host=trust"]
        try:
            self._run(
                "initdb",
                "-D",
                str(self.pgdata),
                "-U",
                SUPERUSER,
                "--encoding=UTF8",
                "--no-instructions",
                *auth,
                *([] if self._durable else ["--no-sync"]),
                timeout=120,
            )
        finally:
            if pwfile is not None:
                pwfile.unlink(missing_ok=True)
        port = self._port or free_port(self.host)
        lines = {
            "listen_addresses": f"'{self.host}'",
            "port": port,
            "unix_socket_directories": "''",
            **({} if self._durable else {"fsync": "off"}),
            **self._settings,
        }
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write("\n# killswitch.postgres.LocalPostgres\n")
            for name, value in lines.items():
                conf.write(f"{name} = {value}\n")
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            method = "scram-sha-256" if self._password else "trust"
            with (self.pgdata / "pg_hba.conf").open("a") as hba:
                hba.write(f"host all all 0.0.0.0/0 {method}\nhost all all ::/0 {method}\n")
        self._port = port

    def _configured_port(self) -> int | None:
        try:
            text = (self.pgdata / "postgresql.conf").read_text()
        except OSError:
            return None
        found = re.findall(r"(?m)^port = (\d+)", text)
        return int(found[-1]) if found else None

    def _ensure_database(self, database: str, timeout_s: float) -> None:
        if not _SAFE_NAME.match(database):
            raise PostgresError(f"not a plain database name: {database!r}")
        import psycopg

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with psycopg.connect(self.url_for("postgres"), autocommit=True) as db:
                    found = db.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
                    ).fetchone()
                    if found is None:
                        db.execute(f'CREATE DATABASE "{database}"')  # a checked plain name
                return
            except psycopg.errors.DuplicateDatabase:
                return  # another process made it first
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _chown(self, path: Path) -> None:
        if self._user is not None:
            entry = _system_user(self._user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(
        self, program: str, *args: str, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        extra: dict[str, Any] = {}
        if self._user is not None:
            entry = _system_user(self._user)
            extra = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        try:
            done = subprocess.run(  # noqa: S603  (our own binaries, argument lists)
                [str(self.bin_dir / program), *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=self.directory,
                check=False,
                **extra,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresError(f"{program} failed: {exc}") from exc
        if check and done.returncode != 0:
            raise PostgresError(
                f"{program} {args[-1]} failed (exit {done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-800:]}{self._log_tail()}"
            )
        return done

    def _log_tail(self) -> str:
        try:
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-8:]
        except OSError:
            return ""
        return "\nlog:\n" + "\n".join(tail) if tail else ""
