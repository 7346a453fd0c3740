"""An ASGI app served by uvicorn on a free loopback port, in a thread of the sandbox daemon
(plain HTTP, or TLS when given a certificate)."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import uvicorn
from starlette.applications import Starlette


class ThreadedServer:
    def __init__(self, app: Starlette, name: str, tls: tuple[Path, Path] | None = None) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        certificate = {"ssl_certfile": str(tls[0]), "ssl_keyfile": str(tls[1])} if tls else {}
        config = uvicorn.Config(app, log_level="warning", access_log=False, **certificate)  # type: ignore[arg-type]
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
