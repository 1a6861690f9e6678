"""The tracker's spine: sequence, score, persist, then publish.

Sources (live exchanges, the simulator, a replay file) hand :class:`Tracker` venue events
through :meth:`Tracker.submit`, a plain non-blocking call. One flush task takes everything
pending, assigns each new event the next ``seq`` and its cascade score, appends the batch to
the store and only then publishes it on the bus: a ``seq`` a client has seen is always on
disk (the resume guarantee across restarts). Cascade alerts share the same ``seq`` space, so
one cursor resumes both channels.

When the store fails (a full disk, a lost database), the batch keeps the seqs it was given and
is retried with exponential backoff until it is stored: seqs stay gapless, and nothing, alerts
included, is published before it is on disk. Meanwhile new events wait in a bounded buffer
(``buffer_limit``); once it is full, further events are dropped and counted
(``dropped_buffer_full``) instead of growing memory without end. The outage is logged once
when it starts and once when it ends (:class:`~purpleflea.server.writes.WriteHealth`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncGenerator, Sequence
from typing import Protocol

import msgspec

from purpleflea.bus.base import Bus, Message, cascade_frame, liquidation_frame
from purpleflea.engine.heatmap_feed import FuelSink
from purpleflea.ingest.connection import Deduper
from purpleflea.model import (
    CascadeAlert,
    Liquidation,
    MarketSnapshot,
    Side,
    UnsizedLiquidation,
    VenueLiquidation,
    publish,
)
from purpleflea.server.writes import WriteHealth
from purpleflea.store.base import OpenInterest, Store
from purpleflea.store.oi_sampler import HEARTBEAT_MS
from purpleflea.store.pages import NEVER_MS, open_interest_pages, store_pages
from purpleflea.venues import registry

log = logging.getLogger("purpleflea.pipeline")


class Scorer(Protocol):
    """The cascade engine as the pipeline uses it (see :mod:`purpleflea.engine.cascade`)."""

    def observe(
        self, market: str, side: Side, size_usd: float, price: float, ts: int, exchange: str
    ) -> int: ...

    def drain_alerts(self) -> list[CascadeAlert]: ...

    def tick(self, now_ms: int) -> list[CascadeAlert]: ...


class SnapshotSink(Protocol):
    """The heatmap side of the tracker (see :mod:`purpleflea.engine.heatmap_feed`)."""

    def on_snapshot(self, snapshot: MarketSnapshot) -> None: ...

    def note_price(self, market: str, price: float) -> None: ...


#: Open interest rows read per page while warming.
_OI_PAGE = 10_000


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class MarketState(msgspec.Struct, kw_only=True):
    """What the tracker has seen of one market since it started."""

    last_price: float
    last_ts: int
    exchanges: set[str]


class Sequenced(msgspec.Struct, kw_only=True):
    """A batch with its seqs and scores, on its way to the store and then to the bus.

    ``stored`` is set once the events are on disk (the ones new by id), ``alerts_stored`` once
    the alerts are: a retry after a failure resumes at the step that failed.
    """

    events: list[Liquidation]
    alerts: list[CascadeAlert]
    stored: list[Liquidation] | None = None
    alerts_stored: bool = False


class Tracker:
    """Sequences venue events into published ones; see the module docstring."""

    def __init__(
        self,
        store: Store,
        bus: Bus,
        *,
        scorer: Scorer | None = None,
        heatmap: SnapshotSink | None = None,
        batch_limit: int = 2_000,
        coalesce_s: float = 0.002,
        buffer_limit: int = 200_000,
        retry_initial_s: float = 0.05,
        retry_max_s: float = 5.0,
    ) -> None:
        if buffer_limit < 1:
            raise ValueError(f"Tracker buffer_limit must be at least 1, got {buffer_limit}")
        self.store = store
        self.bus = bus
        self.scorer = scorer
        self.heatmap = heatmap
        self.batch_limit = batch_limit
        self.coalesce_s = coalesce_s
        #: Events waiting to be sequenced at most; beyond it, new ones are dropped (counted).
        self.buffer_limit = buffer_limit
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.writes = WriteHealth()
        #: Monotonic time of the last event submitted (health: is the source still talking).
        self.last_received: float | None = None
        self.started = False
        self._buffer_full = False
        self._dropped_at_outage = 0
        self.counters: Counter[str] = Counter()
        self.markets: dict[str, MarketState] = {}
        self.clock_ms = 0
        self._pending: list[tuple[VenueLiquidation, int]] = []
        self._wakeup = asyncio.Event()
        self._deduper = Deduper(ttl=3_600.0, max_size=500_000)
        self._next_seq = 1
        self._published_seq = 0
        self._in_flight = 0
        self._task: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        # Sequencing, persisting and publishing happen under one lock so that the bus sees
        # seqs in ascending order (a client's resume cursor never skips an unseen seq).
        self._serial = asyncio.Lock()

    @property
    def last_seq(self) -> int:
        """The highest seq published: everything at or below it is stored and on the bus.

        Not the highest *assigned*: a batch between sequencing and publishing holds seqs a
        new stream client must still receive, so its live start cursor may not pass them.
        """
        return self._published_seq

    async def start(self, *, tick_interval: float = 1.0, warm_events: int = 200_000) -> None:
        self._next_seq = await self.store.last_seq() + 1
        self._published_seq = self._next_seq - 1
        if self.scorer is not None and warm_events > 0:
            await self._warm(warm_events)
        self._task = asyncio.create_task(self._flush_loop(), name="tracker-flush")
        if self.scorer is not None:
            self._ticker = asyncio.create_task(self._tick_loop(tick_interval), name="tracker-tick")
        self.started = True

    async def _warm(self, limit: int) -> None:
        """Replay the newest stored events through the scorer, so that after a restart each
        market is scored against its own baseline rather than a cold prior, with the stored
        open interest interleaved by time when the scorer takes it (so the size term is on
        from the first live event, not only after the next snapshots). Alerts raised while
        warming were already published before the restart: they are dropped."""
        assert self.scorer is not None
        cursor = max(0, self._next_seq - 1 - limit)
        sizes = self.scorer if isinstance(self.scorer, FuelSink) else None
        oi: AsyncGenerator[list[OpenInterest], None] | None = None
        rows: list[OpenInterest] = []
        warmed = 0
        try:
            async for page in store_pages(self.store, after=cursor, page=10_000):
                if sizes is not None and oi is None:
                    # From a heartbeat before the first event: every market's value then is in.
                    start = page[0].ts - HEARTBEAT_MS
                    oi = open_interest_pages(self.store, start_ms=start, page=_OI_PAGE)
                    rows = await anext(oi, [])
                for event in page:
                    while rows and rows[0].ts <= event.ts:
                        rows = await self._apply_open_interest(rows, event.ts, oi)
                    self.scorer.observe(
                        event.market,
                        event.side,
                        event.size_usd,
                        event.price,
                        event.ts,
                        event.exchange,
                    )
                    self._remember(event)
                self.scorer.drain_alerts()
                warmed += len(page)
            while rows:  # what came after the last stored event: current when going live
                rows = await self._apply_open_interest(rows, NEVER_MS, oi)
        finally:
            if oi is not None:
                await oi.aclose()
        if warmed:
            log.info("cascade engine warmed with the last %d stored events", warmed)

    async def _apply_open_interest(
        self,
        rows: list[OpenInterest],
        until: int,
        pages: AsyncGenerator[list[OpenInterest], None] | None,
    ) -> list[OpenInterest]:
        """Apply ``rows`` (a page, time order) up to ``until``; returns what is left, the next
        page when this one is used up."""
        assert isinstance(self.scorer, FuelSink)
        done = 0
        for row in rows:
            if row.ts > until:
                break
            self.scorer.set_open_interest(row.market, row.open_interest_usd)
            done += 1
        if done < len(rows) or pages is None:
            return rows[done:]
        return await anext(pages, [])

    async def stop(self, *, grace_s: float = 2.0) -> None:
        """Store and publish what is pending, then stop. With the store failing, waits at
        most ``grace_s`` for it to come back: a shutdown is not held hostage by a full disk,
        and what is still unstored then is dropped (counted and logged once)."""
        deadline = time.monotonic() + grace_s
        while not self._idle.is_set() and self._task is not None and not self._task.done():
            if self.writes.failing and time.monotonic() >= deadline:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), 0.1)
        self.started = False
        for task in (self._ticker, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        lost = len(self._pending) + self._in_flight
        if lost:
            self.counters["dropped_at_shutdown"] += lost
            log.error("stopped with %d events not stored (the store was failing)", lost)

    def submit(self, event: VenueLiquidation, received_at: int | None = None) -> None:
        """Queue one venue event for sequencing (never blocks, never raises).

        When ``buffer_limit`` events already wait (the store is failing or too slow), the
        event is dropped and counted as ``dropped_buffer_full``.
        """
        self.counters["received"] += 1
        self.last_received = time.monotonic()
        if len(self._pending) >= self.buffer_limit:
            self.counters["dropped_buffer_full"] += 1
            if not self._buffer_full:
                self._buffer_full = True
                log.error(
                    "ingest buffer full (%d events waiting for the store): dropping new "
                    "events until it drains (counted as dropped_buffer_full)",
                    len(self._pending),
                )
            return
        self._pending.append((event, received_at if received_at is not None else _now_ms()))
        self._idle.clear()
        self._wakeup.set()

    @property
    def buffered(self) -> int:
        """Events accepted but not yet stored: waiting, or in the batch being written."""
        return len(self._pending) + self._in_flight

    def on_snapshot(self, snapshot: MarketSnapshot) -> None:
        """Open interest and mark price from a poller or the simulator."""
        self.counters["snapshots"] += 1
        if self.heatmap is not None:
            try:
                self.heatmap.on_snapshot(snapshot)
            except ValueError as exc:
                self.counters["bad_snapshots"] += 1
                log.debug("snapshot rejected: %s", exc)

    def advance_clock(self, now_ms: int) -> None:
        """A source's notion of now (the simulator runs its own clock)."""
        self.clock_ms = max(self.clock_ms, now_ms)

    async def drain(self) -> None:
        """Wait until everything submitted so far is persisted and published."""
        if self._task is None or self._task.done():
            return  # not running: nothing will ever be flushed, so do not wait for it
        await self._idle.wait()

    async def _flush_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            if self.coalesce_s > 0:
                # Let the events arriving in the next moment join this batch: one store
                # transaction and, for batching clients, one frame per client for all of
                # them, instead of one of each per event (at a cost of ~2 ms of latency).
                await asyncio.sleep(self.coalesce_s)
            self._wakeup.clear()
            while self._pending:
                batch = self._pending[: self.batch_limit]
                del self._pending[: self.batch_limit]
                self._in_flight = len(batch)
                try:
                    async with self._serial:
                        await self._commit(self._sequence(batch))
                except Exception:  # a bug, not the store (_commit retries those): keep serving
                    self.counters["flush_errors"] += len(batch)
                    log.exception("could not sequence a batch of %d events", len(batch))
                self._in_flight = 0
            self._caught_up()
            self._idle.set()

    def _caught_up(self) -> None:
        """Everything submitted is stored: the end of an outage (logged once) and of a full
        buffer. Not at the first write that works: a disk with a few bytes free would flap."""
        dropped = self.counters["dropped_buffer_full"] - self._dropped_at_outage
        if self.writes.failing:
            self.writes.succeeded(
                "events", summary=f"backlog stored, {dropped} events dropped (buffer full)"
            )
        elif self._buffer_full:
            log.warning("ingest buffer drained: %d events were dropped while full", dropped)
        self._buffer_full = False
        self._dropped_at_outage = self.counters["dropped_buffer_full"]

    async def _commit(self, batch: Sequenced) -> None:
        """Persist ``batch`` (retried with exponential backoff until the store takes it, under
        the same seqs), then publish it. Runs under ``_serial``."""
        delay = self.retry_initial_s
        while True:
            try:
                await self._persist(batch)
                break
            except Exception as exc:
                self.counters["store_write_errors"] += 1
                self.writes.failed(
                    "events",
                    exc,
                    holding=f"{len(batch.events)} events and {len(batch.alerts)} alerts held, "
                    f"new events buffered up to {self.buffer_limit}",
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
        assert batch.stored is not None
        if not self._pending:
            self._caught_up()
        try:
            await self._publish(batch.stored, batch.alerts)
        except Exception as exc:  # stored: clients get it from the store on resume
            self.counters["publish_errors"] += 1
            log.error("bus: could not publish a stored batch: %s", exc)

    async def _persist(self, batch: Sequenced) -> None:
        """Events first, then the alerts about them: an alert is never stored before the
        events it is about."""
        if batch.stored is None:
            batch.stored = await self.store.append(batch.events)
            self.counters["duplicates"] += len(batch.events) - len(batch.stored)
        if batch.alerts and not batch.alerts_stored:
            await self.store.append_cascades(batch.alerts)
        batch.alerts_stored = True

    def _sequence(self, batch: Sequence[tuple[VenueLiquidation, int]]) -> Sequenced:
        """Dedupe, give each new event the next seq and its score, and each alert it caused
        the seqs right after it (no I/O: the seqs are final, whatever the store does next)."""
        events: list[Liquidation] = []
        alerts: list[CascadeAlert] = []
        now = time.monotonic()
        for venue, received_at in batch:
            if self._deduper.seen(venue.id, now):
                self.counters["duplicates"] += 1
                continue
            try:
                event = publish(
                    venue,
                    seq=self._next_seq,
                    received_at=received_at,
                    coverage=registry.coverage_of(venue.exchange),
                )
            except UnsizedLiquidation as exc:
                self.counters["unsized"] += 1
                log.debug("%s", exc)
                continue
            self._next_seq += 1
            if self.scorer is not None:
                event, caused = self._score(event)
                # An alert takes the seqs right after the event that caused it.
                alerts.extend(self._assign(caused))
            events.append(event)
            self._remember(event)
        return Sequenced(events=events, alerts=alerts)

    def _score(self, event: Liquidation) -> tuple[Liquidation, list[CascadeAlert]]:
        """The event with its cascade score, and the alerts it caused.

        A scorer bug costs the event its score (0), never the event itself.
        """
        assert self.scorer is not None
        try:
            score = self.scorer.observe(
                event.market, event.side, event.size_usd, event.price, event.ts, event.exchange
            )
            alerts = self.scorer.drain_alerts()
        except Exception:
            self.counters["scorer_errors"] += 1
            log.exception("cascade scorer failed on %s", event.id)
            return event, []
        return msgspec.structs.replace(event, cascade_score=score), alerts

    def _assign(self, alerts: list[CascadeAlert]) -> list[CascadeAlert]:
        sequenced = []
        for alert in alerts:
            sequenced.append(msgspec.structs.replace(alert, seq=self._next_seq))
            self._next_seq += 1
        return sequenced

    def _remember(self, event: Liquidation) -> None:
        self.clock_ms = max(self.clock_ms, event.ts)
        if self.heatmap is not None:
            self.heatmap.note_price(event.market, event.price)
        state = self.markets.get(event.market)
        if state is None:
            self.markets[event.market] = MarketState(
                last_price=event.price, last_ts=event.ts, exchanges={event.exchange}
            )
        else:
            if event.ts >= state.last_ts:
                state.last_price = event.price
                state.last_ts = event.ts
            state.exchanges.add(event.exchange)

    async def _publish(self, events: Sequence[Liquidation], alerts: Sequence[CascadeAlert]) -> None:
        items: list[tuple[int, Message]] = [
            (e.seq, Message("liquidations", e.seq, e, liquidation_frame(e))) for e in events
        ]
        items += [(a.seq, Message("cascades", a.seq, a, cascade_frame(a))) for a in alerts]
        items.sort(key=lambda pair: pair[0])
        for seq, message in items:
            await self.bus.publish(message)
            self._published_seq = max(self._published_seq, seq)
        self.counters["published"] += len(events)
        self.counters["cascade_alerts"] += len(alerts)

    async def _tick_loop(self, interval: float) -> None:
        assert self.scorer is not None
        while True:
            await asyncio.sleep(interval)
            # Live: the wall clock; a simulator running faster than real time moves clock_ms.
            self.clock_ms = max(self.clock_ms, _now_ms())
            async with self._serial:
                try:
                    alerts = self._assign(self.scorer.tick(self.clock_ms))
                except Exception:
                    self.counters["tick_errors"] += 1
                    log.exception("cascade tick failed")
                    continue
                if alerts:
                    await self._commit(Sequenced(events=[], alerts=alerts, stored=[]))
