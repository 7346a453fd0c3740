"""HTTP/2 (gRPC over h2c, prior knowledge) for the sandbox's fault proxy.

Each client connection gets one upstream connection; the `h2` library speaks HTTP/2 on both
sides and every request (a gRPC call: one stream) is relayed on a stream of its own, so the
proxy's per-request faults apply per call, as they do for HTTP/1.1: latency before the
request goes upstream, a throttle answered the way gRPC says it (`RESOURCE_EXHAUSTED`,
grpc-status 8, trailers-only), a 503 (gRPC clients map it to `UNAVAILABLE`), a reset of the
whole connection, or a black hole (the call is swallowed; the client's deadline ends it).
Flow control is honoured in both directions (large listings span several windows).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions

if TYPE_CHECKING:
    from killswitch.sandbox.proxy import Proxy

Headers = list[tuple[bytes, bytes]]

THROTTLED: Headers = [
    (b":status", b"200"),
    (b"content-type", b"application/grpc"),
    (b"grpc-status", b"8"),
    (b"grpc-message", b"Quota exceeded (sandbox proxy: injected RESOURCE_EXHAUSTED)"),
]
UNAVAILABLE: Headers = [(b":status", b"503"), (b"content-type", b"text/plain")]


@dataclass
class _Stream:
    """One call: what the client sent (until it goes upstream) and what comes back."""

    to_up: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)
    to_down: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)
    upstream_id: int | None = None
    answered: bool = False  # the proxy answered it itself (a fault): nothing goes upstream
    responding: bool = False  # the stand-in's answer has begun


class Relay:
    """Both HTTP/2 connections of one client connection, on the proxy's event loop."""

    def __init__(
        self,
        proxy: Proxy,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.proxy = proxy
        self.client_r, self.client_w = client
        self.up_r, self.up_w = upstream
        self.down = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        self.up = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.streams: dict[int, _Stream] = {}  # by the client's stream id
        self.by_upstream: dict[int, int] = {}
        self.flow = asyncio.Event()  # replaced each time a window opens
        self.tasks: set[asyncio.Task[None]] = set()
        self.reset = False

    def flush(self) -> None:
        for conn, writer in ((self.down, self.client_w), (self.up, self.up_w)):
            data = conn.data_to_send()
            if data and not writer.is_closing():
                writer.write(data)

    def _opened(self) -> None:
        self.flow.set()
        self.flow = asyncio.Event()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run(self, reset: Any) -> None:
        """Relay until either side closes; `reset(writer)` drops the client's connection."""
        self.down.initiate_connection()
        self.up.initiate_connection()
        self.flush()
        self._reset_client = reset
        upstream = asyncio.get_running_loop().create_task(self._read_upstream())
        try:
            await self._read_client()
        finally:
            upstream.cancel()
            for task in list(self.tasks):
                task.cancel()
            with contextlib.suppress(BaseException):
                await upstream

    async def _read_client(self) -> None:
        while not self.reset:
            data = await self.client_r.read(65536)
            if not data:
                return
            try:
                events = self.down.receive_data(data)
            except h2.exceptions.ProtocolError:
                self.flush()
                return
            for event in events:
                self._from_client(event)
            self.flush()
            if any(isinstance(e, h2.events.ConnectionTerminated) for e in events):
                return

    def _from_client(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            stream = self.streams[event.stream_id] = _Stream()
            stream.to_up.put_nowait(("headers", (list(event.headers), bool(event.stream_ended))))
            self.proxy.faults.requests += 1
            self._spawn(self._forward(event.stream_id, stream, self.proxy.faults.take()))
        elif isinstance(event, h2.events.DataReceived):
            with contextlib.suppress(h2.exceptions.H2Error):
                self.down.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if event.stream_id in self.streams:
                self.streams[event.stream_id].to_up.put_nowait(("data", event.data))
        elif isinstance(event, h2.events.StreamEnded):
            if event.stream_id in self.streams:
                self.streams[event.stream_id].to_up.put_nowait(("end", None))
        elif isinstance(event, h2.events.StreamReset):
            gone = self.streams.pop(event.stream_id, None)
            if gone is not None and gone.upstream_id is not None:
                with contextlib.suppress(h2.exceptions.H2Error):
                    self.up.reset_stream(gone.upstream_id, event.error_code)
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            self._opened()

    async def _forward(self, stream_id: int, stream: _Stream, fault: str) -> None:
        """One call: its latency, its fault, or the relay of the request upstream."""
        if self.proxy.faults.latency_ms:
            await asyncio.sleep(self.proxy.faults.latency_ms / 1000)
        if fault == "reset":
            self.reset = True
            self._reset_client(self.client_w)
            return
        if fault == "blackhole":
            stream.answered = True  # swallowed: the client's deadline ends the call
            return
        if fault in ("throttle", "error", "error-html"):  # gRPC has no HTML: a 503 either way
            stream.answered = True
            with contextlib.suppress(h2.exceptions.H2Error):
                self.down.send_headers(
                    stream_id, THROTTLED if fault == "throttle" else UNAVAILABLE, end_stream=True
                )
            self.flush()
            return
        await self._pump(stream.to_up, self.up, stream, upstream=True, stream_id=stream_id)

    async def _pump(
        self,
        queue: asyncio.Queue[tuple[str, Any]],
        conn: h2.connection.H2Connection,
        stream: _Stream,
        *,
        upstream: bool,
        stream_id: int,
    ) -> None:
        """Send a stream's frames in order to one side (`stream_id`: the client's id)."""
        target = stream_id  # the upstream's id once its headers are sent
        try:
            while True:
                kind, value = await queue.get()
                if kind == "headers":
                    headers, ended = value
                    if upstream:
                        target = stream.upstream_id = conn.get_next_available_stream_id()
                        self.by_upstream[target] = stream_id
                    conn.send_headers(target, headers, ended)
                    if ended:
                        self.flush()
                        return
                elif kind == "trailers":
                    conn.send_headers(stream_id, value, end_stream=True)
                    self.flush()
                    return
                elif kind == "data":
                    await self._send_data(conn, target, value)
                elif kind == "end":
                    conn.end_stream(target)
                    self.flush()
                    return
                elif kind == "reset":
                    conn.reset_stream(stream_id, value)
                    self.flush()
                    return
                self.flush()
        except h2.exceptions.H2Error:  # the stream closed under us (a reset, the client left)
            self.flush()
        finally:
            if not upstream:
                self.streams.pop(stream_id, None)

    async def _send_data(self, conn: h2.connection.H2Connection, sid: int, data: bytes) -> None:
        while data:
            size = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
            if size <= 0:
                opened = self.flow
                self.flush()
                await opened.wait()
                continue
            conn.send_data(sid, data[:size])
            data = data[size:]
            self.flush()

    async def _read_upstream(self) -> None:
        try:
            while True:
                data = await self.up_r.read(65536)
                if not data:
                    break
                events = self.up.receive_data(data)
                for event in events:
                    self._from_upstream(event)
                self.flush()
                if any(isinstance(e, h2.events.ConnectionTerminated) for e in events):
                    break
        except (ConnectionError, h2.exceptions.ProtocolError):
            pass
        # The stand-in went away: so does the client's connection (as a dropped one looks).
        self._reset_client(self.client_w)

    def _from_upstream(self, event: h2.events.Event) -> None:
        stream_id = self.by_upstream.get(getattr(event, "stream_id", 0) or 0)
        stream = self.streams.get(stream_id) if stream_id is not None else None
        if isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            self._opened()
            return
        if isinstance(event, h2.events.DataReceived):
            with contextlib.suppress(h2.exceptions.H2Error):
                self.up.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        if stream is None or stream_id is None:
            return
        if isinstance(event, h2.events.ResponseReceived):
            stream.responding = True
            stream.to_down.put_nowait(("headers", (list(event.headers), bool(event.stream_ended))))
            self._spawn(
                self._pump(stream.to_down, self.down, stream, upstream=False, stream_id=stream_id)
            )
        elif isinstance(event, h2.events.DataReceived):
            stream.to_down.put_nowait(("data", event.data))
        elif isinstance(event, h2.events.TrailersReceived):
            stream.to_down.put_nowait(("trailers", list(event.headers)))
        elif isinstance(event, h2.events.StreamEnded):
            stream.to_down.put_nowait(("end", None))
        elif isinstance(event, h2.events.StreamReset):
            if stream.responding:
                stream.to_down.put_nowait(("reset", event.error_code))
            else:
                with contextlib.suppress(h2.exceptions.H2Error):
                    self.down.reset_stream(stream_id, event.error_code)
                self.streams.pop(stream_id, None)
