"""A small HTTP/1.1 fault proxy of the project's own (Toxiproxy has no package here).

One listener per stand-in, in front of it on loopback. Per request it can add latency,
answer a throttling response (the provider's own, given by its plug-in, or 429 with
`Retry-After`), answer a 5xx (plain, or an HTML page as a load balancer sends), reset the
connection, or swallow the request (a black hole); a proxy can also be taken down entirely
(connections refused). It counts the requests it forwards, which is how the benchmarks know
how many provider calls a run made. A plug-in may give its proxy a `Layer` that sees every
exchange and may answer differently (a propagation delay).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

KINDS = ("throttle", "error", "error-html", "reset", "blackhole")
# What a load balancer or proxy in front of a provider answers when it is overloaded: a 503
# with an HTML page that no SDK can parse (botocore: not XML, not a bare `<html>`).
HTML_503 = (
    b"<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head>"
    b"<body><h1>Service Unavailable</h1><p>The server is temporarily unable to service "
    b"your request.<br>Please try again later.</p></body></html>\n"
)


@dataclass
class Faults:
    """What a proxy does to the next requests: latency always, one kind `count` times."""

    latency_ms: float = 0.0
    kind: str = ""
    remaining: int = 0
    retry_after_s: float = 1.0
    down: bool = False
    requests: int = 0

    def take(self) -> str:
        if self.kind and self.remaining > 0:
            self.remaining -= 1
            return self.kind
        return ""


class Layer(Protocol):
    """Sees each request and the stand-in's answer to it; returns the answer the client gets
    (a complete HTTP response), or None to pass the stand-in's own through."""

    def exchange(
        self, head: bytes, body: bytes, status: int, response_head: bytes, response_body: bytes
    ) -> bytes | None: ...


Throttled = bytes | Callable[[bytes], bytes]


@dataclass
class Proxy:
    name: str
    upstream_port: int
    faults: Faults = field(default_factory=Faults)
    port: int = 0
    server: asyncio.base_events.Server | None = None
    # The provider's own throttling response, when it has one (or, by request head, when
    # its endpoints throttle differently).
    throttled: Throttled | None = None
    layer: Layer | None = None
    # TLS: the listener's own (a certificate clients trust) and the one upstream is reached
    # with; None: plain. `protocol` "h2": a gRPC relay (`proxy_h2`), per stream, not request.
    tls: ssl.SSLContext | None = None
    upstream_tls: ssl.SSLContext | None = None
    protocol: str = "http"
    connections: set[asyncio.StreamWriter] = field(default_factory=set)


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines if x)}


async def _read_body(
    reader: asyncio.StreamReader, headers: dict[str, str], no_body: bool
) -> tuple[bytes, bool]:
    """The raw body of one message, and whether the connection ends with it."""
    if no_body:
        return b"", False
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raw = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            raw += size_line
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    trailer = await reader.readuntil(b"\r\n")
                    raw += trailer
                    if trailer == b"\r\n":
                        return bytes(raw), False
            raw += await reader.readexactly(size + 2)
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"])), False
    return await reader.read(), True  # delimited by the end of the connection


def canned(status: int, body: bytes, content_type: str, extra: str = "") -> bytes:
    """A complete HTTP/1.1 response (what a fault answers instead of the stand-in)."""
    reason = {429: "Too Many Requests", 400: "Bad Request", 503: "Service Unavailable"}[status]
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


def _throttled(proxy: Proxy, head: bytes) -> bytes:
    if callable(proxy.throttled):
        return proxy.throttled(head)
    if proxy.throttled is not None:
        return proxy.throttled
    after = max(1, round(proxy.faults.retry_after_s))
    return canned(
        429,
        b'{"error": "rate limited by the sandbox proxy"}',
        "application/json",
        f"Retry-After: {after}\r\n",
    )


def reset_connection(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:  # SO_LINGER 0: close with RST, as a dropped connection looks
        with contextlib.suppress(OSError):  # already closed by the peer
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _serve_client(
    proxy: Proxy, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
) -> None:
    upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    try:
        while True:
            head = await _read_head(client_r)
            if head is None:
                return
            headers = _headers(head)
            body, _ = await _read_body(
                client_r,
                headers,
                "content-length" not in headers and "transfer-encoding" not in headers,
            )
            proxy.faults.requests += 1
            if proxy.faults.latency_ms:
                await asyncio.sleep(proxy.faults.latency_ms / 1000)
            fault = proxy.faults.take()
            if fault == "throttle":
                client_w.write(_throttled(proxy, head))
                await client_w.drain()
                continue
            if fault == "error":
                client_w.write(canned(503, b"sandbox proxy: injected 503", "text/plain"))
                await client_w.drain()
                continue
            if fault == "error-html":
                client_w.write(canned(503, HTML_503, "text/html; charset=utf-8"))
                await client_w.drain()
                continue
            if fault == "reset":
                reset_connection(client_w)
                return
            if fault == "blackhole":
                await asyncio.sleep(3600)
                return
            if upstream is None:
                upstream = await open_upstream(proxy)
            up_r, up_w = upstream
            up_w.write(head + body)
            await up_w.drain()
            method = head.split(b" ", 1)[0]
            response_head = await _read_head(up_r)
            if response_head is None:
                reset_connection(client_w)
                return
            status = int(response_head.split(b" ", 2)[1])
            response_headers = _headers(response_head)
            no_body = method == b"HEAD" or status in (204, 304) or 100 <= status < 200
            response_body, closes = await _read_body(up_r, response_headers, no_body)
            upstream_closes = response_headers.get("connection", "").lower() == "close"
            if upstream_closes and not closes:
                # moto's dev server closes every connection; real AWS keeps them alive. The
                # message is delimited, so keep the client's connection and reconnect
                # upstream instead (what a client of the real provider would see).
                response_head = response_head.replace(b"Connection: close\r\n", b"").replace(
                    b"connection: close\r\n", b""
                )
                upstream[1].close()
                upstream = None
            answer = response_head + response_body
            if proxy.layer is not None:
                answer = (
                    proxy.layer.exchange(head, body, status, response_head, response_body) or answer
                )
            client_w.write(answer)
            await client_w.drain()
            if closes:
                return
    except (ConnectionError, asyncio.IncompleteReadError, OSError):
        return
    finally:
        if upstream is not None:
            upstream[1].close()
        with contextlib.suppress(Exception):
            client_w.close()


async def open_upstream(proxy: Proxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the stand-in behind `proxy` (TLS when it speaks TLS)."""
    if proxy.upstream_tls is None:
        return await asyncio.open_connection("127.0.0.1", proxy.upstream_port)
    return await asyncio.open_connection(
        "127.0.0.1", proxy.upstream_port, ssl=proxy.upstream_tls, server_hostname="127.0.0.1"
    )


class Proxies:
    """Every proxy of the sandbox, on one event loop in a thread of the daemon."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="fault-proxy", daemon=True
        )
        self.thread.start()
        self.proxies: dict[str, Proxy] = {}

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def add(
        self,
        name: str,
        upstream_port: int,
        latency_ms: float = 0.0,
        throttled: Throttled | None = None,
        layer: Layer | None = None,
        *,
        tls: tuple[ssl.SSLContext, ssl.SSLContext] | None = None,
        protocol: str = "http",
    ) -> int:
        """Put a proxy in front of `upstream_port`; returns the port clients use (`tls`:
        the listener's context and the upstream one; `protocol` "h2": a gRPC relay)."""
        proxy = Proxy(
            name,
            upstream_port,
            Faults(latency_ms=latency_ms),
            throttled=throttled,
            layer=layer,
            tls=tls[0] if tls else None,
            upstream_tls=tls[1] if tls else None,
            protocol=protocol,
        )
        self._run(self._listen(proxy))
        self.proxies[name] = proxy
        return proxy.port

    async def _listen(self, proxy: Proxy) -> None:
        handler: Callable[[Proxy, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
        handler = _serve_client
        if proxy.protocol == "h2":
            from killswitch.sandbox.proxy_h2 import serve_h2

            handler = serve_h2
        proxy.server = await asyncio.start_server(
            lambda r, w: handler(proxy, r, w), "127.0.0.1", proxy.port, ssl=proxy.tls
        )
        proxy.port = int(proxy.server.sockets[0].getsockname()[1])

    def set(self, name: str, **changes: Any) -> dict[str, Any]:
        """Change a proxy's faults: latency_ms, kind + count, retry_after_s, down."""
        proxy = self.proxies[name]
        faults = proxy.faults
        if "latency_ms" in changes:
            faults.latency_ms = float(changes["latency_ms"])
        if "kind" in changes:
            if changes["kind"] and changes["kind"] not in KINDS:
                raise ValueError(f"unknown fault {changes['kind']!r}; known: {', '.join(KINDS)}")
            faults.kind, faults.remaining = changes["kind"], int(changes.get("count", 1))
        if "retry_after_s" in changes:
            faults.retry_after_s = float(changes["retry_after_s"])
        if "down" in changes and bool(changes["down"]) != faults.down:
            faults.down = bool(changes["down"])
            self._run(self._down(proxy) if faults.down else self._listen(proxy))
        return self.describe()[name]

    async def _down(self, proxy: Proxy) -> None:
        if proxy.server is not None:  # the port stays ours; new connections are refused
            proxy.server.close()
            if proxy.protocol == "h2":  # a gRPC channel holds one connection for good: drop it
                for writer in list(proxy.connections):
                    writer.transport.abort()
            await proxy.server.wait_closed()

    def describe(self) -> dict[str, dict[str, Any]]:
        return {
            name: {
                "port": p.port,
                "upstream_port": p.upstream_port,
                "latency_ms": p.faults.latency_ms,
                "fault": p.faults.kind,
                "remaining": p.faults.remaining,
                "down": p.faults.down,
                "requests": p.faults.requests,
                "protocol": "grpc (h2c)" if p.protocol == "h2" else ("https" if p.tls else "http"),
            }
            for name, p in self.proxies.items()
        }

    def reset_counts(self) -> None:
        for proxy in self.proxies.values():
            proxy.faults.requests = 0

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)

    async def _close(self) -> None:
        """Stop listening, drop every connection, and let their tasks finish."""
        for proxy in self.proxies.values():
            if proxy.server is not None:
                proxy.server.close()
            for writer in list(proxy.connections):
                writer.transport.abort()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
