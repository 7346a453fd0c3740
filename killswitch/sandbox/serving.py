"""An ASGI app served by uvicorn on a free loopback port, in a thread of the sandbox daemon
(plain HTTP, or TLS when given a certificate)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn
from starlette.applications import Starlette

from killswitch.errors import KillSwitchError

if TYPE_CHECKING:
    from killswitch.alerts.handling import AlertDesk
    from killswitch.runtime import Runtime


class ThreadedServer:
    """The port is taken at once (others may need it first); the app is served by `start`."""

    def __init__(self, name: str, tls: tuple[Path, Path] | None = None) -> None:
        # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says
        # TCP, and without it every keep-alive response (headers, then body) waits ~40 ms
        # for the peer's delayed ACK.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        # Listening at once: a client that connects before uvicorn's thread runs waits in
        # the backlog instead of being refused (seen under load: an SNS certificate fetch
        # refused right after `start`).
        self.sock.listen(128)
        self.port = int(self.sock.getsockname()[1])
        self.name = name
        self.tls = tls
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self, app: Starlette) -> None:
        """Serve `app` on the port, in a thread of its own."""
        tls = (
            {"ssl_certfile": str(self.tls[0]), "ssl_keyfile": str(self.tls[1])} if self.tls else {}
        )
        config = uvicorn.Config(app, log_level="warning", access_log=False, **tls)  # type: ignore[arg-type]
        server = self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[self.sock])),
            name=self.name,
            daemon=True,
        )
        self.thread.start()

    def stop(self) -> None:
        """Ask uvicorn to finish, and wait a little for it."""
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=5)


@contextmanager
def service_on_a_port(runtime: Runtime, *, desks: list[AlertDesk] | None = None) -> Iterator[int]:
    """`killswitch serve`'s app in this process until the block ends; yields its port (the
    demos drive it as a sender would; `desks` receives the alert desk when alerts are on)."""
    from killswitch import service

    try:
        service.warm(runtime.settings)
    except KillSwitchError:  # runs go break-glass and say so
        pass
    server = ThreadedServer("killswitch-serve")
    server.start(service.build(runtime, desk=desks))
    deadline = time.monotonic() + 20
    while not (server.server and server.server.started) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield server.port
    finally:
        server.stop()
        for desk in desks or []:
            desk.close()
