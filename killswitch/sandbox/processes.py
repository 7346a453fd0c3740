"""The processes `sandbox up` starts (the daemon, a Prefect server): spawned in sessions of
their own, recorded by pid and command line, stopped by process group."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from killswitch.errors import SandboxError
from killswitch.sandbox.state import Paths, pid_alive

PREFECT_MARKER = "prefect server start"


def free_port() -> int:
    """A loopback port nobody listens on (right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> int:
    """Start `cmd` in a session of its own, output to `log`; its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(  # noqa: S603  (our own interpreter and arguments)
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            close_fds=True,
        )
    return process.pid


def write_private(path: Path, data: dict[str, Any]) -> None:
    """Write JSON readable by its owner only, atomically."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.replace(tmp, path)


def wait(what: str, ready: Callable[[], bool], timeout: float, pid: int) -> None:
    """Until `ready()`, while `pid` lives, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        # Not pid_alive(): right after the fork the child may not have exec'd yet, and its
        # command line is still ours.
        if not exists(pid):
            raise SandboxError(f"{what} exited while starting: see {what} in the sandbox logs")
        time.sleep(0.1)
    raise SandboxError(f"{what} did not become ready within {timeout:.0f}s")


def prefect_healthy(api_url: str) -> bool:
    """The Prefect server answers `/health`."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=1) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False


def start_prefect(paths: Paths) -> tuple[int, str, str]:
    """`prefect server start` on a free port, its home inside the sandbox, its API behind a
    basic-auth string of its own (a sandbox secret); (pid, API URL, auth string)."""
    port = free_port()
    auth = f"killswitch:{secrets.token_urlsafe(24)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(paths.prefect_home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_API_AUTH_STRING=auth,
        # The server's own clients (its services) call its API too.
        PREFECT_API_AUTH_STRING=auth,
    )
    prefect = str(Path(sys.executable).parent / "prefect")
    pid = spawn(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        paths.logs / "prefect.log",
        env,
    )
    return pid, f"http://127.0.0.1:{port}/api", auth


def _leads_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def send(pid: int, sig: int) -> None:
    """Signal `pid`'s process group (what `spawn` starts leads one), or `pid` alone when it
    leads none (a child of the daemon); nothing when it is gone."""
    try:
        if _leads_group(pid):
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def stop(pid: int, marker: str, timeout: float = 10) -> None:
    """SIGTERM it (its group), SIGKILL after `timeout` (only if it is still ours)."""
    if not pid_alive(pid, marker):
        return
    leader = _leads_group(pid)
    send(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and exists(pid):
        time.sleep(0.05)
    try:  # whatever is left of the group (its leader may be gone already)
        if leader:
            os.killpg(pid, signal.SIGKILL)
        elif exists(pid):
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def exists(pid: int) -> bool:
    """True while the process exists and is not a zombie (we may be its parent)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
