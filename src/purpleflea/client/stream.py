"""The live stream: subscribe, resume from the last seq, reconnect and fail over by itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

import msgspec
import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from purpleflea.client._config import recorded_elsewhere, ws_url
from purpleflea.client.errors import (
    FATAL_STREAM_ERRORS,
    AuthenticationError,
    BadRequestError,
    PurpleFleaError,
    ServerUnreachableError,
)
from purpleflea.formatting import printable
from purpleflea.idle import IdleTimeout
from purpleflea.model import CascadeAlert, Liquidation
from purpleflea.websocket_ready import take_ready

if TYPE_CHECKING:
    from purpleflea.client.aio import LiquidationClient


class _Frame(msgspec.Struct):
    type: str
    data: msgspec.Raw = msgspec.Raw(b"")
    seq: int | None = None
    code: str = ""
    message: str = ""
    items: list[msgspec.Raw] = []
    filters: dict[str, Any] = {}


_frame = msgspec.json.Decoder(_Frame)
_liquidation = msgspec.json.Decoder(Liquidation)
_cascade = msgspec.json.Decoder(CascadeAlert)


# gc=False: these hold only decoded data (no cycles), and one is built per event; tracked, they
# set off a garbage collection every few hundred events in a burst.
class _LiquidationItem(msgspec.Struct, tag="liquidation", tag_field="type", gc=False):
    data: Liquidation


class _CascadeItem(msgspec.Struct, tag="cascade", tag_field="type", gc=False):
    data: CascadeAlert


class _Batch(msgspec.Struct, tag="batch", tag_field="type", gc=False):
    items: list[_LiquidationItem | _CascadeItem]


# An event's, an alert's or a batch frame, read in one pass into events: a batch in 0.43
# instead of 1.11 us an event (frame, then each item's frame, then its data), which is what a
# client spends most of a crash burst on (bench/sdk_decode.py); a single event's frame once
# instead of twice (frame, then its data). Any other frame (heartbeat, error, a newer server's
# new type) fails validation and goes the general way.
_events = msgspec.json.Decoder(_Batch | _LiquidationItem | _CascadeItem)
#: The stream says it cannot reach a server once an outage starts, then at most this often
#: while it lasts (a script with no logging set up shows it: WARNING goes to stderr).
WARN_EVERY_S = 60.0

#: A connection that ends sooner than this after it opened counts as a failed attempt.
QUICK_DROP_S = 5.0

log = logging.getLogger("purpleflea.client")

#: How much of an unreadable frame a log line or an error shows.
_EXCERPT = 120


def _excerpt(raw: str | bytes | msgspec.Raw) -> str:
    text = raw if isinstance(raw, str) else bytes(raw).decode(errors="replace")
    return repr(text[:_EXCERPT]) + ("..." if len(text) > _EXCERPT else "")


class Stream:
    """A live, resumable stream; use as ``async with client.stream(...) as stream``.

    Iterating yields :class:`~purpleflea.model.Liquidation` events (and
    :class:`~purpleflea.model.CascadeAlert` alerts when the ``cascades`` channel is asked
    for). ``last_seq`` is the resume cursor: everything up to it was delivered or filtered.
    ``server`` is the server it is (or will next be) connected to; ``filters``, the filters
    that server applies as it read them (exchange ids as it spells them, market names in upper
    case, its ``subscribed`` answer), empty until connected. ``dropped`` counts the frames
    (and items of batch frames) skipped because they could not be read, each a warning in the
    log at most once a minute; the stream goes on past them.
    """

    #: The idle timeout's one timer, made at the first wait.
    _idle: IdleTimeout | None = None
    #: Frames, and items of batch frames, skipped as unreadable (see :meth:`_skip`).
    dropped = 0
    #: When the last of those was logged (None: none yet).
    _skip_warned_at: float | None = None

    def __init__(
        self,
        client: LiquidationClient,
        subscription: dict[str, Any],
        *,
        since_seq: int | None,
        max_backoff: float,
        idle_timeout: float,
        give_up_after: float | None = None,
    ) -> None:
        self._client = client
        self._subscription = subscription
        self.last_seq: int | None = since_seq
        self.filters: dict[str, Any] = {}
        self.reconnects = 0
        self._max_backoff = max_backoff
        self._idle_timeout = idle_timeout
        self._give_up_after = give_up_after
        #: Connections in a row that ended within QUICK_DROP_S of opening: each doubles the
        #: wait before the next, so a server that accepts and at once drops is not hammered.
        self._quick_drops = 0
        self._connected_at = 0.0
        self._ws: ClientConnection | None = None
        self._closed = False
        self._server = client.servers.index(client.base_url)

    @property
    def server(self) -> str:
        return self._client.servers[self._server]

    async def __aenter__(self) -> Stream:
        await self._connect_with_retry()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        if self._idle is not None:
            self._idle.close()
        if self._ws is not None:
            await self._ws.close()
            self._ws = None

    def __aiter__(self) -> AsyncIterator[Liquidation | CascadeAlert]:
        return self._items()

    async def _connect(self) -> None:
        message = dict(self._subscription, op="subscribe")
        if self.last_seq is not None:
            message["since_seq"] = self.last_seq
        url = ws_url(self.server)
        try:
            ws = await connect(
                url,
                additional_headers=self._client.auth_headers(),
                open_timeout=self._client.timeout,
                max_size=2**22,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if 400 <= status < 500 and status not in (408, 429):
                # A Purple Flea server accepts every stream and refuses in a frame: an HTTP
                # refusal comes from something else at that URL, and retrying cannot fix it.
                raise PurpleFleaError(
                    f"{url} refused the WebSocket handshake with HTTP {status}: no Purple Flea "
                    "stream there; is the URL given (PURPLEFLEA_URL or base_url) a Purple "
                    "Flea server's root, without a path?",
                    "handshake_refused",
                    status,
                ) from exc
            raise
        try:
            # A server that refuses the connection (key, stream caps) may close it before the
            # subscribe message goes out: its error frame is still there to read.
            with contextlib.suppress(websockets.ConnectionClosed):
                await ws.send(msgspec.json.encode(message).decode())
            # Its own timer, not the stream's idle one (whose pending timer, armed for a
            # longer timeout, would hold this shorter wait to its own time).
            answer = IdleTimeout()
            try:
                raw = await answer.wait(ws.recv(), self._client.timeout)
            finally:
                answer.close()
            try:
                first = _frame.decode(raw)
            except msgspec.DecodeError as exc:
                raise PurpleFleaError(
                    f"{url} answered subscribe with a frame that is not a stream frame "
                    f"({printable(str(exc))}): {printable(_excerpt(raw))}",
                    "protocol",
                ) from exc
            if first.type == "error":
                error = FATAL_STREAM_ERRORS.get(first.code, PurpleFleaError)
                raise error(first.message, first.code)
            if first.type != "subscribed":
                raise PurpleFleaError(f"unexpected first frame {first.type!r}", "protocol")
            if self.last_seq is None:
                self.last_seq = first.seq
            self.filters = first.filters
        except BaseException:
            await ws.close()
            raise
        self._ws = ws
        self._connected_at = time.monotonic()

    async def _connect_with_retry(self) -> None:
        """Connect, trying each server in turn; back off after every full round, and before
        the first try when the last connections ended as soon as they opened. Raises
        :class:`ServerUnreachableError` once ``give_up_after`` seconds passed without one."""
        servers = len(self._client.servers)
        attempt = 0
        began = time.monotonic()
        warned_at: float | None = None
        refused: set[int] = set()  # servers whose URL answered the handshake with an HTTP 4xx
        if self._quick_drops:
            await self._pause(self._quick_drops)
        while True:
            try:
                await self._connect()
            except (AuthenticationError, BadRequestError) as exc:
                if exc.code != "resume_ahead" or not self._connected_at or self._closed:
                    raise  # (a since_seq the user gave that is ahead is the user's to fix)
                # The server has no seq as high as the one this stream reached: its store
                # started anew (or it is another cluster's). What it never had cannot come;
                # say so loudly and follow its live feed rather than stop an agent.
                log.warning(
                    "stream: %s cannot resume after seq %d (%s); following its live feed: "
                    "events after seq %d that it never stored are not coming",
                    self.server,
                    self.last_seq,
                    exc,
                    self.last_seq,
                )
                self.last_seq = None
                continue
            except PurpleFleaError as exc:
                if self._closed:
                    raise
                if exc.code == "handshake_refused":
                    # Nothing at that URL can start answering, but another server may (one
                    # node behind a misrouted proxy must not stop a failover list).
                    refused.add(self._server)
                    if len(refused) == servers:
                        raise
                error: BaseException = exc
            except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                if self._closed:
                    raise
                error = exc
            else:
                if warned_at is not None:
                    # The outage was shown as a WARNING: its end is shown alike.
                    log.warning(
                        "stream: connected to %s after %.1f s (%d failed attempts), %s",
                        self.server,
                        time.monotonic() - began,
                        attempt,
                        self._then(),
                    )
                elif attempt:
                    log.info(
                        "stream: connected to %s after %d failed attempts", self.server, attempt
                    )
                return
            waited = time.monotonic() - began
            if self._give_up_after is not None and waited >= self._give_up_after:
                raise ServerUnreachableError(
                    f"stream: no Purple Flea server answered at {', '.join(self._client.servers)}"
                    f" for {waited:.1f} s (give_up_after={self._give_up_after:g}; last error: "
                    f"{error or type(error).__name__}): start one with `purpleflea serve`, "
                    f"or set PURPLEFLEA_URL{recorded_elsewhere(self._client.servers)}",
                    "unreachable",
                ) from error
            if warned_at is None or time.monotonic() - warned_at >= WARN_EVERY_S:
                warned_at = time.monotonic()
                # A refusal in a frame (too_many_streams, rate_limited) came from a server:
                # asking whether one runs there would mislead.
                hint = (
                    ""
                    if isinstance(error, PurpleFleaError)
                    else " (is a server running there, `purpleflea serve`, and PURPLEFLEA_URL "
                    f"right?{recorded_elsewhere(self._client.servers)})"
                )
                log.warning(
                    "stream: cannot reach %s (%s); retrying with backoff up to %g s%s, then %s%s",
                    self.server,
                    error or type(error).__name__,
                    self._max_backoff,
                    ""
                    if self._give_up_after is None
                    else f" for up to {self._give_up_after:g} s in all",
                    self._then(),
                    hint,
                )
            attempt += 1
            self._server = (self._server + 1) % servers
            if attempt % servers:
                continue  # the next server may answer right away
            await self._pause(attempt // servers)

    async def _pause(self, rounds: int) -> None:
        """The backoff after ``rounds`` failures: jittered, doubling up to ``max_backoff``."""
        ceiling = min(self._max_backoff, 0.25 * 2 ** min(rounds, 10))
        await asyncio.sleep(random.uniform(ceiling / 2, ceiling))

    def _then(self) -> str:
        if self.last_seq is None:
            return "subscribing"
        return f"resuming after seq {self.last_seq}"

    async def _items(self) -> AsyncIterator[Liquidation | CascadeAlert]:
        while not self._closed:
            if self._ws is None:
                if self._connected_at:  # not the first connection (iterated without async with)
                    self.reconnects += 1
                await self._connect_with_retry()
            assert self._ws is not None
            try:
                messages = await self._receive(self._ws)
            except (websockets.ConnectionClosed, TimeoutError, OSError) as exc:
                # Dropped or silent: reconnect and resume from last_seq.
                why = (
                    f"nothing for {self._idle_timeout:g} s"
                    if isinstance(exc, TimeoutError)
                    else str(exc) or type(exc).__name__
                )
                log.warning(
                    "stream: lost the connection to %s (%s); reconnecting, %s",
                    self.server,
                    why,
                    self._then(),
                )
                await self._drop()
                continue
            for raw in messages:
                events = self._batch(raw)
                if events is not None:
                    for event in events:
                        self.last_seq = event.seq  # as each goes out: a consumer may stop here
                        yield event
                    continue
                try:
                    frame = _frame.decode(raw)
                except msgspec.DecodeError as exc:
                    self._skip(raw, exc)
                    continue
                if frame.type == "batch":
                    for event in self._batch_items(frame):
                        yield event
                elif frame.type in ("liquidation", "cascade"):
                    for event in self._single(frame, raw):
                        yield event
                elif frame.type == "heartbeat" and frame.seq is not None:
                    self.last_seq = max(self.last_seq or 0, frame.seq)
                elif frame.type == "error":
                    fatal = FATAL_STREAM_ERRORS.get(frame.code)
                    await self._drop()
                    if fatal is not None:
                        self._closed = True
                        raise fatal(frame.message, frame.code)
                    # slow_consumer, server_shutdown: reconnect and resume, and say so (a
                    # consumer cut again and again for slowness should learn it).
                    log.warning(
                        "stream: %s ended the stream (%s: %s); reconnecting, %s",
                        self.server,
                        printable(frame.code),
                        printable(frame.message),
                        self._then(),
                    )
                    break

    async def _receive(self, ws: ClientConnection) -> list[str | bytes]:
        """Every message ``ws`` holds, waiting at most the idle timeout for the first.

        The timeout covers only the wait, never the consumer's time between events, and is
        armed only when nothing is held: under load the messages are there, and a
        ``wait_for(recv())`` per message (a task and a timer each) was most of a client's CPU
        per frame (34 against 9 us a single-event frame, bench/sdk_receive.py). One timer
        serves every wait (:class:`IdleTimeout`): a stream that keeps up waits once a frame.
        """
        ready = take_ready(ws)
        if ready:
            return ready
        if self._idle is None:
            self._idle = IdleTimeout()
        first = await self._idle.wait(ws.recv(), self._idle_timeout)
        return [first, *take_ready(ws)]

    def _batch(self, raw: str | bytes) -> list[Liquidation | CascadeAlert] | None:
        """The events above the cursor of a batch frame, or of one event's or alert's frame,
        in one decoding pass (the caller moves the cursor as it hands each over); None when
        ``raw`` is another frame, or a batch with an item this SDK does not know (a newer
        server's new type, say): the frame then goes the general way, which skips what it does
        not know."""
        try:
            frame = _events.decode(raw)
        except msgspec.DecodeError:  # (a ValidationError too)
            return None
        items = frame.items if isinstance(frame, _Batch) else (frame,)
        out: list[Liquidation | CascadeAlert] = []
        last = self.last_seq
        for item in items:
            event = item.data
            if last is not None and event.seq <= last:
                continue
            last = event.seq
            out.append(event)
        return out

    def _batch_items(self, frame: _Frame) -> Iterator[Liquidation | CascadeAlert]:
        """A batch frame's events the general way, item by item (the cursor moves as each is
        taken); items of a type this SDK does not know are passed over, and items it cannot
        read are skipped (:meth:`_skip`)."""
        for raw in frame.items:
            try:
                items = self._item(_frame.decode(raw))
            except msgspec.DecodeError as exc:
                self._skip(raw, exc)
                continue
            yield from items

    def _single(self, frame: _Frame, raw: str | bytes) -> list[Liquidation | CascadeAlert]:
        """:meth:`_item`, skipping (:meth:`_skip`) an event or alert it cannot read."""
        try:
            return self._item(frame)
        except msgspec.DecodeError as exc:
            self._skip(raw, exc)
            return []

    def _skip(self, raw: str | bytes | msgspec.Raw, error: msgspec.DecodeError) -> None:
        """Pass over a frame (or a batch's item) that is not what the protocol says: count it
        in :attr:`dropped` and say so, at most once a ``WARN_EVERY_S`` (a server sending
        nothing but such frames must not flood the log); the stream goes on. Reconnecting
        would not help: a resume is sent the same frame again."""
        self.dropped += 1
        now = time.monotonic()
        if self._skip_warned_at is not None and now - self._skip_warned_at < WARN_EVERY_S:
            return
        self._skip_warned_at = now
        log.warning(
            "stream: skipped a frame this SDK cannot read (%s): %s; %d skipped so far "
            "(Stream.dropped); is the server a newer or older Purple Flea than this SDK?",
            printable(str(error)),  # (it may quote the frame's own values)
            printable(_excerpt(raw)),
            self.dropped,
        )

    def _item(self, frame: _Frame) -> list[Liquidation | CascadeAlert]:
        """The event or alert a frame carries, unless already delivered (seq at or below
        the cursor); moves the cursor."""
        if not frame.data:
            return []
        item: Liquidation | CascadeAlert
        if frame.type == "liquidation":
            item = _liquidation.decode(frame.data)
        elif frame.type == "cascade":
            item = _cascade.decode(frame.data)
        else:
            return []
        if self.last_seq is not None and item.seq <= self.last_seq:
            return []
        self.last_seq = item.seq
        return [item]

    async def _drop(self) -> None:
        if self._ws is not None:
            if time.monotonic() - self._connected_at < QUICK_DROP_S:
                self._quick_drops += 1
            else:
                self._quick_drops = 0
            ws, self._ws = self._ws, None
            with contextlib.suppress(OSError, websockets.WebSocketException):
                await ws.close()
