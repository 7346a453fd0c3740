"""The fault proxy's gRPC relay: HTTP/2 cleartext (h2c) in, h2c to the gRPC stand-in out.

One gRPC call is one HTTP/2 stream, so the faults apply per stream, each as the client
would meet it in front of Google: latency; `throttle` → trailers-only RESOURCE_EXHAUSTED
(8); `error` → UNAVAILABLE (14) as a gRPC-aware load balancer answers; `error-html` → an
HTTP 503 with an HTML page (grpc maps a non-gRPC HTTP 503 to UNAVAILABLE); `reset` → the
connection dropped with a TCP RST (every call on it: UNAVAILABLE); `blackhole` → the call
is never answered; `down` (in `proxy.py`) drops the connections and refuses new ones.

Each client connection gets its own upstream connection, opened on its first call and
closed with it (or when the stand-in drops it: then its calls fail UNAVAILABLE and the next
call opens another). A call waits for a free stream when the stand-in's
MAX_CONCURRENT_STREAMS is reached, and for window updates when a body is larger than the
flow-control window; data is acknowledged as it is relayed, so neither side's windows
drain. A call that fails in the relay ends with a gRPC status, never silently.

A stream the stand-in did not process is sent again: one it refused (RST_STREAM
REFUSED_STREAM) and one above a GOAWAY's last stream id (on another connection). grpc's
server counts a stream against MAX_CONCURRENT_STREAMS until its call is freed, a while after
the stream closed (`grpc.http.overload_protection`, on by default), so it may refuse although
the relay counts a free stream: each replay waits longer than the one before, for up to
REPLAY_WITHIN seconds. Every frame from the stand-in is tagged with its stream, so what a
refused attempt left behind never reaches the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    RequestReceived,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from h2.exceptions import H2Error

from killswitch.sandbox.proxy import HTML_503, Proxy, open_upstream, reset_connection

log = logging.getLogger(__name__)

RESOURCE_EXHAUSTED, UNAVAILABLE, INTERNAL = 8, 14, 13
END = object()  # a queue's last item: the sender ended the stream
REPLAYABLE = 1 << 20  # a request up to this size is kept until answered (sent again if refused)
REPLAY_WITHIN = 5.0  # seconds after its first refusal a stream is still sent again
REPLAY_PAUSE = 0.01, 0.25  # seconds before the first replay, doubled each time up to the second
Headers = list[tuple[bytes, bytes]]
# Hop-by-hop headers HTTP/2 forbids relaying as they came.
HOP = {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}


class Side:
    """One HTTP/2 connection of the relay (to the client, or to the stand-in): its h2 state
    machine, its socket, and a condition that wakes whoever waits for a window or a slot."""

    def __init__(self, conn: H2Connection, writer: asyncio.StreamWriter) -> None:
        self.conn = conn
        self.writer = writer
        self.changed = asyncio.Event()
        self.closed = False

    def flush(self) -> None:
        """Write what h2 has queued, and wake whoever waits for a window or a free stream
        (the transport buffers; windows bound what it holds)."""
        data = self.conn.data_to_send()
        if data and not self.closed:
            self.writer.write(data)
        self.changed.set()
        self.changed = asyncio.Event()

    async def wait(self, ready: Callable[[], bool]) -> None:
        """Until `ready()` (re-checked after every frame received or sent)."""
        while not ready():
            if self.closed:
                raise ConnectionError("the connection closed")
            await self.changed.wait()

    async def send(self, stream_id: int, data: bytes, end: bool = False) -> None:
        """DATA within the stream's and the connection's flow-control windows."""
        view = memoryview(data)
        while view:
            await self.wait(lambda: self.conn.local_flow_control_window(stream_id) > 0)
            size = min(
                len(view),
                self.conn.local_flow_control_window(stream_id),
                self.conn.max_outbound_frame_size,
            )
            self.conn.send_data(stream_id, bytes(view[:size]))
            self.flush()
            view = view[size:]
        if end:
            self.conn.end_stream(stream_id)
            self.flush()

    def acknowledge(self, stream_id: int, size: int) -> None:
        """Give back window for data relayed (the connection's too, if the stream is gone)."""
        if size:
            with contextlib.suppress(H2Error):
                self.conn.acknowledge_received_data(size, stream_id)
            self.flush()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                self.writer.close()
        self.flush()


@dataclass
class Call:
    """One gRPC call: its stream on each side, and what each side sent that the other has
    not taken yet: the client's `(data, flow-controlled size)` items and END; the stand-in's
    `(kind, upstream stream id, ...)` items (see `Upstream._route`)."""

    down_id: int
    headers: Headers
    request: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    response: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    up_id: int | None = None
    upstream: Upstream | None = None
    answered: bool = False  # response headers went to the client
    done: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # What went upstream so far, while it may be sent again (a stream the stand-in refused).
    sent: list[bytes] = field(default_factory=list)
    sent_size: int = 0
    ended: bool = False  # the client's request is complete
    replays: int = 0
    refused_at: float | None = None  # loop time of the first refusal


class Upstream:
    """The relay's connection to the stand-in for one client connection."""

    def __init__(self, side: Side, reader: asyncio.StreamReader) -> None:
        self.side = side
        self.reader = reader
        self.calls: dict[int, Call] = {}
        self.task: asyncio.Task[None] | None = None
        # Until the stand-in's first SETTINGS, its stream limit is unknown (h2 assumes none):
        # a burst opened before it would be refused (RST_STREAM REFUSED_STREAM).
        self.settled = False

    @classmethod
    async def open(cls, proxy: Proxy) -> Upstream:
        reader, writer = await open_upstream(proxy)
        conn = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        conn.initiate_connection()
        upstream = cls(Side(conn, writer), reader)
        upstream.side.flush()
        upstream.task = asyncio.create_task(upstream.read())
        return upstream

    def has_room(self) -> bool:
        conn = self.side.conn
        limit = conn.remote_settings.max_concurrent_streams
        return self.settled and bool(conn.open_outbound_streams < limit)

    async def start(self, call: Call) -> None:
        """Open the call's stream here, once the stand-in allows one more."""
        await self.side.wait(self.has_room)
        stream_id = self.side.conn.get_next_available_stream_id()
        headers = [(k, v) for k, v in call.headers if k.lower() not in HOP]
        self.side.conn.send_headers(stream_id, headers)
        call.up_id, call.upstream = stream_id, self
        self.calls[stream_id] = call
        self.side.flush()

    async def read(self) -> None:
        """The stand-in's frames, each handed to its call; at the end every call left fails."""
        try:
            while not self.side.closed:
                data = await self.reader.read(65536)
                if not data:
                    break
                events = self.side.conn.receive_data(data)
                for event in events:
                    self._route(event)
                self.side.flush()
                if any(isinstance(e, ConnectionTerminated) for e in events):
                    break  # GOAWAY: the next call opens another connection
        except (ConnectionError, OSError, H2Error) as exc:
            log.warning("gRPC relay: upstream connection failed: %s", type(exc).__name__)
        finally:
            self.side.close()
            for stream_id, call in list(self.calls.items()):
                call.response.put_nowait(
                    ("fail", stream_id, UNAVAILABLE, "upstream connection closed")
                )
            self.calls.clear()

    def _route(self, event: Any) -> None:
        """An event to its call's response queue: `("headers" | "trailers", id, headers)`,
        `("data", id, data, flow-controlled size, self)`, `("end", id)`, `("reset", id, code)`
        or `("fail", id, status, message)`."""
        if isinstance(event, RemoteSettingsChanged):
            self.settled = True
        if isinstance(event, ConnectionTerminated):
            # GOAWAY: the streams above its last id were not processed (RFC 9113 6.8), as
            # if refused; `read` fails the others, which h2 cannot follow past a GOAWAY.
            last = event.last_stream_id or 0
            for stream_id in [s for s in self.calls if s > last]:
                refused = ("reset", stream_id, int(ErrorCodes.REFUSED_STREAM))
                self.calls.pop(stream_id).response.put_nowait(refused)
            return
        stream_id = getattr(event, "stream_id", 0) or 0
        call = self.calls.get(stream_id)
        if call is None:
            if isinstance(event, DataReceived):  # for a call given up: window back
                self.side.acknowledge(stream_id, event.flow_controlled_length)
            return
        if isinstance(event, ResponseReceived):
            # Trailers-only (a status and no message) must stay one HEADERS frame.
            kind = "trailers" if event.stream_ended is not None else "headers"
            call.response.put_nowait((kind, stream_id, list(event.headers)))
        elif isinstance(event, DataReceived):
            size = event.flow_controlled_length
            call.response.put_nowait(("data", stream_id, event.data, size, self))
        elif isinstance(event, TrailersReceived):
            call.response.put_nowait(("trailers", stream_id, list(event.headers)))
        elif isinstance(event, StreamEnded):
            call.response.put_nowait(("end", stream_id))
            self.calls.pop(stream_id, None)
        elif isinstance(event, StreamReset):
            call.response.put_nowait(("reset", stream_id, int(event.error_code)))
            self.calls.pop(stream_id, None)

    def cancel(self, call: Call) -> None:
        """The client gave the call up: so does the stand-in's stream."""
        if call.up_id is not None and self.calls.pop(call.up_id, None) is not None:
            with contextlib.suppress(H2Error):
                self.side.conn.reset_stream(call.up_id, ErrorCodes.CANCEL)
            self.side.flush()  # a stream freed: wakes a call waiting for one

    def close(self) -> None:
        self.side.close()
        if self.task is not None:
            self.task.cancel()


def trailers_only(status: int, message: str) -> Headers:
    """A gRPC response that is all trailers: HTTP 200 with the status (end of stream)."""
    return [
        (b":status", b"200"),
        (b"content-type", b"application/grpc"),
        (b"grpc-status", str(status).encode()),
        (b"grpc-message", message.replace("%", "%25").encode()),
    ]


class Downstream:
    """One client connection to the relay, and its calls."""

    def __init__(self, proxy: Proxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.proxy = proxy
        self.reader = reader
        config = H2Configuration(client_side=False, header_encoding=None)
        conn = H2Connection(config)
        self.side = Side(conn, writer)
        self.calls: dict[int, Call] = {}
        self.upstream: Upstream | None = None
        self.connecting: asyncio.Lock = asyncio.Lock()

    async def serve(self) -> None:
        self.side.conn.initiate_connection()
        self.side.flush()
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    return
                events = self.side.conn.receive_data(data)
                for event in events:
                    self._route(event)
                self.side.flush()
                if any(isinstance(e, ConnectionTerminated) for e in events):
                    return
        except (ConnectionError, OSError, H2Error) as exc:
            log.debug("gRPC relay: client connection ended: %s", type(exc).__name__)
        finally:
            self.side.close()
            for call in list(self.calls.values()):
                for task in call.tasks:
                    task.cancel()
            self.calls.clear()
            if self.upstream is not None:  # never left open behind a closed client
                self.upstream.close()

    def _route(self, event: Any) -> None:
        if isinstance(event, RequestReceived):
            started = Call(event.stream_id, list(event.headers))
            self.calls[event.stream_id] = started
            self.proxy.faults.requests += 1
            started.tasks.append(asyncio.create_task(self._call(started)))
            return
        if isinstance(event, WindowUpdated | RemoteSettingsChanged):
            return  # `serve` flushes, which wakes the waiting senders
        call = self.calls.get(getattr(event, "stream_id", 0) or 0)
        if call is None:
            if isinstance(event, DataReceived):  # a call already answered: window back
                self.side.acknowledge(event.stream_id, event.flow_controlled_length)
            return
        if isinstance(event, DataReceived):
            call.request.put_nowait((event.data, event.flow_controlled_length))
        elif isinstance(event, StreamEnded):
            call.request.put_nowait(END)
        elif isinstance(event, StreamReset):  # the client cancelled (or its deadline passed)
            self._forget(call)
            if call.upstream is not None:
                call.upstream.cancel(call)

    def _forget(self, call: Call) -> None:
        """The call is over: stop its tasks, end its upstream stream if still open, and give
        back the window of whatever neither side will relay now (or the windows drain)."""
        call.done = True
        self.calls.pop(call.down_id, None)
        for task in call.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        if call.upstream is not None:
            call.upstream.cancel(call)
        while not call.request.empty():
            item = call.request.get_nowait()
            if item is not END:
                self.side.acknowledge(call.down_id, item[1])
        while not call.response.empty():
            item = call.response.get_nowait()
            if item[0] == "data":
                item[4].side.acknowledge(item[1], item[3])

    async def _upstream(self) -> Upstream:
        async with self.connecting:
            if self.upstream is None or self.upstream.side.closed:
                if self.upstream is not None:
                    self.upstream.close()
                self.upstream = await Upstream.open(self.proxy)
            return self.upstream

    async def _call(self, call: Call) -> None:
        """Apply this call's fault, or relay it; whatever goes wrong ends it with a status."""
        try:
            faults = self.proxy.faults
            if faults.latency_ms:
                await asyncio.sleep(faults.latency_ms / 1000)
            fault = faults.take()
            if fault == "reset":
                reset_connection(self.side.writer)
                return
            if fault == "blackhole":
                await asyncio.Event().wait()  # until the client gives up or goes away
            if fault:
                await self._drain_request(call)
                self._answer_fault(call, fault)
                return
            await self._open(call)
            while await self._pump_response(call):
                # Not processed: sent again once the stand-in has had time to free a stream.
                first, most = REPLAY_PAUSE
                await asyncio.sleep(min(most, first * 2**call.replays))
                call.replays += 1
                await self._open(call)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes the call's status
            log.warning("gRPC relay: call failed in the relay: %r", exc)
            self._fail(call, UNAVAILABLE, f"sandbox gRPC relay: {type(exc).__name__}")
        finally:
            if not call.done:
                self._forget(call)

    async def _drain_request(self, call: Call) -> None:
        """Read the request to its end (what the stand-in would have), window given back."""
        while (item := await call.request.get()) is not END:
            self.side.acknowledge(call.down_id, item[1])

    def _answer_fault(self, call: Call, fault: str) -> None:
        conn = self.side.conn
        if fault == "throttle":
            headers = trailers_only(RESOURCE_EXHAUSTED, "Quota exceeded (sandbox proxy)")
            conn.send_headers(call.down_id, headers, end_stream=True)
        elif fault == "error":
            headers = trailers_only(UNAVAILABLE, "The service is currently unavailable.")
            conn.send_headers(call.down_id, headers, end_stream=True)
        else:  # error-html: a load balancer that knows nothing of gRPC
            conn.send_headers(
                call.down_id,
                [
                    (b":status", b"503"),
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(HTML_503)).encode()),
                ],
            )
            conn.send_data(call.down_id, HTML_503, end_stream=True)
        call.answered = True
        self.side.flush()

    async def _open(self, call: Call) -> None:
        """A stream for the call upstream (a free one), and its request relayed to it."""
        for task in call.tasks[1:]:  # a request pump of a refused stream
            task.cancel()
        del call.tasks[1:]
        upstream = await self._upstream()
        try:
            await upstream.start(call)
        except ConnectionError:  # it closed (a GOAWAY) while the call waited for a stream
            upstream = await self._upstream()
            await upstream.start(call)
        call.tasks.append(asyncio.create_task(self._pump_request(call, upstream)))

    async def _pump_request(self, call: Call, upstream: Upstream) -> None:
        """What the client sent so far (again, after a refusal), then the rest as it comes."""
        stream_id = call.up_id
        assert stream_id is not None  # noqa: S101 - started before pumping
        try:
            for data in list(call.sent):
                await upstream.side.send(stream_id, data)
            while not call.ended:
                item = await call.request.get()
                if item is END:
                    call.ended = True
                    break
                data, size = item
                if call.sent_size + len(data) <= REPLAYABLE:
                    call.sent.append(data)
                call.sent_size += len(data)
                self.side.acknowledge(call.down_id, size)  # kept, or relayed at once
                await upstream.side.send(stream_id, data)
            upstream.side.conn.end_stream(stream_id)
            upstream.side.flush()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the response pump reports the failure
            # A refused stream's pump fails too (its stream is closed): tagged with that
            # stream, the response pump ignores it once the call has moved on.
            log.debug("gRPC relay: request relay failed: %r", exc)
            failed = ("fail", stream_id, UNAVAILABLE, f"relay: {type(exc).__name__}")
            call.response.put_nowait(failed)

    async def _pump_response(self, call: Call) -> bool:
        """The stand-in's answer to the client; True: the stream was not processed (refused,
        or above a GOAWAY's last stream id: HTTP/2 says it is safe to retry) and may be sent
        again (nothing answered yet, the request kept whole, within REPLAY_WITHIN)."""
        conn = self.side.conn
        while True:
            item = await call.response.get()
            what = item[0]
            if item[1] != call.up_id:  # left by a refused attempt (its pump's failure)
                if what == "data":
                    item[4].side.acknowledge(item[1], item[3])
                continue
            if what == "end":
                if not call.done:
                    with contextlib.suppress(H2Error):
                        conn.end_stream(call.down_id)
                    self.side.flush()
                return False
            if what == "headers":
                conn.send_headers(call.down_id, item[2])
                call.answered = True
                self.side.flush()
            elif what == "data":
                await self.side.send(call.down_id, item[2])
                item[4].side.acknowledge(item[1], item[3])
            elif what == "trailers":
                conn.send_headers(call.down_id, item[2], end_stream=True)
                self.side.flush()
                return False
            elif what == "reset":
                if item[2] == ErrorCodes.REFUSED_STREAM and self._may_replay(call):
                    return True
                conn.reset_stream(call.down_id, item[2])
                self.side.flush()
                return False
            else:  # "fail": the upstream connection went away under the call
                self._fail(call, item[2], f"sandbox gRPC relay: {item[3]}")
                return False

    @staticmethod
    def _may_replay(call: Call) -> bool:
        """Whether an unprocessed stream may be sent again: nothing of it reached the
        client, its request is kept whole, and its first refusal is recent enough."""
        if call.answered or call.sent_size > REPLAYABLE:
            return False
        now = asyncio.get_running_loop().time()
        if call.refused_at is None:
            call.refused_at = now
        return now - call.refused_at < REPLAY_WITHIN

    def _fail(self, call: Call, status: int, message: str) -> None:
        """End the call with a gRPC status (trailers, or trailers-only if nothing was sent)."""
        if call.done or self.side.closed:
            return
        conn = self.side.conn
        try:
            if call.answered:
                conn.send_headers(call.down_id, trailers_only(status, message)[2:], end_stream=True)
            else:
                conn.send_headers(call.down_id, trailers_only(status, message), end_stream=True)
        except H2Error:
            with contextlib.suppress(H2Error):
                conn.reset_stream(call.down_id, ErrorCodes.INTERNAL_ERROR)
        self.side.flush()


async def serve_h2(
    proxy: Proxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """One client connection to the relay, until it closes (or the proxy drops it)."""
    proxy.connections.add(writer)
    try:
        await Downstream(proxy, reader, writer).serve()
    finally:
        proxy.connections.discard(writer)
