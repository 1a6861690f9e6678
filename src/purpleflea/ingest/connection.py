"""The shared exchange connection runner: connect, subscribe, keep alive, watch, reconnect.

One :func:`run_feed` task drives one websocket connection described by a :class:`FeedSpec`
(the pure, per-exchange part: URL, subscribe and keep-alive messages, the normalizer). It
never lets an exception escape its loop: a bad frame is counted and skipped, a dead or silent
connection is counted and replaced after an exponential backoff with full jitter. A close the
venue announces (OKX's notice) or schedules (Binance's 24 h) is handed over instead: the
replacement connects while the old connection still delivers (``ingest/handover.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Protocol

import websockets
from websockets.asyncio.client import ClientConnection, connect

from purpleflea.clock import now_ms, retry_after_seconds
from purpleflea.ingest.alarm import Alarm
from purpleflea.ingest.backoff import MAX_UNAVAILABLE_RETRY_AFTER, RATE_LIMITED, Backoff
from purpleflea.ingest.connection_stats import ConnectionStats
from purpleflea.ingest.dedupe import Deduper
from purpleflea.ingest.feed_spec import FeedSpec, Sink
from purpleflea.ingest.handover import Link
from purpleflea.ingest.open_budget import OpenBudget
from purpleflea.ingest.received_frames import (
    RetryableRefusal,
    checked,
    deliver,
    replace_if_closing,
    reply_to,
    resubscribe_step,
)
from purpleflea.ingest.resubscribe import Resubscriber
from purpleflea.ingest.watchdog import Watchdog
from purpleflea.venues._frame import MAX_FRAME_BYTES
from purpleflea.venues.venue import Message
from purpleflea.websocket_ready import take_ready

log = logging.getLogger("purpleflea.ingest")


class Watch(Protocol):
    """Told when a connection goes up (connected and subscribed), receives a frame, goes
    down (with the failure's kind) or stops; times in ms since the epoch. The uptime ledger
    (``ingest/uptime.py``) is one."""

    def up(self, connection: str, exchange: str, at_ms: int) -> object: ...

    def frame(self, connection: str, at_ms: int) -> None: ...

    def down(self, connection: str, exchange: str, at_ms: int, reason: str) -> object: ...

    def stop(self, connection: str, at_ms: int) -> None: ...


class SilentConnection(Exception):
    """No frame arrived within the feed's silence timeout."""


class UnansweredSubscribe(Exception):
    """The venue answered neither our subscribe nor with data within its timeout."""


async def run_feed(
    spec: FeedSpec,
    sink: Sink,
    stats: ConnectionStats | None = None,
    *,
    backoff: Backoff | None = None,
    deduper: Deduper | None = None,
    alarm: Alarm | None = None,
    open_timeout: float = 10.0,
    watch: Watch | None = None,
    opens: OpenBudget | None = None,
    opened: bool = False,
) -> None:
    """Keep ``spec``'s connection alive forever (until cancelled), feeding events to ``sink``.

    Never raises anything but ``CancelledError``: every failure (refused, closed, silent,
    a normalizer bug) ends in a backoff and a new connection. Events whose size is unknown
    (``quantity is None``) are counted as ``unsized`` and not delivered. ``watch`` is told
    of every up, frame and down (see :class:`Watch`). With ``opens`` (the venue's cap on new
    connections a minute from this IP, shared by its feeds) every connection opened takes a
    slot first; ``opened``: the caller took the first one's.
    """
    stats = stats or ConnectionStats(spec.name)
    stats.exchange, stats.url = spec.exchange, spec.url
    backoff = backoff or Backoff()
    # Not `or`: an empty shared Deduper is falsy (it has a length) and would be replaced.
    deduper = deduper if deduper is not None else Deduper()
    alarm = alarm or Alarm()
    up: set[Link] = set()  # the connections subscribed now (two while handing over)
    tasks: set[asyncio.Task[float | None]] = set()
    predecessor: Link | None = None  # a connection being replaced, until its successor is up
    attempt = 0
    try:
        while True:
            if not up:  # (a connection being replaced still serves)
                stats.state = "connecting"
            if opens is not None and not opened:
                await opens.take()
            opened = False
            started = time.monotonic()
            link = Link(predecessor)
            task = asyncio.create_task(
                _connection(
                    spec, sink, stats, deduper, alarm, watch, open_timeout, link, up, backoff
                )
            )
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            # Until it ends, or asks to be replaced before the venue closes it.
            asking = asyncio.ensure_future(link.replacing.wait())
            try:
                await asyncio.wait((task, asking), return_when=asyncio.FIRST_COMPLETED)
            finally:
                asking.cancel()
            if not task.done():
                # The venue will close this connection soon: it keeps delivering while its
                # replacement connects, and is closed once the replacement is answered.
                stats.handovers += 1
                log.info("%s: %s; connecting its replacement", spec.name, link.reason)
                predecessor = link
            elif predecessor is not None and predecessor.ended:
                predecessor = None
            if time.monotonic() - started >= backoff.healthy_after:
                # A connection that served is replaced at once: venues close healthy sockets
                # on a schedule (Binance at 24 h, gateway restarts) and a wait would be a gap
                # in the feed. If that reconnect fails, the backoff starts from its first step.
                attempt, delay = 0, 0.0
            else:
                # A venue that refused the handshake with a Retry-After is not asked sooner.
                retry_after = task.result() if task.done() else None
                delay = backoff.delay_at_least(attempt, retry_after)
                attempt += 1
            if task.done():
                stats.reconnects += 1
                if not up:  # (not while a connection being replaced still serves)
                    stats.state = "backoff"
            await asyncio.sleep(delay)
    except asyncio.CancelledError:
        stats.state = "stopped"
        if watch is not None:
            watch.stop(spec.name, now_ms())
        raise
    finally:
        for running in list(tasks):
            running.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _connection(
    spec: FeedSpec,
    sink: Sink,
    stats: ConnectionStats,
    deduper: Deduper,
    alarm: Alarm,
    watch: Watch | None,
    open_timeout: float,
    link: Link,
    up: set[Link],
    backoff: Backoff,
) -> float | None:
    """One connection from its handshake to its end. Never raises but ``CancelledError``:
    a failure is counted and logged here, and tells ``watch`` of a down unless another
    connection of the feed is up (a handover's replacement, or the one it replaces).
    Returns the seconds the venue asked us to wait before trying again (the ``Retry-After``
    of a refused handshake: 429, Binance's 418, a 503), or None."""
    try:
        # No ping timeout: a busy event loop reads the pong late, behind a backlog of
        # frames, and a timeout then drops a healthy feed (and its events); the silence
        # watchdog below is what detects a dead connection.
        async with connect(
            spec.url,
            additional_headers=spec.headers or None,
            open_timeout=open_timeout,
            max_size=MAX_FRAME_BYTES,
            close_timeout=2,
            ping_timeout=None,
        ) as ws:
            stats.connects += 1
            stats.state = "connected"
            (log.debug if spec.quiet else log.info)("%s: connected to %s", spec.name, spec.url)
            recovery = _Recovery(
                spec.name, alarm, backoff.healthy_after, data_only=spec.data_timeout is not None
            )
            await _session(ws, spec, sink, stats, deduper, watch, link, up, recovery)
    except Exception as exc:  # every failure ends in a reconnect, never a crash
        up.discard(link)
        if link.handed_over:
            log.debug("%s: replaced connection closed (%s)", spec.name, _failure_kind(exc))
            return None
        retry_after = _retry_after(exc)
        _record_failure(
            spec, stats, exc, alarm, backoff.cap, serving=bool(up), retry_after=retry_after
        )
        if watch is not None and not up:
            watch.down(spec.name, spec.exchange, now_ms(), _failure_kind(exc))
        return retry_after
    finally:
        up.discard(link)
        link.ended = True
    return None


class _Recovery:
    """Re-arms the feed's alarm once its connection has proved itself: a frame that carried
    data, or any frame ``healthy_after`` seconds after it connected (the backoff's idea of a
    connection that served). Not on the connect itself: a venue that accepts the socket and
    then closes it, or acks the subscribe and goes silent, would otherwise log a WARNING per
    attempt, the same outage told again every backoff step.

    With ``data_only`` (a feed with a data watchdog) only data proves it: such a feed is cut
    for answering its keepalive while sending nothing, so frames past ``healthy_after`` are
    what its outage looks like, and would re-arm the alarm for a WARNING every data timeout.
    """

    def __init__(
        self, connection: str, alarm: Alarm, healthy_after: float, *, data_only: bool = False
    ) -> None:
        self.connection = connection
        self.alarm = alarm
        self.due = float("inf") if data_only else time.monotonic() + healthy_after
        self.done = False

    def frames(self, now: float, data: bool) -> None:
        """Frames arrived at ``now`` (monotonic); ``data``: one of them carried events."""
        if not self.done and (data or now >= self.due):
            self.done = True
            self.alarm.recovered(self.connection)


def _retry_after(exc: Exception) -> float | None:
    """The ``Retry-After`` of a refused opening handshake, in seconds (None: none given);
    bounded at :data:`MAX_UNAVAILABLE_RETRY_AFTER` unless a rate limit or ban."""
    if not isinstance(exc, websockets.InvalidStatus):
        return None
    value = exc.response.headers.get("Retry-After")
    seconds = retry_after_seconds(value, now=time.time())
    if seconds is None or exc.response.status_code in RATE_LIMITED:
        return seconds
    return min(seconds, MAX_UNAVAILABLE_RETRY_AFTER)


def _record_failure(
    spec: FeedSpec,
    stats: ConnectionStats,
    exc: Exception,
    alarm: Alarm,
    cap: float,
    *,
    serving: bool = False,
    retry_after: float | None = None,
) -> None:
    """Count and log a failed connection; ``serving``: another connection of the feed is up
    (a handover's replacement failed while the old one delivers), so it is no outage;
    ``retry_after``: the wait the venue asked for."""
    kind = _failure_kind(exc)
    stats.errors[kind] += 1
    if kind == "silent":
        stats.silent += 1
    asked = "" if retry_after is None else f" (retry after {retry_after:.4g} s)"
    stats.last_error = f"{kind}: {exc}{asked}"
    if serving:
        log.info(
            "%s: its replacement failed (%s: %s); still served meanwhile", spec.name, kind, exc
        )
        return
    # The first failure of an outage is logged loudly and the rest quietly: with no network
    # an exchange gets one clear line, not one per retry.
    if alarm.failed(spec.name):
        what = "cannot reach" if stats.state == "connecting" else "connection lost to"
        log.warning(
            "%s: %s %s (%s: %s%s); retrying with backoff up to %g s",
            spec.exchange or spec.name,
            what,
            spec.url,
            kind,
            exc,
            asked,
            cap,
        )
    else:
        log.debug("%s: still failing (%s: %s%s)", spec.name, kind, exc, asked)


async def _session(
    ws: ClientConnection,
    spec: FeedSpec,
    sink: Sink,
    stats: ConnectionStats,
    deduper: Deduper,
    watch: Watch | None,
    link: Link,
    up: set[Link],
    recovery: _Recovery,
) -> None:
    messages: list[str] | tuple[str, ...] = spec.subscribe_messages()
    resubscriber = None
    if spec.batching is not None:
        resubscriber = Resubscriber(
            spec.batching, retry_first=spec.retry_after, retry_cap=spec.retry_cap
        )
        messages = resubscriber.start(messages)
    stats.given_up.clear()  # this session subscribes everything again
    await _send_all(ws, messages, spec.subscribe_pause)
    up.add(link)
    if watch is not None:
        # Up once subscribed: from here on the venue sends us what happens.
        watch.up(spec.name, spec.exchange, now_ms())
    loop = asyncio.get_running_loop()
    end_of_life = (
        loop.call_later(
            max(0.0, spec.lifetime - spec.handover_lead),
            link.replace,
            f"{spec.exchange} closes connections at {spec.lifetime:g} s",
        )
        if spec.lifetime is not None
        else None
    )
    closer = asyncio.create_task(_close_when_retired(ws, link))
    pinger = (
        asyncio.create_task(_keepalive(ws, spec.keepalive, spec.keepalive_interval))
        if spec.keepalive
        else None
    )
    gave_up = asyncio.Event()  # set when a topic is given up: its retry may come first
    retrier = (
        asyncio.create_task(_retry_given_up(ws, spec, resubscriber, stats, gave_up))
        if resubscriber is not None
        else None
    )
    # A subscribe rebuilt from the catalog gains the contracts listed since we connected.
    follower = (
        asyncio.create_task(_follow_catalog(ws, spec, resubscriber, stats))
        if resubscriber is not None and not isinstance(spec.subscribe, tuple)
        else None
    )
    # No subscribe sent (a category with no symbols), no answer and no data to wait for: it
    # would be replaced as unanswered every subscribe_timeout (as silent every data_timeout)
    # for ever.
    subscribing = len(messages) > 0
    watchdog = Watchdog(
        spec.silence_timeout,
        spec.data_timeout if subscribing else None,
        spec.subscribe_timeout if subscribing and spec.subscribed is not None else None,
    )
    try:
        async with asyncio.timeout(None) as scope:
            # A replacement (a handover) waits for data as long as the feed has, not anew.
            replaced = link.predecessor
            watchdog.start(scope, replaced.last_data if replaced is not None else None)
            link.last_data = watchdog.last_data
            try:
                while True:
                    # Wait for one message, then take every one websockets already holds: at
                    # crash rates one socket read brings dozens, and each recv() is a chain of
                    # three coroutines even when it need not wait.
                    frames = [await ws.recv()]
                    frames += take_ready(ws)
                    received_at = now_ms()
                    stats.frames += len(frames)
                    if watch is not None:
                        watch.frame(spec.name, received_at)
                    now = stats.last_message_at = watchdog.last_frame = time.monotonic()
                    link.answered()  # a replacement the venue answered retires its predecessor
                    data = False
                    # A refusal worth asking again ends the connection, but only after the
                    # frames read with it: OKX sends it amid data, which would be lost.
                    refused: RetryableRefusal | None = None
                    for frame in frames:
                        if spec.answer is not None:
                            reply = reply_to(spec, frame, stats)
                            if reply is not None:
                                await ws.send(reply)
                                continue
                        if spec.learn is not None:
                            # Contracts first: a liquidation read after them is sized by them.
                            checked(spec.learn, frame, spec, stats, "contracts_error")
                        try:
                            delivered = deliver(frame, received_at, now, spec, sink, stats, deduper)
                        except RetryableRefusal as exc:
                            refused = refused or exc
                            continue
                        if delivered or _liveness_push(spec, frame, stats):
                            watchdog.last_data = link.last_data = now
                            data = watchdog.answered = True
                        elif not watchdog.answered and _answers_subscribe(spec, frame, stats):
                            watchdog.answered = True
                        elif spec.closing is not None:
                            replace_if_closing(spec, frame, stats, link)
                        # Event frames too: dYdX answers a subscribe with the market's recent
                        # trades, liquidations among them.
                        if resubscriber is not None:
                            step = resubscribe_step(spec, resubscriber, frame, now, stats)
                            if step is not None:
                                if step.given_up:
                                    gave_up.set()
                                await _send_all(ws, step.send, spec.subscribe_pause)
                    if refused is not None:
                        raise refused
                    recovery.frames(now, data)
            finally:
                watchdog.cancel()
    except TimeoutError:
        if not watchdog.expired:
            raise  # not the watchdog's: reported as a timeout, as before
        if watchdog.expired_by == "answer":
            raise UnansweredSubscribe(
                f"no answer to the subscribe in {spec.subscribe_timeout:g} s "
                "(connected, keepalive answered, nothing subscribed)"
            ) from None
        if watchdog.expired_by == "data":
            what = "no liquidation" if spec.liveness is None else "no liquidation or liveness push"
            raise SilentConnection(
                f"{what} for {spec.data_timeout:g} s, only keepalive answers "
                "(connected but sending no data)"
            ) from None
        raise SilentConnection(
            f"no frame for {spec.silence_timeout:g} s (connected but silent)"
        ) from None
    finally:
        if end_of_life is not None:
            end_of_life.cancel()
        for task in (pinger, retrier, closer, follower):
            if task is not None:
                task.cancel()
                # It dies with the connection; its own error is not the session's.
                with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                    await task


def _liveness_push(spec: FeedSpec, frame: bytes | str, stats: ConnectionStats) -> bool:
    """Whether ``frame`` is a push of the connection's liveness channel (asked only of frames
    that carried no liquidation): the venue is sending data, so the data watchdog is fed."""
    if spec.liveness is None:
        return False
    return bool(checked(spec.liveness, frame, spec, stats, "liveness_check_error"))


def _answers_subscribe(spec: FeedSpec, frame: bytes | str, stats: ConnectionStats) -> bool:
    """Whether ``frame`` is the venue's answer to our subscribe (asked only until one came)."""
    assert spec.subscribed is not None
    return bool(checked(spec.subscribed, frame, spec, stats, "subscribed_check_error"))


async def _close_when_retired(ws: ClientConnection, link: Link) -> None:
    """Close ``ws`` once its replacement has served a while (``ingest/handover.py``)."""
    await link.retirement()
    await ws.close(1000, "replaced")


async def _send_all(ws: ClientConnection, messages: Sequence[str], pause: float) -> None:
    for index, message in enumerate(messages):
        if index and pause:
            await asyncio.sleep(pause)
        await ws.send(message)


async def _retry_given_up(
    ws: ClientConnection,
    spec: FeedSpec,
    resubscriber: Resubscriber,
    stats: ConnectionStats,
    gave_up: asyncio.Event,
) -> None:
    """Ask the venue again for the topics it refused, each when the resubscriber says it is
    due (counted as ``errors["resubscribed"]``); ``gave_up`` wakes it for a new one."""
    while True:
        due = resubscriber.next_retry()
        wait = None if due is None else due - time.monotonic()
        if wait is None or wait > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await gave_up.wait()
            gave_up.clear()
            continue
        topics, messages = resubscriber.retry(time.monotonic())
        if not topics:
            continue
        why = f"asking {spec.exchange} again for {len(topics)} refused topic(s)"
        await _ask(ws, spec, stats, "resubscribed", why, topics, messages)


async def _follow_catalog(
    ws: ClientConnection, spec: FeedSpec, resubscriber: Resubscriber, stats: ConnectionStats
) -> None:
    """Every ``spec.follow_catalog`` seconds, subscribe on this socket the topics the catalog
    gained since the connection asked (a contract listed since), counted as
    ``errors["newly_listed"]``; their answers and refusals go to the resubscriber as the
    first subscribe's do. A failure to build the messages is counted, and tried again."""
    while True:
        await asyncio.sleep(spec.follow_catalog)
        try:
            topics, messages = resubscriber.extend(spec.subscribe_messages())
        except Exception as exc:  # a venue's bug must not end the session
            stats.errors["follow_catalog_error"] += 1
            log.debug("%s: could not rebuild the subscribe: %r", spec.name, exc)
            continue
        if not topics:
            continue
        why = f"subscribing {len(topics)} topic(s) listed since it connected"
        await _ask(ws, spec, stats, "newly_listed", why, topics, messages)


async def _ask(
    ws: ClientConnection,
    spec: FeedSpec,
    stats: ConnectionStats,
    counter: str,
    why: str,
    topics: tuple[str, ...],
    messages: Sequence[str],
) -> None:
    """Send ``messages`` asking for ``topics`` on this socket, counted in
    ``errors[counter]`` and logged with ``why``."""
    stats.errors[counter] += len(topics)
    log.info("%s: %s: %.300s", spec.name, why, ", ".join(topics))
    await _send_all(ws, messages, spec.subscribe_pause)


async def _keepalive(ws: ClientConnection, message: str | Message, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await ws.send(message if isinstance(message, str) else message())


#: Close codes websockets sends when a received frame breaks the protocol: 1002 (a protocol
#: error), 1007 (text that is not UTF-8), 1009 (over ``max_size``).
_FRAME_CLOSE_CODES = frozenset({1002, 1007, 1009})


def _closed_over_a_frame(exc: websockets.ConnectionClosed) -> bool:
    """We closed first, because the venue sent a frame we cannot accept: counted as
    ``invalid_frame``, apart from the venue closing on us (``closed``)."""
    sent = exc.sent
    we_first = exc.rcvd is None or exc.rcvd_then_sent is False
    return sent is not None and sent.code in _FRAME_CLOSE_CODES and we_first


def _failure_kind(exc: BaseException) -> str:
    if isinstance(exc, SilentConnection):
        return "silent"
    if isinstance(exc, UnansweredSubscribe):
        return "unanswered"
    if isinstance(exc, RetryableRefusal):
        return "refused_retry"
    if isinstance(exc, websockets.ConnectionClosed):
        return "invalid_frame" if _closed_over_a_frame(exc) else "closed"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, websockets.InvalidStatus):
        return f"http_{exc.response.status_code}"
    if isinstance(exc, OSError):
        return "unreachable"
    return type(exc).__name__
