"""Replay: history in seq order through the live cascade engine, into a strategy.

The loop is the live server's, with stream time instead of the wall clock: before each event,
``engine.tick`` runs for every whole second the stream crossed (the server ticks every
second), then the event is scored with ``engine.observe``, the broker learns its price, and the
strategy sees the event and then any alerts. Nothing reads ahead of the current event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field

from purpleflea.backtest.broker import Broker
from purpleflea.backtest.strategy import Strategy
from purpleflea.engine import CascadeEngine
from purpleflea.model import CascadeAlert, Liquidation
from purpleflea.store.base import Store


@dataclass(slots=True)
class Replay:
    """One backtest in progress: feed it events with :meth:`feed`, then :meth:`finish`."""

    engine: CascadeEngine
    strategy: Strategy
    broker: Broker
    alerts: list[CascadeAlert] = field(default_factory=list)
    events: int = 0
    first_ts: int = 0
    last_ts: int = 0
    _second: int = -1

    def feed(self, batch: Iterable[Liquidation]) -> None:
        engine, strategy, broker = self.engine, self.strategy, self.broker
        observe = engine.observe
        on_event = strategy.on_event
        on_tick: Callable[[int, Broker], None] | None = getattr(strategy, "on_tick", None)
        second = self._second
        count = 0
        for event in batch:
            ts = event.ts
            if ts // 1000 > second:
                if second < 0:
                    self.first_ts = ts
                else:
                    # Every second the stream crossed, as the live server's timer would.
                    for tick_second in range(second + 1, ts // 1000 + 1):
                        self._tick(tick_second * 1000, on_tick)
                second = ts // 1000
            score = observe(
                event.market, event.side, event.size_usd, event.price, ts, event.exchange
            )
            broker.mark(event.market, event.price, ts)
            on_event(event, score, broker)
            if engine.has_alerts():
                self._dispatch(engine.drain_alerts())
            count += 1
        self._second = second
        self.events += count
        if count:
            self.last_ts = max(self.last_ts, broker.now)

    def finish(self) -> None:
        """Tick once more past the last event and close what is still open."""
        if self._second >= 0:
            self._tick((self._second + 1) * 1000, getattr(self.strategy, "on_tick", None))
        self.broker.close_all("end of data")

    def _tick(self, now_ms: int, on_tick: Callable[[int, Broker], None] | None) -> None:
        self.broker.now = max(self.broker.now, now_ms)
        alerts = self.engine.tick(now_ms)
        if alerts:
            self._dispatch(alerts)
        if on_tick is not None:
            on_tick(now_ms, self.broker)

    def _dispatch(self, alerts: list[CascadeAlert]) -> None:
        self.alerts.extend(alerts)
        for alert in alerts:
            self.strategy.on_cascade(alert, self.broker)


async def store_pages(store: Store, *, page: int = 20_000) -> AsyncIterator[list[Liquidation]]:
    """Every stored event in seq order, read in pages with ``store.since``.

    The next page is read while the caller works on this one (the store reads in its own
    thread), so a replay waits on the disk only for the first page.
    """
    pending = asyncio.ensure_future(store.since(0, page))
    try:
        while True:
            events = await pending
            if not events:
                return
            pending = asyncio.ensure_future(store.since(events[-1].seq, page))
            yield events
    finally:
        if not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending
