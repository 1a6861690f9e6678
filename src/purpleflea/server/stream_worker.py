"""A stream worker process (``purpleflea serve --stream-workers N``, N > 1): writes the
WebSocket streams main hands it, from the batches main forwards.

Main accepts, authenticates, admits (caps, rate limits) and reads the subscription of every
client, then sends the connected socket here (:mod:`purpleflea.server.workers`). The worker
feeds every published batch, as main read it from the bus, into its own in-process bus and
:class:`~purpleflea.server.fanout.Fanout`, so each client gets exactly what it would get from
main: :func:`~purpleflea.server.feed.client_feed` (replay from the store, then live, no gap
and no duplicate), the same slow-consumer rule in bytes, heartbeats, batch frames and close
reasons. The WebSocket frames are written with websockets' sans-I/O protocol, built OPEN
(the handshake was main's). Every stream's end is reported to main, which keeps the caps.

Run by main only: ``python -m purpleflea.server.stream_worker CONTROL_FD BATCH_FD``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import sys
import time
from typing import Any

from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side, State

from purpleflea.bus.local import LocalBus
from purpleflea.formatting import log_printably
from purpleflea.server.fanout import Fanout
from purpleflea.server.feed import Item, client_feed, subscribed_seq
from purpleflea.server.heap import settle_startup_heap
from purpleflea.server.latency import StageLatency
from purpleflea.server.ratelimit import RateLimiter
from purpleflea.server.streaming import (
    _CLIENT_GONE,
    _PATIENT_S,
    _SEND_TIMEOUT_S,
    CLOSE_CODES,
    MAX_FRAMES_PER_S,
    PONG,
    InboundRate,
    Kick,
    _ender,
    _error,
    explain,
    fewer_pongs,
    is_ping,
    last_pong,
    pump,
    subscribed,
)
from purpleflea.server.worker_wire import (
    CONTROL_BYTES,
    HEADER,
    Closed,
    Open,
    Outbox,
    Ready,
    Settings,
    Written,
    decode_batch,
    decode_control,
    read_packets,
)
from purpleflea.server.worker_wire import Kick as KickMessage
from purpleflea.store.base import Store
from purpleflea.store.factory import open_store

log = logging.getLogger("purpleflea.stream_worker")

#: The largest client message (uvicorn_config's ws_max_size for main's WebSockets).
_MAX_CLIENT_MESSAGE = 65_536
#: Bytes a client's socket transport holds before the feed waits for it (the rest waits in
#: its queue, where the slow-consumer rule counts it, as uvicorn's own writes do in main).
_TRANSPORT_HIGH = 64 * 1024
#: How often the ``written`` latency goes to main.
_REPORT_S = 1.0
#: RFC 6455 5.2 headers of a final, unmasked text frame with a 16- and a 64-bit length.
_TEXT16 = struct.Struct("!BBH")
_TEXT64 = struct.Struct("!BBQ")


def text_frame(data: bytes) -> bytes:
    """``data`` as one final, unmasked WebSocket text frame: the bytes websockets' server
    side writes for ``send_text`` with no extension (these connections have none)."""
    size = len(data)
    if size < 126:
        return bytes((0x81, size)) + data
    if size < 1 << 16:
        return _TEXT16.pack(0x81, 126, size) + data
    return _TEXT64.pack(0x81, 127, size) + data


class ClientConnection(asyncio.Protocol):
    """One handed-off client socket speaking WebSocket, already OPEN."""

    def __init__(self, kick: Kick) -> None:
        self.kick = kick
        self.ws = Protocol(Side.SERVER, state=State.OPEN, max_size=_MAX_CLIENT_MESSAGE)
        self.transport: asyncio.Transport | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._inbound = InboundRate()
        #: Every frame, pings included (``MAX_FRAMES_PER_S``): pings never reach the count above.
        self._frames = InboundRate(MAX_FRAMES_PER_S)
        #: What the WebSocket layer wrote while reading (its pongs cut by ``fewer_pongs``).
        self._output: list[bytes] = []
        #: The pong of the latest ping read while the client was not taking what was written
        #: (``last_pong``): written once it takes it again.
        self._owed_pong: bytes | None = None
        #: The reason and the close are sent: wait for the client's close, read nothing else.
        self._closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=_TRANSPORT_HIGH)

    def connection_lost(self, exc: Exception | None) -> None:
        self._writable.set()
        self.kick(_CLIENT_GONE)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()
        owed, self._owed_pong = self._owed_pong, None
        transport = self.transport
        if owed is not None and not self._closing and transport and not transport.is_closing():
            transport.write(owed)

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data)
        events = self.ws.events_received()
        if self._closing:
            self.ws.data_to_send()  # pongs of a client that has been told to go: dropped
            if self.ws.close_rcvd is not None and self.transport is not None:
                self.transport.close()  # the client answered the close: the handshake is done
            return
        self._handle(events)

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self.kick(_CLIENT_GONE)
        return None

    def handle_texts(self, texts: list[str]) -> None:
        """Client messages read before the handoff (by main), handled as if read here."""
        for text in texts:
            if not self._message(text):
                return
        self._flush()

    def _message(self, text: str) -> bool:
        """One client message (binary: empty text); False once it floods."""
        if self._inbound.flooded():
            self.kick("flood")
            return False
        if is_ping(text):
            self.ws.send_text(PONG.encode())
        return True

    def _handle(self, events: list[Any]) -> None:
        if self._frames.flooded(sum(isinstance(event, Frame) for event in events)):
            self.ws.data_to_send()  # not a pong more
            self.kick("flood")
            return
        # One pong for the pings of this read; for a client not taking what it was sent, the
        # last one owed until it does (resume_writing).
        output, writable = self.ws.data_to_send(), self._writable.is_set()
        if not writable:
            self._owed_pong = last_pong(output) or self._owed_pong
        self._output = fewer_pongs(output, writable=writable)
        for frame in events:
            if not isinstance(frame, Frame) or frame.opcode not in (Opcode.TEXT, Opcode.BINARY):
                continue  # pings are answered by the protocol itself, close frames below
            text = bytes(frame.data).decode(errors="replace") if frame.opcode is Opcode.TEXT else ""
            if not self._message(text):
                return
        self._flush()
        if self.ws.state is not State.OPEN or self.ws.parser_exc is not None:
            self.kick(_CLIENT_GONE)  # the client closed (answered above) or broke the protocol

    def _flush(self) -> None:
        output, self._output = [*self._output, *self.ws.data_to_send()], []
        if self.transport is not None and not self.transport.is_closing():
            for chunk in output:
                if chunk:
                    self.transport.write(chunk)

    async def send_text(self, text: bytes) -> None:
        await self._writable.wait()
        if self.ws.state is not State.OPEN or self.transport is None:
            raise ConnectionResetError("the client's connection is closed")
        # Framed here rather than by websockets' send_text, whose Frame object, serializer
        # and write list cost ~3 us a frame (a quarter of a delivery on this path). What the
        # protocol writes itself (pongs, the close) it flushes at once, so order holds.
        if not self.transport.is_closing():
            self.transport.write(text_frame(text))

    def last_words(self, code: str, message: str, patient: bool) -> None:
        """The error frame and the close; the socket closes once the client answers the close
        (or after ``_SEND_TIMEOUT_S`` without an answer) and is cut after ``_PATIENT_S``, or
        twice ``_SEND_TIMEOUT_S``, if the client reads nothing."""
        if self.ws.state is State.OPEN:
            self.ws.send_text(_error(code, message).encode())
            self.ws.send_close(CLOSE_CODES.get(code, 1000), code)
        self._flush()
        if self.transport is None:
            return
        # RFC 6455 7.1.1: the server closes TCP once the client has answered the close. Closed
        # any earlier, a client still sending (a flood, pings) makes the kernel reset the
        # connection, which can destroy the reason and the close before the client reads them.
        self._closing = True
        if self.ws.close_rcvd is not None:
            self.transport.close()
        loop = asyncio.get_running_loop()
        loop.call_later(_SEND_TIMEOUT_S, self.transport.close)  # a client that never answers
        loop.call_later(_PATIENT_S if patient else _SEND_TIMEOUT_S * 2, self.transport.abort)

    def drop(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class Worker:
    """The worker's state: its bus and fan-out, its streams, and its two sockets to main."""

    def __init__(self, control: socket.socket, batches: socket.socket, settings: Settings) -> None:
        self.control = control
        #: What goes to main (close reports, latency), in order and never dropped.
        self.outbox = Outbox(control)
        self.batches = batches
        self.settings = settings
        self.bus = LocalBus()
        self.fanout = Fanout(self.bus, heartbeat_s=settings.heartbeat_s)
        self.latency = StageLatency()
        self.last_seq = settings.last_seq
        self.store: Store | None = None
        self.kicks: dict[int, Kick] = {}
        self.messages: dict[int, str] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.stopping = False
        #: Replays' pages per account (main's rate limit, counted in this worker).
        self.replays = RateLimiter(settings.rate_per_s, settings.rate_burst)

    async def run(self) -> None:
        self.store = await open_store(self.settings.store, read_only=True)
        self.fanout.start()
        self.outbox.send(Ready())
        reader, _ = await asyncio.open_unix_connection(sock=self.batches)
        feed = asyncio.create_task(self._read_batches(reader))
        reports = asyncio.create_task(self._report_latency())
        try:
            # Until main closes the control socket: then stop.
            await read_packets(self.control, self._on_control, max_fds=1)
        finally:
            self.stopping = True
            feed.cancel()
            reports.cancel()
            for kick in tuple(self.kicks.values()):
                kick("server_shutdown")
            if self.tasks:
                await asyncio.wait(self.tasks, timeout=1.0)
            await self.fanout.stop()
            await self.store.close()

    async def _read_batches(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                header = await reader.readexactly(HEADER.size)
                body = await reader.readexactly(HEADER.unpack(header)[0])
            except asyncio.IncompleteReadError:
                return  # main is gone; the control socket says so too
            for message in decode_batch(body):
                self.last_seq = max(self.last_seq, message.seq)
                self.bus.publish_now(message)

    def _on_control(self, data: bytes, fds: list[int]) -> None:
        message = decode_control(data)
        if isinstance(message, Open) and fds:
            sock = socket.socket(fileno=fds[0])
            # Registered now, not when its task starts: a kick may be in this same read.
            ended, kick = _ender()
            self.kicks[message.id] = kick
            task = asyncio.create_task(self._stream(message, sock, ended, kick))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            return
        for fd in fds:
            os.close(fd)
        if isinstance(message, KickMessage):
            stream_kick = self.kicks.get(message.id)
            if stream_kick is not None:
                self.messages[message.id] = message.message
                stream_kick(message.reason)

    async def _report_latency(self) -> None:
        while True:
            await asyncio.sleep(_REPORT_S)
            counts, total = self.latency.take("written")
            if any(counts):
                self.outbox.send(Written(counts, total))

    def _report(self, stream_id: int, reason: str) -> None:
        self.outbox.send(Closed(stream_id, reason))

    async def _stream(
        self, opened: Open, sock: socket.socket, ended: asyncio.Future[str], kick: Kick
    ) -> None:
        why = "internal_error"
        try:
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            _, connection = await loop.connect_accepted_socket(
                lambda: ClientConnection(kick), sock=sock
            )
            why = await self._pump(opened, connection, ended, kick)
            patient = why == "slow_consumer" or self.stopping
            if why in CLOSE_CODES:
                message = self.messages.get(opened.id) or explain(why, self.settings.buffer_bytes)
                connection.last_words(why, message, patient)
            else:
                connection.drop()
        except Exception:
            log.exception("stream %d failed on its worker", opened.id)
            sock.close()
        finally:
            self.kicks.pop(opened.id, None)
            self.messages.pop(opened.id, None)
            self._report(opened.id, why)

    async def _pump(
        self, opened: Open, connection: ClientConnection, ended: asyncio.Future[str], kick: Kick
    ) -> str:
        """Stream to ``connection`` until something ends it; returns why."""
        assert self.store is not None
        subscription = self.fanout.subscribe(self.settings.buffer_bytes)
        start_seq = self.last_seq  # every batch after it reaches the queue just registered
        feed = client_feed(
            self.store,
            subscription,
            opened.wanted,
            start_seq=start_seq,
            batch=opened.batch,
            pace=lambda: self.replays.take(opened.account),
            opened_seq=opened.opened_seq,
        )
        # Main counted it open at opened_seq; this worker may have read batches past it since.
        from_seq = subscribed_seq(opened.wanted, start_seq, opened.opened_seq)

        async def send_all() -> None:
            await connection.send_text(subscribed(from_seq, opened.wanted, opened.batch))
            connection.handle_texts(opened.pending)
            async for item in feed:
                await connection.send_text(item.data)
                self._written(item)

        return await pump(ended, kick, subscription, send_all())

    def _written(self, item: Item) -> None:
        if item.published:
            self.latency.observe("written", time.monotonic() - item.published, item.events)


async def _main(control_fd: int, batch_fd: int) -> None:
    control = socket.socket(fileno=control_fd)
    batches = socket.socket(fileno=batch_fd)
    control.setblocking(False)
    loop = asyncio.get_running_loop()
    # The first message is the settings: wait for it like any other.
    ready = asyncio.Event()
    loop.add_reader(control_fd, ready.set)
    await ready.wait()
    loop.remove_reader(control_fd)
    settings = decode_control(control.recv(CONTROL_BYTES))
    if not isinstance(settings, Settings):
        raise SystemExit(f"stream worker: the first message must be the settings, got {settings}")
    settle_startup_heap()  # the worker's pauses are its clients' latency (server/heap.py)
    await Worker(control, batches, settings).run()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        raise SystemExit("usage: python -m purpleflea.server.stream_worker CONTROL_FD BATCH_FD")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    log_printably()
    # SIGTERM/SIGINT go to the whole process group: main ends the streams, this one waits
    # for main to close the control socket.
    import signal  # noqa: PLC0415

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    asyncio.run(_main(int(argv[0]), int(argv[1])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
