"""The stream endpoints: WebSocket ``/v1/stream`` and Server-Sent Events ``/v1/stream/sse``.

WebSocket protocol (JSON text frames):

- connect with the key in ``Authorization: Bearer``, ``X-API-Key`` or ``?api_key=``;
- send ``{"op": "subscribe", "channels": ["liquidations", "cascades"], "min_usd": 100000,
  "markets": ["BTC-PERP"], "exchanges": [...], "sides": ["long"], "coverages": ["complete"],
  "since_seq": 123}``
  (every field optional; ``since_seq`` resumes: everything after it is replayed from storage,
  then the live feed follows with no gap and no duplicate; a ``since_seq`` above the last
  seq this server has is refused with ``resume_ahead``, its message naming that seq);
- receive ``{"type": "subscribed", "seq": N, "filters": {...}}`` (without ``since_seq``, N is
  the live seq when the server counted the stream open, at the key check: every event after
  it follows, one published before the subscribe message came replayed from storage), then
  ``{"type": "liquidation", "data": {...}}``, ``{"type": "cascade", "data": {...}}`` and
  ``{"type": "heartbeat", "seq": N, "ts": ms}`` (every seq up to N was sent or filtered out,
  so resuming from the last heartbeat's seq misses nothing);
- errors arrive as ``{"type": "error", "code": ..., "message": ...}`` followed by a close
  whose reason is the code: ``missing_api_key``/``invalid_api_key`` (4401), ``key_revoked``
  (4403), ``bad_subscription`` and ``resume_ahead`` (4400), ``slow_consumer`` (4008), ``flood``,
  ``too_many_streams`` and ``rate_limited`` (4429), ``internal_error`` (1011),
  ``server_shutdown`` (1001);
- ``{"op": "ping"}`` is answered with ``{"type": "pong"}``;
- with ``"batch": true`` in the subscribe message, events that are already waiting when one
  is sent arrive together as ``{"type": "batch", "items": [frame, ...]}`` (each item a
  ``liquidation`` or ``cascade`` frame, in seq order): one frame per write instead of one per
  event, which is what keeps a busy stream cheap. The SDK asks for it.

Server-Sent Events: the same filters as query parameters (``Last-Event-ID`` resumes like
``since_seq``; without either, the stream goes on from where it was counted open, as a
WebSocket does); each frame is an event named by its ``type`` with its ``seq`` as ``id``.
Refusals come before the stream starts, as JSON errors: 401/403 (key), 400
(``bad_subscription``), 429 with ``Retry-After`` (``too_many_streams``, ``rate_limited``),
503 (``server_shutdown``). A stream the server ends sends a last ``event: error`` with the
same ``{"type": "error", ...}`` data before the body ends.

Limits, the same for both (:class:`~purpleflea.server.config.ServerConfig`):

- slow consumers: frames waiting for a client beyond what its socket has taken are counted
  in bytes; past ``stream_buffer_bytes`` the client is cut (``slow_consumer``), unless its
  feed is waiting on the server then (a page of its replay, read at its account's pace):
  those frames are dropped and read from storage instead. Its reason
  is queued behind what it was already sent, for a slow reader to find; a client that reads
  nothing does not hold the server;
- per account (keys are free to mint): ``streams_per_account`` open at once
  (``too_many_streams``) and ``stream_opens_per_min`` opens a minute (``rate_limited``);
- WebSocket frames of every kind (pings and message parts, which never reach the message
  count): :data:`MAX_FRAMES_PER_S` a second and :data:`MAX_FRAGMENTS` parts to a message,
  then ``flood`` (4429); pongs are cut to one per read, and while the client is not taking
  what it was sent, to one owed for when it does (:func:`fewer_pongs`, :func:`last_pong`);
- shutdown: every stream gets ``server_shutdown`` (WebSocket close 1001) and the server does
  not wait on a client that stops reading (:mod:`purpleflea.server.serving`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from purpleflea.bus.base import Bus, SubscriptionClosed
from purpleflea.idle import IdleTimeout
from purpleflea.model import encode
from purpleflea.server import http
from purpleflea.server.auth import AuthError, Gate
from purpleflea.server.fanout import ClientQueue, Fanout
from purpleflea.server.feed import Item, client_feed, subscribed_seq
from purpleflea.server.filters import BadSubscription, StreamFilter, parse_filter, query_fields
from purpleflea.server.keys import KeyInfo
from purpleflea.server.pipeline import Pipeline
from purpleflea.server.workers import HandoffError, StreamWorker, WorkerPool

log = logging.getLogger("purpleflea.stream")

#: The WebSocket close code of each reason a stream ends (the OpenAPI document lists them).
CLOSE_CODES = {
    "missing_api_key": 4401,
    "invalid_api_key": 4401,
    "key_revoked": 4403,
    "bad_subscription": 4400,
    "resume_ahead": 4400,
    "slow_consumer": 4008,
    "flood": 4429,
    "too_many_streams": 4429,
    "rate_limited": 4429,
    "internal_error": 1011,
    "server_shutdown": 1001,
}
_MAX_INBOUND_PER_S = 20
#: WebSocket frames a client may send in a second, of every kind (pings, pongs and the parts
#: of a message too): a ping is answered by the WebSocket layer and a fragment kept until its
#: message ends, so neither ever reached the message count above. One stream pinging as fast
#: as it could, reading nothing, grew the server by ~4.6 MB a second in pongs; one sending
#: empty fragments of a message that never ended held the event loop (a health check took
#: 6 s). No client needs more: browsers send no pings, websockets one per 20 s.
MAX_FRAMES_PER_S = 100
#: Frames one client message may be split into (a browser sends one; the SDK one): the parts
#: of a message that never ends are kept until it does, a few bytes each, for ever.
MAX_FRAGMENTS = 64
_PING = ('{"op":"ping"}', '{"op": "ping"}')
PONG = '{"type":"pong"}'
_SUBSCRIBE_TIMEOUT_S = 10.0
#: How long a closing reason may take to reach a client (its error frame and close).
_SEND_TIMEOUT_S = 1.0
#: Items one batch frame may carry (clients that subscribe with "batch": true).
_MAX_BATCH = 500
#: A slow consumer's reason queues behind what it was already sent: give it as long as a
#: slow (not dead) reader needs to get there. A dead one is dropped sooner by the kernel
#: (``TCP_USER_TIMEOUT``, 120 s, see net.py), and at shutdown the server aborts connections
#: that take nothing (serving.py): either way the blocked write ends then, quietly.
_PATIENT_S = 150.0
_CLIENT_GONE = "client_disconnected"
#: A resume point from an SSE client: empty (none) or a seq of at most 18 digits.
_LAST_EVENT_ID = re.compile(r"[0-9]{0,18}")
_DISCONNECTED = (WebSocketDisconnect, OSError, RuntimeError)

Kick = Callable[[str], None]


def _closed_code(bus_reason: str) -> str:
    return "slow_consumer" if bus_reason.startswith("slow consumer") else "server_shutdown"


async def _receive_text(ws: WebSocket) -> str | None:
    """The next client message's text, None for a binary frame (``receive_text`` would fail
    on one with a KeyError, killing the connection without a close reason)."""
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text: str | None = message.get("text")
    return text


class InboundRate:
    """Counts one stream client's messages, wherever its stream is written: more than
    ``_MAX_INBOUND_PER_S`` within one second is a flood (the stream ends with ``flood``)."""

    def __init__(self, limit: int = _MAX_INBOUND_PER_S) -> None:
        self.limit = limit
        self._window_start = time.monotonic()
        self._count = 0

    def flooded(self, count: int = 1) -> bool:
        """Count ``count`` messages (or frames); True when they are too many for their second."""
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self._window_start, self._count = now, 0
        self._count += count
        return self._count > self.limit


def fewer_pongs(chunks: list[bytes], *, writable: bool) -> list[bytes]:
    """What to write of the WebSocket layer's output (one serialized frame per chunk) after
    it read the client's frames: its pongs cut to the last one (none while the client is not
    taking what was written to it: that one is then owed, :func:`last_pong`), everything
    else as it is. RFC 6455 5.5.3 lets a pong answer only the latest of the pings that came
    meanwhile; answered each, a thousand pings in one read were a thousand pongs, written (or
    kept in memory) before any count."""
    pongs = [i for i, chunk in enumerate(chunks) if chunk[:1] == b"\x8a"]
    keep = pongs[-1:] if writable else []
    dropped = set(pongs) - set(keep)
    return [chunk for i, chunk in enumerate(chunks) if i not in dropped]


def last_pong(chunks: list[bytes]) -> bytes | None:
    """The last pong of the WebSocket layer's output, if any: the one a client not taking what
    was written to it is owed, written once it takes it again (one frame of at most 127
    bytes, whatever it sent meanwhile). Not answered at all, a client that pings to check the
    connection (the websockets library, the SDK's: every 20 s, closing after 20 s without a
    pong) ended a healthy stream that was only busy when its ping came."""
    for chunk in reversed(chunks):
        if chunk[:1] == b"\x8a":
            return chunk
    return None


def frame_flood_error() -> bytes:
    """The error frame's text for a client past :data:`MAX_FRAMES_PER_S` or
    :data:`MAX_FRAGMENTS` (the stream then closes with ``flood``, 4429)."""
    return _error(
        "flood",
        f"more than {MAX_FRAMES_PER_S} WebSocket frames in a second (pings and message parts "
        f"included) or a message in more than {MAX_FRAGMENTS} parts",
    ).encode()


def is_ping(text: str) -> bool:
    """A client's ``{"op": "ping"}`` (answered with :data:`PONG`)."""
    return text.strip() in _PING


def explain(why: str, buffer_bytes: int) -> str:
    """What a client is told when its stream ends with ``why`` (a :data:`CLOSE_CODES` name)."""
    if why == "slow_consumer":
        return (
            f"slow consumer: more than {buffer_bytes} bytes were waiting for this "
            "client; reconnect with since_seq to resume"
        )
    if why == "key_revoked":
        return "the API key of this stream was revoked"
    if why == "flood":
        return f"more than {_MAX_INBOUND_PER_S} client messages per second"
    if why == "server_shutdown":
        return "the server is shutting down; reconnect with since_seq to resume"
    if why == "internal_error":
        return "the stream failed on the server; reconnect with since_seq to resume"
    return why


def _not_a_subscribe(message: object) -> str:
    """What a first message that is no subscribe was instead, for its refusal."""
    if not isinstance(message, dict):
        kind = {list: "array", str: "string", bool: "boolean"}.get(type(message), "number or null")
        return f"got a JSON {kind}"
    if "op" in message:
        return f'got "op": {repr(message["op"])[:60]}'
    if message.get("type") == "subscribe":  # the server's frames say "type"; a client "op"
        return 'got no "op" but "type": "subscribe" (a subscribe names it in "op")'
    return 'got no "op"'


def _error(code: str, message: str) -> str:
    return encode({"type": "error", "code": code, "message": message}).decode()


def subscribed(start_seq: int, wanted: StreamFilter, batch: int) -> bytes:
    """The frame that opens a WebSocket stream (from this process or a stream worker): the
    seq it goes on from, its filters, and whether its events come batched."""
    return encode(
        {"type": "subscribed", "seq": start_seq, "filters": wanted.describe(), "batch": batch > 1}
    )


def _sse_event(item: Item) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (item.seq, item.kind.encode(), item.data)


def _ender() -> tuple[asyncio.Future[str], Kick]:
    """A stream's end: a future holding why, and the ``kick`` that sets it (first reason wins)."""
    ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def kick(why: str) -> None:
        if not ended.done():
            ended.set_result(why)

    return ended, kick


async def _kicking(work: Awaitable[None], kick: Kick) -> None:
    """Run one of a stream's tasks; however it ends, the stream learns why."""
    try:
        await work
    except SubscriptionClosed as exc:
        kick(_closed_code(exc.reason))
    except _DISCONNECTED:
        kick(_CLIENT_GONE)
    except Exception:
        log.exception("stream task failed")
        kick("internal_error")
    else:
        kick(_CLIENT_GONE)


async def pump(
    ended: asyncio.Future[str],
    kick: Kick,
    subscription: ClientQueue,
    writer: Coroutine[Any, Any, None],
    helpers: Iterable[Coroutine[Any, Any, None]] = (),
) -> str:
    """Run a stream's ``writer`` until something ends the stream; returns why. Streams in
    this process and on a stream worker (:mod:`purpleflea.server.stream_worker`) end alike.

    The writer may be blocked on a client that does not read, so the bus closing the
    subscription (a slow consumer) is watched apart from it, as are the client's own
    messages (``helpers``) and outside kicks (revocation, shutdown). However it ends, the
    subscription is closed and every task is done before this returns.
    """

    async def watch() -> None:
        kick(_closed_code(await subscription.wait_closed()))

    tasks = [
        asyncio.create_task(_kicking(writer, kick)),
        asyncio.create_task(watch()),
        *(asyncio.create_task(_kicking(helper, kick)) for helper in helpers),
    ]
    try:
        return await ended
    finally:
        subscription.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _send_all(feed: AsyncIterator[Item], write: Callable[[Item], Awaitable[None]]) -> None:
    async for item in feed:
        await write(item)


class Streams:
    """The two stream endpoints over one tracker, bus and gate."""

    def __init__(
        self,
        *,
        tracker: Pipeline,
        bus: Bus,
        gate: Gate,
        known_exchanges: tuple[str, ...],
        heartbeat_s: float,
        buffer_bytes: int,
        workers: WorkerPool | None = None,
    ) -> None:
        self.tracker = tracker
        self.bus = bus
        #: Every stream client's queue: one bus subscription for all of them.
        self.fanout = Fanout(bus, heartbeat_s=heartbeat_s)
        self.gate = gate
        self.known_exchanges = known_exchanges
        self.buffer_bytes = buffer_bytes
        #: Worker processes that write the WebSocket streams (``--stream-workers``); None:
        #: this process writes every stream.
        self.workers = workers
        self.closed: dict[str, int] = {}
        self.shutting_down = asyncio.Event()
        # Streams still running or telling their client why they end (shutdown waits).
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def _written(self, item: Item) -> None:
        """A live item reached a client's socket: its ``written`` stage latency."""
        if item.published:
            self.tracker.latency.observe("written", time.monotonic() - item.published, item.events)

    def _count(self, reason: str) -> None:
        self.closed[reason] = self.closed.get(reason, 0) + 1

    @contextlib.contextmanager
    def _session(self) -> Iterator[None]:
        self._active += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._active -= 1
            if not self._active:
                self._idle.set()

    def _admit(self, info: KeyInfo, kick: Kick) -> int:
        """Register a stream under its account's caps; returns the live seq at that moment,
        which its feed goes on from (:func:`~purpleflea.server.feed.first_seq`): a stream
        counted open (``open_for``) gets every event published from then on, though its
        subscribe message and subscription come later. Raises :class:`AuthError` (429, or
        503 while shutting down)."""
        if self.shutting_down.is_set():
            raise AuthError(503, "server_shutdown", self._explain("server_shutdown"), "1")
        try:
            self.gate.streams.add(info, kick)
        except AuthError as exc:
            self.gate.counters[exc.code] += 1
            raise
        return self.tracker.last_seq

    async def shut_down(self, grace_s: float) -> None:
        """End every stream with ``server_shutdown`` and wait (at most ``grace_s``) until each
        has told its client; streams opened from now on are refused."""
        self.shutting_down.set()
        self.gate.streams.kick_all("server_shutdown")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_s):
                await self._idle.wait()

    async def _check_resume(self, wanted: StreamFilter) -> None:
        """Refuse a ``since_seq`` above the last seq: the events after it do not exist yet, and
        the heartbeats would carry a cursor that skips the ones still to come."""
        since = wanted.since_seq
        if since is None or since <= self.tracker.last_seq:
            return
        # The store may be ahead of what this node has published (a batch in flight, or an
        # API node a moment behind the bus): those seqs are real, the feed skips to them.
        last = max(self.tracker.last_seq, await self.tracker.store.last_seq())
        if since > last:
            raise BadSubscription(
                f"since_seq {since} is beyond the last seq {last}: resume from a seq this "
                "server sent (an event's or a heartbeat's), or omit since_seq",
                "resume_ahead",
            )

    def _explain(self, why: str) -> str:
        return explain(why, self.buffer_bytes)

    @contextlib.asynccontextmanager
    async def _last_words(self, why: str) -> AsyncIterator[None]:
        """Bounds the sending of a stream's reason: a client that does not take it in time is
        not waited for. A slow consumer's reason queues behind what it was already sent, and
        at shutdown a stalled client is aborted by the server: both wait longer (a write
        cut short would leave an SSE response incomplete on a connection still open)."""
        patient = why == "slow_consumer" or self.shutting_down.is_set()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_PATIENT_S if patient else _SEND_TIMEOUT_S):
                yield

    # -- WebSocket ---------------------------------------------------------------------------

    async def websocket(self, ws: WebSocket) -> None:
        await ws.accept()
        ended, kick = _ender()
        try:
            info = self.gate.authenticate(self.gate.request_key(ws.headers, ws.query_params))
            opened_seq = self._admit(info, kick)
        except AuthError as exc:
            await self._tell(ws, exc.code, exc.message)
            return
        with self._session():
            try:
                why, told = await self._websocket_session(ws, info, ended, kick, opened_seq)
            except BadSubscription as exc:  # refused before it started: not a closed stream
                await self._tell(ws, exc.code, str(exc))
                return
            finally:
                self.gate.streams.remove(kick)
            self._count(why)
            if why in CLOSE_CODES and not told:
                await self._tell(ws, why, self._explain(why))

    async def _websocket_session(
        self,
        ws: WebSocket,
        info: KeyInfo,
        ended: asyncio.Future[str],
        kick: Kick,
        opened_seq: int,
    ) -> tuple[str, bool]:
        """Read the subscription, then stream (here or on a worker) until something ends it;
        returns why, and whether the client was told already (by its worker). Raises
        :class:`BadSubscription` for a subscription refused before streaming began."""
        reading = asyncio.ensure_future(self._read_subscription(ws))
        waiting: list[asyncio.Future[Any]] = [reading, ended]
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if ended.done():  # kicked (shutdown, revocation) before the client subscribed
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
            return ended.result(), False
        try:
            wanted, batch = reading.result()
        except TimeoutError:
            raise BadSubscription(
                f"no subscribe message within {_SUBSCRIBE_TIMEOUT_S:g} s of connecting"
            ) from None
        except _DISCONNECTED:
            return _CLIENT_GONE, False
        await self._check_resume(wanted)
        if self.workers is not None and self.workers.available:
            try:
                worker, stream_id, closed = await self.workers.hand_off(
                    ws, wanted, batch, info.account, opened_seq
                )
            except (HandoffError, TimeoutError) as exc:
                log.warning("stream stays in the main process: %s", exc)
            else:
                return await self._on_worker(worker, stream_id, closed, ended), True
        subscription = self.fanout.subscribe(self.buffer_bytes)
        start_seq = self.tracker.last_seq

        async def write(item: Item) -> None:
            await ws.send_text(item.text or item.data.decode())
            self._written(item)

        from_seq = subscribed_seq(wanted, start_seq, opened_seq)
        try:
            await ws.send_text(subscribed(from_seq, wanted, batch).decode())
        except _DISCONNECTED:
            subscription.close()
            return _CLIENT_GONE, False
        feed = client_feed(
            self.tracker.store,
            subscription,
            wanted,
            start_seq=start_seq,
            batch=batch,
            pace=lambda: self.gate.pace(info),
            opened_seq=opened_seq,
        )
        helpers = [self._read_loop(ws, kick)]
        return await pump(ended, kick, subscription, _send_all(feed, write), helpers), False

    async def _on_worker(
        self,
        worker: StreamWorker,
        stream_id: int,
        closed: asyncio.Future[str],
        ended: asyncio.Future[str],
    ) -> str:
        """Hold a handed-off stream's place (its account's slot, the shutdown's wait) until
        its worker reports its end; an end decided here (revocation, shutdown) is sent to
        the worker, which tells the client the same reason as this process would."""
        await asyncio.wait([ended, closed], return_when=asyncio.FIRST_COMPLETED)
        if not closed.done():
            why = ended.result()
            worker.kick(stream_id, why, self._explain(why))
            return await closed
        return closed.result()

    async def _tell(self, ws: WebSocket, code: str, message: str) -> None:
        """The error frame, then the close with its code and the code as reason; a client
        that does not take them in time is not waited for."""
        async with self._last_words(code):
            await ws.send_text(_error(code, message))
            await ws.close(code=CLOSE_CODES.get(code, 1000), reason=code)

    async def _read_subscription(self, ws: WebSocket) -> tuple[StreamFilter, int]:
        """The client's filters, and how many items one frame may carry (1: no batching)."""
        subscribe = IdleTimeout()  # a message read as the deadline falls due is read
        try:
            text = await subscribe.wait(_receive_text(ws), _SUBSCRIBE_TIMEOUT_S)
        finally:
            subscribe.close()
        if text is None:
            raise BadSubscription("the first message must be a JSON text frame, not binary")
        try:
            message = http.decode_json(text, "the subscribe message")
        except http.BadRequest as exc:
            raise BadSubscription(
                f"the first message must be a JSON subscribe object: {exc}"
            ) from None
        if not isinstance(message, dict) or message.get("op") != "subscribe":
            raise BadSubscription(
                'the first message must be {"op": "subscribe", ...}: ' + _not_a_subscribe(message)
            )
        del message["op"]
        batch = message.pop("batch", False)
        if not isinstance(batch, bool):
            raise BadSubscription(f"batch must be true or false, got {batch!r}")
        wanted = parse_filter(message, known_exchanges=self.known_exchanges)
        return wanted, _MAX_BATCH if batch else 1

    async def _read_loop(self, ws: WebSocket, kick: Kick) -> None:
        inbound = InboundRate()
        while True:
            text = await _receive_text(ws) or ""  # a binary frame counts, and is ignored
            if inbound.flooded():
                kick("flood")
                return
            if is_ping(text):
                await ws.send_text(PONG)

    # -- Server-Sent Events ------------------------------------------------------------------

    async def sse(self, request: Request) -> Response | EventStream:
        ended, kick = _ender()
        try:
            info = self.gate.authenticate(
                self.gate.request_key(request.headers, request.query_params)
            )
            fields = query_fields(request.query_params)
            last_event = request.headers.get("last-event-id", "")
            # Checked even when since_seq wins: a malformed header is refused, never ignored.
            if not _LAST_EVENT_ID.fullmatch(last_event):
                raise BadSubscription(f"Last-Event-ID must be a seq, got {last_event[:40]!r}")
            if last_event and "since_seq" not in fields:
                fields["since_seq"] = last_event
            wanted = parse_filter(fields, known_exchanges=self.known_exchanges)
            await self._check_resume(wanted)
            opened_seq = self._admit(info, kick)
        except AuthError as exc:
            return http.refusal(exc)
        except BadSubscription as exc:
            return http.error_response(400, exc.code, str(exc))
        return EventStream(self, info, wanted, ended, kick, opened_seq)

    async def plain_http(self, request: Request) -> Response:
        """A plain HTTP request to the WebSocket endpoint. After the key checks every request
        gets, 426 says to upgrade (RFC 9110 15.5.22), where a 404 would say there is no stream."""
        try:
            self.gate.limit(
                self.gate.authenticate(self.gate.request_key(request.headers, request.query_params))
            )
        except AuthError as exc:
            return http.refusal(exc)
        return http.error_response(
            426,
            "upgrade_required",
            f"{request.url.path} is a WebSocket: connect with Upgrade: websocket "
            "(see /openapi.json)",
            {"Upgrade": "websocket", "Connection": "Upgrade"},
        )

    def routes(self) -> list[Route | WebSocketRoute]:
        return [
            WebSocketRoute("/v1/stream", self.websocket),
            Route("/v1/stream", self.plain_http),
            Route("/v1/stream/sse", self.sse),
        ]


class EventStream:
    """The ASGI response of one admitted SSE client (written by hand rather than as a
    ``StreamingResponse``, so that the stream can end while a write is blocked on a client
    that does not read, and still say why when it can)."""

    _HEADERS = (
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-store"),  # one account's events (http._JSON_HEADERS)
        (b"x-accel-buffering", b"no"),
    )

    def __init__(
        self,
        streams: Streams,
        info: KeyInfo,
        wanted: StreamFilter,
        ended: asyncio.Future[str],
        kick: Kick,
        opened_seq: int | None = None,
    ) -> None:
        self.streams = streams
        self.info = info
        self.wanted = wanted
        self.ended = ended
        self.kick = kick
        #: The live seq when it was admitted: what it goes on from (no Last-Event-ID).
        self.opened_seq = opened_seq

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streams = self.streams
        with streams._session():
            try:
                why = await self._run(scope, receive, send)
            finally:
                streams.gate.streams.remove(self.kick)
            streams._count(why)
            if why == _CLIENT_GONE:
                return
            last = b"event: error\ndata: %s\n\n" % _error(why, streams._explain(why)).encode()
            # Bounded by _last_words: a client that never takes its last event leaves the
            # response incomplete, its connection dropped by the kernel or the shutdown.
            async with streams._last_words(why):
                await send({"type": "http.response.body", "body": last, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _run(self, scope: Scope, receive: Receive, send: Send) -> str:
        streams = self.streams
        await send({"type": "http.response.start", "status": 200, "headers": list(self._HEADERS)})
        if scope.get("method") == "HEAD":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return _CLIENT_GONE
        await send({"type": "http.response.body", "body": b"retry: 1000\n\n", "more_body": True})
        subscription = streams.fanout.subscribe(streams.buffer_bytes)
        feed = client_feed(
            streams.tracker.store,
            subscription,
            self.wanted,
            start_seq=streams.tracker.last_seq,
            pace=lambda: streams.gate.pace(self.info),
            opened_seq=self.opened_seq,
        )

        async def write(item: Item) -> None:
            await send({"type": "http.response.body", "body": _sse_event(item), "more_body": True})
            streams._written(item)

        async def listen() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        writer = _send_all(feed, write)
        return await pump(self.ended, self.kick, subscription, writer, [listen()])
