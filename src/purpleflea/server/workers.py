"""Stream workers in several processes on one port (``purpleflea serve --stream-workers N``).

One event loop writes every delivery of the main process: at ~1.4 µs of CPU per delivery,
fan-out is bound to one core. With N > 1, main keeps everything that decides who may stream
and when a stream ends (authentication, per-account caps and open rates, ``since_seq``
checks, revocation, shutdown, SSE streams) and hands each admitted WebSocket, after its
handshake and subscribe message, to one of N worker processes
(:mod:`purpleflea.server.stream_worker`) with ``SCM_RIGHTS``. Each worker gets every chunk
main's fan-out reads from the bus once, over its batch socket, and writes its clients' frames
itself; it reports every stream's end, which is when main releases the account's slot.

Client messages main had already read when it hands a socket over (a ping sent right after
the subscribe message) go along with it; a client frame main had read only part of would be
lost, and the worker would see the rest as a protocol error and drop the connection (clients
send a few small frames, after the subscribe message's reply, so this is not expected).

A worker that cannot keep up with the batches (more than ``_FORWARD_BUFFER_BYTES`` waiting
for it) would leave a gap in its streams: all of them are closed as slow consumers at once,
and no stream is handed to it again. With no worker left, main streams in-process as with
N = 1. A worker that dies ends its streams with ``internal_error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import subprocess
import sys
from typing import Any

from starlette.websockets import WebSocket

from purpleflea.server.conncap import ConnectionCap
from purpleflea.server.fanout import Chunk, ClientQueue, Fanout
from purpleflea.server.filters import StreamFilter
from purpleflea.server.latency import StageLatency
from purpleflea.server.worker_wire import (
    Closed,
    Kick,
    Open,
    Outbox,
    Ready,
    Settings,
    Written,
    decode_control,
    encode_batch,
    encode_control,
    read_packets,
)

log = logging.getLogger("purpleflea.workers")

#: Bytes of chunks waiting for one worker before its streams are cut (a stalled process).
_FORWARD_BUFFER_BYTES = 256 * 1024 * 1024
#: How long the handshake response may take to leave main's transport before the handoff.
_FLUSH_TIMEOUT_S = 1.0
#: How long the workers have to start (import, open the store) before the server gives up.
_START_TIMEOUT_S = 60.0
#: How long a worker has to exit once told to stop, before it is killed.
_STOP_TIMEOUT_S = 1.5


class HandoffError(Exception):
    """The connection could not be handed to a worker (main then streams it itself)."""


class StreamWorker:
    """Main's end of one worker process: its sockets, its forwarder and its open streams."""

    def __init__(self, index: int, settings: Settings, latency: StageLatency) -> None:
        self.index = index
        self.settings = settings
        self.latency = latency
        self.control, worker_control = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.batches, worker_batches = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.control.setblocking(False)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "purpleflea.server.stream_worker",
                str(worker_control.fileno()),
                str(worker_batches.fileno()),
            ],
            pass_fds=(worker_control.fileno(), worker_batches.fileno()),
            stdin=subprocess.DEVNULL,
        )
        worker_control.close()
        worker_batches.close()
        self.control.send(encode_control(settings))
        #: Open streams: id -> the future their end is reported on.
        self.streams: dict[int, asyncio.Future[str]] = {}
        self.healthy = True
        #: Set when the worker says it takes streams (an exception if it died first).
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outbox = Outbox(self.control)
        self.queue: ClientQueue | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, fanout: Fanout) -> None:
        self.queue = fanout.subscribe(_FORWARD_BUFFER_BYTES)
        self._tasks = [
            asyncio.create_task(self._forward(self.queue), name=f"stream-worker-{self.index}"),
            asyncio.create_task(self._read_control(), name=f"stream-worker-{self.index}-ctl"),
        ]

    async def _forward(self, queue: ClientQueue) -> None:
        _, writer = await asyncio.open_unix_connection(sock=self.batches)
        try:
            while True:
                chunks = [await queue.next(), *queue.drain()]
                writer.write(b"".join(_wire(chunk) for chunk in chunks))
                await writer.drain()
        except Exception as exc:  # the queue closed (a stalled worker) or the worker is gone
            reason = getattr(exc, "reason", repr(exc))
            if reason.startswith("server shutting down"):
                return
            log.error("stream worker %d lost its batches (%s): its streams end", self.index, reason)
            self.healthy = False
            for stream_id in tuple(self.streams):
                self.kick(stream_id, "slow_consumer", _CUT)
        finally:
            queue.close("stream worker stopped")  # main's fan-out holds nothing more for it
            writer.close()

    async def _read_control(self) -> None:
        await read_packets(self.control, self._on_control)
        self._lost()

    def _on_control(self, data: bytes, fds: list[int]) -> None:
        message = decode_control(data)
        if isinstance(message, Ready):
            if not self.ready.done():
                self.ready.set_result(None)
        elif isinstance(message, Written):
            self.latency.add("written", message.counts, message.total)
        elif isinstance(message, Closed):
            done = self.streams.pop(message.id, None)
            if done is not None and not done.done():
                done.set_result(message.reason)

    def _lost(self) -> None:
        if self.healthy:
            log.error("stream worker %d exited (%s)", self.index, self.process.poll())
        self.healthy = False
        if not self.ready.done():
            self.ready.set_exception(
                RuntimeError(
                    f"stream worker {self.index} exited before it was ready "
                    f"(exit status {self.process.poll()}; its error is in the log above)"
                )
            )
        for done in self.streams.values():
            if not done.done():
                done.set_result("internal_error")
        self.streams.clear()

    def hand_off(
        self,
        stream_id: int,
        sock: socket.socket,
        wanted: StreamFilter,
        batch: int,
        pending: list[str],
        account: str,
        opened_seq: int | None = None,
    ) -> asyncio.Future[str]:
        """Send the socket; returns the future the stream's end will be reported on."""
        message = encode_control(Open(stream_id, wanted, batch, pending, account, opened_seq))
        if self._outbox.waiting:  # kicks still waiting go first; this stream stays in main
            raise HandoffError(f"stream worker {self.index} is not taking control messages")
        try:
            socket.send_fds(self.control, [message], [sock.fileno()])
        except OSError as exc:
            raise HandoffError(f"stream worker {self.index}: {exc}") from exc
        closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.streams[stream_id] = closed
        return closed

    def kick(self, stream_id: int, reason: str, message: str) -> None:
        self._outbox.send(Kick(stream_id, reason, message))

    async def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.control.shutdown(socket.SHUT_RDWR)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.queue is not None:
            self.queue.close("server shutting down")
        self._outbox.close()
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.run_in_executor(None, self.process.wait), _STOP_TIMEOUT_S)
        except TimeoutError:
            self.process.kill()
            await loop.run_in_executor(None, self.process.wait)
        self.control.close()
        self.batches.close()


_CUT = (
    "slow consumer: the stream worker serving this client fell behind the feed; reconnect "
    "with since_seq to resume"
)


def _wire(chunk: Chunk) -> bytes:
    """A chunk's batch-socket bytes, encoded once for every worker."""
    if chunk.wire is None:
        chunk.wire = encode_batch(chunk.messages)
    return chunk.wire


class WorkerPool:
    """The N stream worker processes of one server."""

    def __init__(self, count: int, settings: Settings, latency: StageLatency) -> None:
        if count < 2:
            raise ValueError(f"a worker pool needs at least 2 workers, got {count}")
        self.count = count
        self.settings = settings
        #: The node's stage latency: the workers' ``written`` figures are added to it.
        self.latency = latency
        self.workers: list[StreamWorker] = []
        self._ids = itertools.count(1)

    async def start(self, fanout: Fanout) -> None:
        """Spawn the workers, feed them every chunk ``fanout`` reads from now on, and wait
        until each takes streams (a server whose workers cannot start does not start)."""
        self.workers = [StreamWorker(i, self.settings, self.latency) for i in range(self.count)]
        for worker in self.workers:
            worker.start(fanout)
        try:
            async with asyncio.timeout(_START_TIMEOUT_S):
                await asyncio.gather(*(worker.ready for worker in self.workers))
        except TimeoutError:
            await self.stop()
            raise RuntimeError(
                f"the {self.count} stream workers did not start within {_START_TIMEOUT_S:g} s"
            ) from None
        except RuntimeError:
            await self.stop()
            raise

    async def stop(self) -> None:
        await asyncio.gather(*(worker.stop() for worker in self.workers))
        self.workers = []

    @property
    def available(self) -> bool:
        return any(worker.healthy for worker in self.workers)

    def streams(self) -> dict[int, int]:
        """Open streams per worker (index -> count)."""
        return {worker.index: len(worker.streams) for worker in self.workers}

    def health(self) -> dict[str, Any]:
        """``/v1/health``'s ``stream_workers``: how many still take streams, and each one's
        open streams (a lost worker's streams moved nowhere: they ended)."""
        return {
            "running": sum(worker.healthy for worker in self.workers),
            "streams": [len(worker.streams) for worker in self.workers],
        }

    async def hand_off(
        self,
        ws: WebSocket,
        wanted: StreamFilter,
        batch: int,
        account: str,
        opened_seq: int | None = None,
    ) -> tuple[StreamWorker, int, asyncio.Future[str]]:
        """Give ``ws`` (accepted, nothing sent after the handshake) to the least busy worker;
        from then on main neither reads nor writes it. ``opened_seq``: main's live seq when
        it counted the stream open (the worker goes on from it, as main would). Returns the
        worker, the stream id and the future its end is reported on."""
        healthy = [worker for worker in self.workers if worker.healthy]
        if not healthy:
            raise HandoffError("no stream worker is running")
        worker = min(healthy, key=lambda w: len(w.streams))
        protocol, transport = _connection_of(ws)
        # Anything main still buffers would be lost with its transport: let it leave first.
        async with asyncio.timeout(_FLUSH_TIMEOUT_S):
            while transport.get_write_buffer_size():
                await asyncio.sleep(0.005)
        sock = transport.get_extra_info("socket")
        if sock is None:
            raise HandoffError("the connection has no socket to hand over")
        stream_id = next(self._ids)
        duplicate = socket.socket(fileno=os.dup(sock.fileno()))
        try:
            closed = worker.hand_off(
                stream_id, duplicate, wanted, batch, _pending(protocol), account, opened_seq
            )
        finally:
            duplicate.close()
        # The connection keeps its per-address slot (conncap) until the worker reports its end:
        # freed at the abort below, one address could hold any number of handed-off streams.
        cap, slot = getattr(protocol, "cap", None), getattr(protocol, "slot", "")
        if isinstance(cap, ConnectionCap) and slot:
            protocol.slot = ""
            closed.add_done_callback(lambda _: cap.release(slot))
        # Main's copy goes without a word on the wire (closing one descriptor of a socket that
        # another process holds sends nothing); uvicorn forgets the connection.
        stop_keepalive = getattr(protocol, "stop_keepalive", None)
        if callable(stop_keepalive):
            stop_keepalive()
        transport.abort()
        return worker, stream_id, closed


def _pending(protocol: Any) -> list[str]:
    """The client messages uvicorn has read and the app has not (binary ones as empty text:
    the worker counts them against the flood limit and ignores them, as main does)."""
    queue = getattr(protocol, "queue", None)
    pending: list[str] = []
    while isinstance(queue, asyncio.Queue) and not queue.empty():
        event = queue.get_nowait()
        if event.get("type") == "websocket.receive":
            pending.append(event.get("text") or "")
    return pending


def _connection_of(ws: WebSocket) -> tuple[Any, asyncio.Transport]:
    """uvicorn's protocol object and transport under a Starlette WebSocket: the ASGI receive
    callable is a method of the protocol (uvicorn's sans-I/O websockets implementation, the
    one :func:`purpleflea.server.serving.uvicorn_config` selects)."""
    protocol = getattr(ws._receive, "__self__", None)
    transport = getattr(protocol, "transport", None)
    if not isinstance(transport, asyncio.Transport):
        raise HandoffError(
            f"cannot reach the socket under {type(protocol).__name__}: stream workers need "
            "uvicorn's websockets-sansio protocol"
        )
    return protocol, transport
