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
import math
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import websockets
from websockets.asyncio.client import ClientConnection, connect

from purpleflea.clock import now_ms
from purpleflea.ingest.handover import Link
from purpleflea.ingest.resubscribe import Resubscriber, Step
from purpleflea.ingest.watchdog import Watchdog
from purpleflea.model import VenueLiquidation
from purpleflea.venues import FrameError
from purpleflea.venues.venue import Connection, Message
from purpleflea.websocket_ready import take_ready

log = logging.getLogger("purpleflea.ingest")

_T = TypeVar("_T")

Normalize = Callable[[bytes | str], list[VenueLiquidation]]
#: Receives each new (deduplicated, sized) event and the ms time it was received.
Sink = Callable[[VenueLiquidation, int], None]


class Watch(Protocol):
    """Told when a connection goes up (connected and subscribed), receives a frame, goes
    down (with the failure's kind) or stops; times in ms since the epoch. The uptime ledger
    (``ingest/uptime.py``) is one."""

    def up(self, connection: str, exchange: str, at_ms: int) -> object: ...

    def frame(self, connection: str, at_ms: int) -> None: ...

    def down(self, connection: str, exchange: str, at_ms: int, reason: str) -> object: ...

    def stop(self, connection: str, at_ms: int) -> None: ...


@dataclass(frozen=True, kw_only=True)
class FeedSpec(Connection):
    """A venue's :class:`~purpleflea.venues.venue.Connection` made runnable: the same
    exchange-specific data (pure, no I/O), with the URL it connects to (tests point it at
    loopback) and its normalizer bound to the live instrument catalog.

    ``subscribe`` and ``keepalive`` may be fixed text or functions called each time they are
    needed: subscriptions are then rebuilt from the catalog on every reconnect.
    """

    normalize: Normalize

    def subscribe_messages(self) -> tuple[str, ...]:
        return self.subscribe if isinstance(self.subscribe, tuple) else self.subscribe()


@dataclass
class Backoff:
    """Exponential backoff with jitter: delay ~ U(c/2, c), c = min(cap, base * 2**attempt).

    Half the ceiling is kept as a floor so that a dead network never turns into a busy loop,
    while the random half spreads many connections' retries apart.
    """

    base: float = 0.5
    cap: float = 30.0
    #: A connection that lived this long is replaced without waiting, and resets the
    #: attempt count.
    healthy_after: float = 30.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        ceiling: float = min(self.cap, self.base * 2 ** min(attempt, 30))
        return self.rng.uniform(ceiling / 2, ceiling)


@dataclass
class ConnectionStats:
    """Counters of one connection, read by the health endpoint.

    ``frames`` counts every message received (acks and pongs too); ``events`` the events
    handed to the sink; ``malformed`` frames the normalizer rejected; ``unsized`` events
    dropped because the instrument's contract size is unknown; ``silent`` connections
    replaced by the data watchdog; ``reconnects`` waits before connecting again;
    ``handovers`` connections replaced before the venue closed them (its notice, its
    schedule: ``ingest/handover.py``);
    ``errors["refused"]`` the exchange's error replies to our requests (a bad topic);
    ``errors["given_up"]`` topics left unsubscribed after their refusal, and ``given_up``
    those of the current session (the rest of a refused batch is subscribed again);
    ``errors["resubscribed"]`` given-up topics asked for again on their timer.
    """

    name: str
    exchange: str = ""
    url: str = ""
    state: str = "starting"
    connects: int = 0
    reconnects: int = 0
    frames: int = 0
    events: int = 0
    duplicates: int = 0
    replays: int = 0
    malformed: int = 0
    unsized: int = 0
    silent: int = 0
    handovers: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    given_up: list[str] = field(default_factory=list)
    last_error: str = ""
    last_message_at: float | None = None  # time.monotonic()

    def snapshot(self, now: float | None = None) -> dict[str, object]:
        now = time.monotonic() if now is None else now
        age = None if self.last_message_at is None else round(now - self.last_message_at, 3)
        return {
            "name": self.name,
            "exchange": self.exchange,
            "url": self.url,
            "state": self.state,
            "connects": self.connects,
            "reconnects": self.reconnects,
            "frames": self.frames,
            "events": self.events,
            "duplicates": self.duplicates,
            "replays": self.replays,
            "malformed": self.malformed,
            "unsized": self.unsized,
            "silent": self.silent,
            "handovers": self.handovers,
            "errors": dict(self.errors),
            "given_up": list(self.given_up),
            "last_error": self.last_error,
            "last_message_age_s": age,
        }


class Alarm:
    """Decides which connection failures deserve a WARNING: one per exchange per outage.

    Several connections of one exchange (Bybit linear and inverse, Gate's two settles) share
    one alarm, so a network outage logs one clear line per exchange, not one per connection
    and retry. The alarm re-arms once every connection that failed has connected again.
    """

    def __init__(self) -> None:
        self._failing: set[str] = set()

    def failed(self, connection: str) -> bool:
        """Record a failure; True if it is the first of an outage (log it loudly)."""
        first = not self._failing
        self._failing.add(connection)
        return first

    def recovered(self, connection: str) -> None:
        self._failing.discard(connection)


class Deduper:
    """Remembers event ids for ``ttl`` seconds (at most ``max_size`` of them).

    Every event passes two of these (the connection's and the pipeline's), so the common
    case is kept to a float comparison and a plain dict: ids map to their expiry, and a
    deque holds (expiry, id) in arrival order for forgetting the oldest.
    """

    def __init__(self, ttl: float = 900.0, max_size: int = 200_000) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self._expiry: dict[str, float] = {}
        self._order: deque[tuple[float, str]] = deque()
        # When the oldest id expires (inf: none held): most calls need not look at it.
        self._first_expiry = math.inf

    def seen(self, event_id: str, now: float) -> bool:
        """True if ``event_id`` was seen within the TTL; otherwise remember it."""
        expiry = self._expiry
        if now >= self._first_expiry or len(expiry) >= self.max_size:
            self._forget(now)
        if event_id in expiry:
            return True
        at = now + self.ttl
        expiry[event_id] = at
        self._order.append((at, event_id))
        if len(expiry) == 1:  # the only id held: the oldest
            self._first_expiry = at
        return False

    def _forget(self, now: float) -> None:
        """Drop the ids expired at ``now``, and the oldest ones beyond ``max_size - 1``."""
        expiry, order = self._expiry, self._order
        while order:
            at, oldest = order[0]
            if at > now and len(expiry) < self.max_size:
                self._first_expiry = at
                return
            order.popleft()
            del expiry[oldest]
        self._first_expiry = math.inf


class SilentConnection(Exception):
    """No frame arrived within the feed's silence timeout."""


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
) -> None:
    """Keep ``spec``'s connection alive forever (until cancelled), feeding events to ``sink``.

    Never raises anything but ``CancelledError``: every failure (refused, closed, silent,
    a normalizer bug) ends in a backoff and a new connection. Events whose size is unknown
    (``quantity is None``) are counted as ``unsized`` and not delivered. ``watch`` is told
    of every up, frame and down (see :class:`Watch`).
    """
    stats = stats or ConnectionStats(spec.name)
    stats.exchange, stats.url = spec.exchange, spec.url
    backoff = backoff or Backoff()
    deduper = deduper or Deduper()
    alarm = alarm or Alarm()
    up: set[Link] = set()  # the connections subscribed now (two while handing over)
    tasks: set[asyncio.Task[None]] = set()
    predecessor: Link | None = None  # a connection being replaced, until its successor is up
    attempt = 0
    try:
        while True:
            if not up:  # (a connection being replaced still serves)
                stats.state = "connecting"
            started = time.monotonic()
            link = Link(predecessor)
            task = asyncio.create_task(
                _connection(
                    spec, sink, stats, deduper, alarm, watch, open_timeout, link, up, backoff.cap
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
                delay = backoff.delay(attempt)
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
    cap: float,
) -> None:
    """One connection from its handshake to its end. Never raises but ``CancelledError``:
    a failure is counted and logged here, and tells ``watch`` of a down unless another
    connection of the feed is up (a handover's replacement, or the one it replaces)."""
    try:
        # No ping timeout: a busy event loop reads the pong late, behind a backlog of
        # frames, and a timeout then drops a healthy feed (and its events); the silence
        # watchdog below is what detects a dead connection.
        async with connect(
            spec.url,
            additional_headers=spec.headers or None,
            open_timeout=open_timeout,
            max_size=2**24,
            close_timeout=2,
            ping_timeout=None,
        ) as ws:
            stats.connects += 1
            stats.state = "connected"
            (log.debug if spec.quiet else log.info)("%s: connected to %s", spec.name, spec.url)
            alarm.recovered(spec.name)
            await _session(ws, spec, sink, stats, deduper, watch, link, up)
    except Exception as exc:  # every failure ends in a reconnect, never a crash
        up.discard(link)
        if link.handed_over:
            log.debug("%s: replaced connection closed (%s)", spec.name, _failure_kind(exc))
            return
        _record_failure(spec, stats, exc, alarm, cap, serving=bool(up))
        if watch is not None and not up:
            watch.down(spec.name, spec.exchange, now_ms(), _failure_kind(exc))
    finally:
        up.discard(link)
        link.ended = True


def _record_failure(
    spec: FeedSpec,
    stats: ConnectionStats,
    exc: Exception,
    alarm: Alarm,
    cap: float,
    *,
    serving: bool = False,
) -> None:
    """Count and log a failed connection; ``serving``: another connection of the feed is up
    (a handover's replacement failed while the old one delivers), so it is no outage."""
    kind = _failure_kind(exc)
    stats.errors[kind] += 1
    if kind == "silent":
        stats.silent += 1
    stats.last_error = f"{kind}: {exc}"
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
            "%s: %s %s (%s: %s); retrying with backoff up to %g s",
            spec.exchange or spec.name,
            what,
            spec.url,
            kind,
            exc,
            cap,
        )
    else:
        log.debug("%s: still failing (%s: %s)", spec.name, kind, exc)


async def _session(
    ws: ClientConnection,
    spec: FeedSpec,
    sink: Sink,
    stats: ConnectionStats,
    deduper: Deduper,
    watch: Watch | None,
    link: Link,
    up: set[Link],
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
    watchdog = Watchdog(spec.silence_timeout, spec.data_timeout)
    try:
        async with asyncio.timeout(None) as scope:
            watchdog.start(scope)
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
                    for frame in frames:
                        if spec.answer is not None:
                            reply = _answer(spec, frame, stats)
                            if reply is not None:
                                await ws.send(reply)
                                continue
                        if _deliver(frame, received_at, now, spec, sink, stats, deduper):
                            watchdog.last_data = now
                        elif spec.closing is not None:
                            _closing(spec, frame, stats, link)
                        # Event frames too: dYdX answers a subscribe with the market's recent
                        # trades, liquidations among them.
                        if resubscriber is not None:
                            step = _resubscribe(spec, resubscriber, frame, now, stats)
                            if step is not None:
                                if step.given_up:
                                    gave_up.set()
                                await _send_all(ws, step.send, spec.subscribe_pause)
            finally:
                watchdog.cancel()
    except TimeoutError:
        if not watchdog.expired:
            raise  # not the watchdog's: reported as a timeout, as before
        if watchdog.expired_by == "data":
            raise SilentConnection(
                f"no liquidation for {spec.data_timeout:g} s, only keepalive answers "
                "(connected but sending no data)"
            ) from None
        raise SilentConnection(
            f"no frame for {spec.silence_timeout:g} s (connected but silent)"
        ) from None
    finally:
        if end_of_life is not None:
            end_of_life.cancel()
        for task in (pinger, retrier, closer):
            if task is not None:
                task.cancel()
                # It dies with the connection; its own error is not the session's.
                with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                    await task


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
        stats.errors["resubscribed"] += len(topics)
        log.info(
            "%s: asking %s again for %d refused topic(s): %.300s",
            spec.name,
            spec.exchange,
            len(topics),
            ", ".join(topics),
        )
        await _send_all(ws, messages, spec.subscribe_pause)


def _resubscribe(
    spec: FeedSpec,
    resubscriber: Resubscriber,
    frame: bytes | str,
    now: float,
    stats: ConnectionStats,
) -> Step | None:
    """What to send again after ``frame`` if it refuses a batch (counted and logged)."""
    step = _checked(
        lambda f: resubscriber.answer(f, now), frame, spec, stats, "resubscribe_check_error"
    )
    if step is None:
        return None
    if step.send:
        log.info(
            "%s: %s refused a subscribe of %d topics; subscribing them again in %d message(s)%s",
            spec.name,
            spec.exchange,
            len(step.refused),
            len(step.send),
            f" without {', '.join(step.given_up)}" if step.given_up else "",
        )
    # A topic refused again on its retry is already listed and was logged loudly once.
    new = [topic for topic in step.given_up if topic not in stats.given_up]
    if new:
        stats.errors["given_up"] += len(new)
        stats.given_up.extend(new)
        log.warning(
            "%s: %s refused %s; not subscribed on this connection, asked again in %g s",
            spec.name,
            spec.exchange,
            ", ".join(new),
            spec.retry_after,
        )
    if len(new) < len(step.given_up):
        log.debug("%s: %s still refuses %s", spec.name, spec.exchange, ", ".join(step.given_up))
    if step.accepted:
        stats.given_up[:] = [topic for topic in stats.given_up if topic not in step.accepted]
        log.info(
            "%s: %s accepted %s on asking again",
            spec.name,
            spec.exchange,
            ", ".join(step.accepted),
        )
    return step


def _checked(
    check: Callable[[bytes | str], _T],
    frame: bytes | str,
    spec: FeedSpec,
    stats: ConnectionStats,
    error: str,
) -> _T | None:
    """``check(frame)``, a venue's reading of a frame that is not data (a ping, a refusal, a
    subscribe answer); an exception is counted as ``errors[error]`` and read as None: a bad
    frame must not end the session, and the normalizer judges it."""
    try:
        return check(frame)
    except Exception as exc:
        stats.errors[error] += 1
        log.debug("%s: %s on a frame: %r", spec.name, error.replace("_", " "), exc)
        return None


def _answer(spec: FeedSpec, frame: bytes | str, stats: ConnectionStats) -> str | None:
    assert spec.answer is not None
    return _checked(spec.answer, frame, spec, stats, "answer_error")


def _deliver(
    frame: bytes | str,
    received_at: int,
    now: float,
    spec: FeedSpec,
    sink: Sink,
    stats: ConnectionStats,
    deduper: Deduper,
) -> bool:
    """Normalize one frame and hand its new, sized events to ``sink``, counting the rest.
    ``received_at``: wall ms of the wakeup that took the frame; ``now``: its monotonic time
    (the dedupe's clock). True when the frame carried events (new or not): the venue is
    sending data, which is what the data watchdog waits for."""
    try:
        events = spec.normalize(frame)
    except FrameError as exc:
        stats.malformed += 1
        stats.errors["malformed_frame"] += 1
        stats.last_error = str(exc)
        log.debug("%s: skipped frame: %s", spec.name, exc)
        return False
    except Exception as exc:  # a normalizer bug: count it loudly, keep the connection
        stats.malformed += 1
        stats.errors["normalizer_error"] += 1
        stats.last_error = f"normalizer_error: {exc!r}"
        log.exception("%s: normalizer failed on a frame: %.200r", spec.name, frame)
        return False
    if not events:
        # Acks, pongs and heartbeats give no events; so does a refusal, which is the one
        # that must not pass as calm. Asked only here: event frames never pay for it.
        _refused(spec, frame, stats)
        return False
    for event in events:
        if event.quantity is None or event.size_usd is None:
            # Never publish a guessed size: the catalog lacks this contract (yet).
            stats.unsized += 1
            log.debug("%s: dropped %s, contract size unknown", spec.name, event.id)
            continue
        if deduper.seen(event.id, now):
            stats.duplicates += 1
            continue
        if event.replay:
            stats.replays += 1
        stats.events += 1
        try:
            sink(event, received_at)
        except Exception as exc:  # a consumer bug must not kill the connection
            stats.errors["sink_error"] += 1
            stats.last_error = f"sink_error: {exc!r}"
            log.exception("%s: event sink failed", spec.name)
    return True


def _refused(spec: FeedSpec, frame: bytes | str, stats: ConnectionStats) -> None:
    """Count and log ``frame`` if it is the exchange refusing a request (a bad topic, a
    subscription limit): the socket stays open and quiet, so nothing else would show it."""
    if spec.refusal is None:
        return
    refusal = _checked(spec.refusal, frame, spec, stats, "refusal_check_error")
    if refusal is not None:
        stats.errors["refused"] += 1
        stats.last_error = f"refused: {refusal}"
        log.warning("%s: %s refused a request: %.300s", spec.name, spec.exchange, refusal)


def _closing(spec: FeedSpec, frame: bytes | str, stats: ConnectionStats, link: Link) -> None:
    """Ask for ``link``'s replacement if ``frame`` is the venue's notice that it will close
    this connection soon."""
    assert spec.closing is not None
    notice = _checked(spec.closing, frame, spec, stats, "closing_check_error")
    if notice is not None:
        link.replace(f"{spec.exchange} will close the connection: {notice:.200}")


async def _keepalive(ws: ClientConnection, message: str | Message, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await ws.send(message if isinstance(message, str) else message())


def _failure_kind(exc: BaseException) -> str:
    if isinstance(exc, SilentConnection):
        return "silent"
    if isinstance(exc, websockets.ConnectionClosed):
        return "closed"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, websockets.InvalidStatus):
        return f"http_{exc.response.status_code}"
    if isinstance(exc, OSError):
        return "unreachable"
    return type(exc).__name__
