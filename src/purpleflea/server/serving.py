"""Running the app under uvicorn: our settings, and a shutdown that ends streams first.

uvicorn's own graceful shutdown closes WebSockets with 1012 and no reason, and waits without
limit for responses in progress: an SSE client that stops reading held it for 40 s and more.
:class:`TrackerServer` ends every stream with ``server_shutdown`` (WebSocket close 1001, an
SSE error event) before uvicorn closes connections, aborts the connections of clients that
take nothing, and bounds uvicorn's wait, so SIGTERM exits within seconds whatever clients
do.
"""

from __future__ import annotations

import asyncio
import logging
import select
import socket
import time
from typing import Any

import h11
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame

from purpleflea.server.config import ServerConfig
from purpleflea.server.conncap import ConnectionCap
from purpleflea.server.streaming import (
    CLOSE_CODES,
    MAX_FRAGMENTS,
    MAX_FRAMES_PER_S,
    InboundRate,
    Streams,
    fewer_pongs,
    frame_flood_error,
    last_pong,
)

#: How long streams have to tell their clients before the connections of those that took
#: nothing are aborted.
STREAMS_GRACE_S = 1.5
#: How long uvicorn then waits for connections to finish before it cancels what is left (a
#: REST response in flight, say): the bound on shutdown whatever else happens.
CONNECTIONS_GRACE_S = 2
#: Seconds a connection has to send a request's headers, from when it opens or its previous
#: response ended. uvicorn has no such bound (its keep-alive timer is cancelled by any byte),
#: so connections that never finish a request held their file descriptors forever: 19,990 of
#: them, from one address and with no key, filled the server's 20,000 and nobody else got in.
HEADER_TIMEOUT_S = 10.0
#: Seconds a client may take none of a REST answer still waiting in the server's buffer before
#: its connection is aborted. Nothing bounded it: 30 unread answers of a week's per-minute
#: aggregate (3.4 MB each, 36 requests of the rate limit) grew the server by 85 MB and held
#: their descriptors and buffers 2-3 minutes (until the kernel's TCP_USER_TIMEOUT gave up;
#: the header deadline's close waits for the buffer to drain); now 20 s.
DRAIN_TIMEOUT_S = 20.0

#: A refused connection is half-closed after its 503 and kept this long to read (and drop) the
#: request its client sends, then closed. Closed at once with that request unread, the kernel
#: answered it with a reset, and a client that read the reset first never saw the 503 (asyncio
#: streams raise ConnectionResetError with the answer in their buffer): a flooded server
#: looked dead, not full.
REFUSAL_LINGER_S = 1.0
#: Refused connections kept so at once; past it one is closed at once (it costs a descriptor
#: apiece, which the process-wide cap's reserve holds).
LINGERING_REFUSALS = 64


#: How long a client cut for a frame flood has to read why before its connection closes.
FLOOD_LINGER_S = 1.0

#: uvicorn's warnings about a request's own faults, by the kind ``/v1/metrics`` counts them
#: under. uvicorn logged each one, a line per request, for anyone and without a key: one
#: client sending ``Upgrade: h2c`` on a keep-alive connection wrote 2,000 lines in 4.6 s, and
#: each malformed request one more (a log file or journal filled at the attacker's pace, and
#: a journal's rate limit then dropped the server's own lines). They are counted, and logged
#: at most once per :data:`CLIENT_NOISE_LOG_S` with how many came since the last line.
CLIENT_NOISE = {
    "Invalid HTTP request received.": "invalid_request",
    "Unsupported upgrade request.": "unsupported_upgrade",
    "Too many header lines.": "headers_too_many",
}
#: Lines a request's head may have (its request line and headers; a browser sends ~20). h11
#: parses each header line (~1.7 us here): 3,000 short headers, sent in one write, cost
#: 5.2 ms of server CPU a request without a key, where a plain ``GET /v1/health`` costs 0.2
#: (h11's own 16 KiB bound holds only a head that arrives in pieces).
MAX_HEAD_LINES = 100
_HEAD_TOO_LONG = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
)
CLIENT_NOISE_LOG_S = 60.0


class _ClientNoiseLog(logging.LoggerAdapter[logging.Logger]):
    """uvicorn's ``uvicorn.error`` logger for one connection, counting the warnings of
    :data:`CLIENT_NOISE` on the server's :class:`ConnectionCap` and letting one through per
    :data:`CLIENT_NOISE_LOG_S`, server-wide; every other line passes unchanged."""

    def __init__(self, logger: logging.Logger, cap: ConnectionCap) -> None:
        super().__init__(logger, {})
        self.cap = cap

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        kind = CLIENT_NOISE.get(msg) if isinstance(msg, str) else None
        if kind is None:
            super().log(level, msg, *args, **kwargs)
            return
        cap = self.cap
        cap.client_errors[kind] = cap.client_errors.get(kind, 0) + 1
        cap.noise_unlogged += 1
        now = time.monotonic()
        if now - cap.noise_logged_at < CLIENT_NOISE_LOG_S:
            return
        count, cap.noise_unlogged, cap.noise_logged_at = cap.noise_unlogged, 0, now
        super().log(
            level,
            "%s (%d such request(s) since the last of these lines; each kind is counted in "
            "/v1/metrics as purpleflea_http_client_errors_total, logged at most once a minute)",
            msg,
            count,
        )

    @property
    def level(self) -> int:  # uvicorn reads it before its trace lines
        return self.logger.level


class _CappedWebSocket(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, freeing the per-address slot its connection took as
    HTTP (:class:`_H11WithHeaderTimeout` hands it over on the upgrade) when it closes, and
    bounding the frames the application never sees (``streaming.MAX_FRAMES_PER_S``): a
    client past :data:`~purpleflea.server.streaming.MAX_FRAMES_PER_S` frames a second or
    :data:`~purpleflea.server.streaming.MAX_FRAGMENTS` parts in one message is told
    ``flood`` (4429), read no more and closed; and pings are not answered while the client
    is not taking what was written to it."""

    cap: ConnectionCap
    slot = ""
    _frames: InboundRate | None = None
    _parts = 0
    _flooded = False
    #: The pong of the latest ping read while the client was not taking what was written.
    _owed_pong: bytes | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        slot, self.slot = self.slot, ""
        self.cap.release(slot)
        super().connection_lost(exc)

    def _over(self, event: Frame | None = None, *, first: bool = False) -> bool:
        """Count one frame (``event``: a data frame, the ``first`` of its message or a
        continuation, whose parts are counted too); True when the connection is cut for a
        flood (now or before)."""
        if self._flooded:
            return True
        if self._frames is None:
            self._frames = InboundRate(MAX_FRAMES_PER_S)
        if event is not None:
            self._parts = 0 if event.fin else (1 if first else self._parts + 1)
        if self._frames.flooded() or self._parts >= MAX_FRAGMENTS:
            self._cut_for_flood()
        return self._flooded

    def _cut_for_flood(self) -> None:
        """Tell the client why, close, stop reading, and end the application's side: every
        further frame would cost a parse (and a ping a pong) until the close."""
        self._flooded = True
        self.cap.flooded += 1
        self.frames = []  # the parts of the message that never ended
        if not self.close_sent and not self.transport.is_closing():
            self.conn.send_text(frame_flood_error())
            self.conn.send_close(CLOSE_CODES["flood"], "flood")
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
            self.queue.put_nowait({"type": "websocket.disconnect", "code": 4429, "reason": "flood"})
        self.transport.pause_reading()
        if self.close_timer is not None:
            self.close_timer.cancel()
        self.close_timer = self.loop.call_later(FLOOD_LINGER_S, self.transport.close)

    def handle_text(self, event: Frame) -> None:
        if not self._over(event, first=True):
            super().handle_text(event)

    def handle_bytes(self, event: Frame) -> None:
        if not self._over(event, first=True):
            super().handle_bytes(event)

    def handle_cont(self, event: Frame) -> None:
        if not self._over(event):
            super().handle_cont(event)

    def handle_pong(self, event: Frame) -> None:
        if not self._over():
            super().handle_pong(event)

    def handle_ping(self) -> None:
        # The WebSocket layer queued a pong for every ping of this read: the first ping's
        # turn writes the last of them (none past the flood; for a client that is not taking
        # what it was sent, whose pongs waited in this process's memory, the last is owed
        # and written when it takes what waits: resume_writing).
        output = self.conn.data_to_send()
        if not self._over():
            writable = self.writable.is_set()
            if not writable:
                self._owed_pong = last_pong(output) or self._owed_pong
            self.transport.write(b"".join(fewer_pongs(output, writable=writable)))

    def resume_writing(self) -> None:
        super().resume_writing()
        owed, self._owed_pong = self._owed_pong, None
        if owed is not None and not self._flooded and not self.transport.is_closing():
            self.transport.write(owed)


class _H11WithHeaderTimeout(H11Protocol):
    """uvicorn's h11 protocol, refusing a connection past its address's cap (before anything
    is read) and closing one that has not sent a request's headers within
    :data:`HEADER_TIMEOUT_S` (a request in progress or a WebSocket is left alone)."""

    cap: ConnectionCap
    _header_timer: asyncio.TimerHandle | None = None
    #: The slot this connection is counted under ("": not counted), None once refused.
    _slot: str | None = ""
    #: A refused connection's close, while it is kept to read its request.
    _lingering: asyncio.TimerHandle | None = None
    #: The next check that the client takes what is buffered for it (:meth:`_await_drain`).
    _drain_timer: asyncio.TimerHandle | None = None
    #: Whether line breaks arrived since the head in the buffer was last judged.
    _new_lines = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger = _ClientNoiseLog(self.logger, self.cap)  # type: ignore[assignment]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # First, before uvicorn's own bookkeeping: a refusal costs one write and a close.
        admitted = self.cap.admit(transport.get_extra_info("peername"))
        if isinstance(admitted, bytes):
            self._slot = None
            self.transport = transport
            transport.write(admitted)
            if self.cap.lingering < LINGERING_REFUSALS and transport.can_write_eof():
                self.cap.lingering += 1
                self._lingering = self.loop.call_later(REFUSAL_LINGER_S, transport.close)
                try:
                    transport.write_eof()
                except OSError:  # the client left already: its kernel reset the connection
                    transport.close()
            else:
                transport.close()
            return
        self._slot = admitted
        super().connection_made(transport)
        self._await_headers()

    def on_response_complete(self) -> None:
        self._new_lines = True  # a pipelined head may wait in the buffer: judged next
        super().on_response_complete()
        self._await_headers()
        self._await_drain(-1)

    def handle_events(self) -> None:
        # Every head is judged here before h11 parses it: the first of what arrived, and a
        # pipelined one when the response before it completes. Only when lines came since
        # the last look: a head trickled a byte at a time is judged once a line, not a byte.
        if self._new_lines and self.conn.their_state is h11.IDLE:
            self._new_lines = False
            if self._head_too_long():
                return
        super().handle_events()

    def _head_too_long(self) -> bool:
        """Refuse (431, closed) a request whose head has more than :data:`MAX_HEAD_LINES`
        lines, before h11 parses them; counted as ``headers_too_many``."""
        data, _ = self.conn.trailing_data
        end = data.find(b"\r\n\r\n")
        # Up to the last header line's own break (end + 2): its line counts as the others.
        lines = data.count(b"\n", 0, end + 2 if end >= 0 else len(data))
        if lines <= MAX_HEAD_LINES:
            return False
        if self.transport.is_closing():
            return True
        self.logger.warning("Too many header lines.")
        body = (
            b'{"error":{"code":"headers_too_large","message":"more than %d lines in the '
            b'request head"}}' % MAX_HEAD_LINES
        )
        self.transport.write(_HEAD_TOO_LONG % (len(body), body))
        self.transport.close()
        return True

    def _await_drain(self, before: int) -> None:
        """Abort the connection when its client took none of the answer still buffered for it
        in :data:`DRAIN_TIMEOUT_S` (checked again as long as it takes some)."""
        # One check at a time: the newest answer's covers all that is buffered. An older
        # answer's check, left running, compared the buffer holding the next answer with
        # what the older one had left, and aborted a keep-alive client that read slowly but
        # steadily (a second large answer asked for after the first took over 20 s).
        self._stop_drain_check()
        transport = self.transport
        left = transport.get_write_buffer_size()
        if left == 0:
            return
        if 0 <= before <= left:
            self.cap.stalled += 1
            transport.abort()
            return
        self._drain_timer = self.loop.call_later(DRAIN_TIMEOUT_S, self._await_drain, left)

    def _stop_drain_check(self) -> None:
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._stop_waiting()
        slot, self._slot = self._slot, ""
        super().handle_websocket_upgrade(event)
        upgraded = self.transport.get_protocol()
        if isinstance(upgraded, _CappedWebSocket):
            upgraded.slot = slot or ""
        else:  # no WebSocket took the connection: nothing else would free its slot
            self.cap.release(slot or "")

    def data_received(self, data: bytes) -> None:
        if self._slot is None:  # refused: what it sends is read only to be dropped
            return
        if b"\n" in data:
            self._new_lines = True
        super().data_received(data)

    def eof_received(self) -> None:
        if self._slot is None:  # refused, and its client has read the 503 and closed
            self.transport.close()
            return
        super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._slot is None:  # refused: uvicorn never saw this connection
            if self._lingering is not None:
                self._lingering.cancel()
                self._lingering = None
                self.cap.lingering -= 1
            return
        slot, self._slot = self._slot, ""
        self.cap.release(slot)
        self._stop_waiting()
        self._stop_drain_check()
        super().connection_lost(exc)
        # uvicorn cancels its keep-alive timer only for a connection closed cleanly: after a
        # reset it fired 5 s later on the closed socket (``_bytes_waiting`` raised on its
        # descriptor, -1: a traceback in the log per reset connection, for anyone).
        self._unset_keepalive_if_required()

    def _await_headers(self) -> None:
        self._stop_waiting()
        if not self.transport.is_closing():
            self._header_timer = self.loop.call_later(
                HEADER_TIMEOUT_S, self._headers_late, self.cycle
            )

    def _stop_waiting(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self, cycle: RequestResponseCycle | None, looked: bool = False) -> None:
        """Close the connection when no request began since the timer was set (the cycle is
        the same, and done); a pipelined request already in progress then is left alone.
        Bytes already waiting in the socket are read first (one turn of the loop), once."""
        self._header_timer = None
        if self.cycle is not cycle or (cycle is not None and not cycle.response_complete):
            return
        if not looked and self._bytes_waiting():
            self._header_timer = self.loop.call_later(0, self._headers_late, cycle, True)
            return
        self.transport.close()

    def timeout_keep_alive_handler(self) -> None:
        """uvicorn's keep-alive close, unless the next request is already in the socket.

        The timer and the read of a request that came just before it can fall due in one turn
        of the loop, the timer first: the connection was closed with the request unread, and
        its client saw "Server disconnected without sending a response" (a loaded server's
        turns last long; 4 of 4 runs of a /v1/metrics flood under CPU burners). The header
        deadline still bounds a connection spared here."""
        if not self.transport.is_closing() and not self._bytes_waiting():
            super().timeout_keep_alive_handler()

    def _bytes_waiting(self) -> bool:
        """Whether the client's socket holds bytes not read yet (or its end of stream)."""
        sock = self.transport.get_extra_info("socket")
        if sock is None or sock.fileno() < 0:  # closed: nothing more will be read
            return False
        poller = select.poll()  # not select.select: descriptors above 1024 are common here
        poller.register(sock.fileno(), select.POLLIN)
        return bool(poller.poll(0))


def uvicorn_config(
    app: ASGIApp, config: ServerConfig, connections: ConnectionCap, *, log_level: str = "warning"
) -> uvicorn.Config:
    """The settings ``purpleflea serve`` (and the tests' in-process servers) run with: no
    access log (ours redacts keys), ``connections`` capping each client address's open
    connections (the server's, whose metrics count the refusals), a deadline for request
    headers, small WebSocket frames,
    a bounded graceful shutdown, and proxy headers believed only from
    ``config.trusted_proxies`` (uvicorn's own default trusts loopback, which let any local
    process pick its client address)."""
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        # Classes made for this cap: uvicorn builds protocols from a class and its own config.
        http=type("CappedH11", (_H11WithHeaderTimeout,), {"cap": connections}),
        ws_max_size=65_536,
        # Compression would cost a deflate per client per message on fan-out, and it hides a
        # stalled client behind a tiny kernel queue: off.
        ws_per_message_deflate=False,
        # Pinned to uvicorn's websockets-sansio implementation (subclassed above): stream
        # workers (workers.py) take the socket from under it.
        ws=type("CappedWebSocket", (_CappedWebSocket,), {"cap": connections}),
        lifespan="on",
        timeout_graceful_shutdown=CONNECTIONS_GRACE_S,
        proxy_headers=bool(config.trusted_proxies),
        forwarded_allow_ips=list(config.trusted_proxies),
    )


class TrackerServer(uvicorn.Server):
    """A uvicorn server that ends the app's streams before its own shutdown."""

    def __init__(self, config: uvicorn.Config, streams: Streams) -> None:
        super().__init__(config)
        self.streams = streams

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.streams.shut_down(STREAMS_GRACE_S)
        self.drop_stalled()
        await super().shutdown(sockets)

    def drop_stalled(self) -> int:
        """Abort the connections whose client is not taking what was sent (bytes still wait in
        their transport after the streams' grace): a graceful close would wait for those bytes
        forever, and a write blocked on them ends only when the connection is gone."""
        dropped = 0
        for connection in list(self.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None and transport.get_write_buffer_size() > 0:
                transport.abort()
                dropped += 1
        return dropped
