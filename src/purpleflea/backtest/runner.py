"""Replay: history in seq order through the live cascade engine, into a strategy.

The loop is the live server's, with stream time instead of the wall clock: before each event,
``engine.tick`` runs for every whole second the stream crossed (the server ticks every
second), then the event is scored with ``engine.observe``, the broker learns its price, and the
strategy sees the event and then any alerts. Nothing reads ahead of the current event.

Prices, by the live server's rule (:class:`~purpleflea.engine.market_price.MarketPrice`): with
``fill_priced`` (the exchanges whose ``price`` is a fill; :func:`~purpleflea.backtest.start`
passes ``registry.fill_priced()``), only a fill-priced event's price marks the broker and widens
the heatmap's swept range, once its market has had one: a bankruptcy price (Bybit, OKX) sits
~0.5 % from the market, and a strategy filled there would be filled where nobody traded. A
stored open interest row's mark marks the broker too when its time comes (the newest price
wins; a bankruptcy price never outranks a mark): a market whose liquidations stopped would
otherwise fill minutes later at its last liquidation's price. An event over :data:`LATE_MS`
behind the replay's clock (history out of time order) prices nothing but a market's first fill.

Open interest (each market's total of what the live server told the engine from its snapshots,
kept when it moved: see :mod:`purpleflea.store.oi_sampler`) is merged in by time:
every stored row with ``ts`` at or before an event's (or a tick's) is applied with
``engine.set_open_interest`` before that event is scored (or that second ticks), later ones
only after it, so the size term of the score, the broker and a strategy's ``on_tick`` see what
the live server would have seen, never the future.
:func:`replay_store` reads both from a store in pages and interleaves them.

With ``heatmaps`` (a :class:`~purpleflea.engine.heatmap_feed.HeatmapFeed` whose fuel sink is the
engine), the heatmap runs too, as on the live server: every (fill) price widens its market's
swept range, and every open interest row that kept its mark is a snapshot of the market (its
total, one instrument per market) through the feed, which tells the engine the open interest
and the fuel ahead. Rows without a mark (stores written before marks were kept) reach the
engine's open interest only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from purpleflea.backtest.broker import Broker
from purpleflea.backtest.strategy import Strategy
from purpleflea.engine import CascadeEngine
from purpleflea.engine.heatmap_feed import HeatmapFeed
from purpleflea.engine.market_price import MarketPrice
from purpleflea.model import CascadeAlert, Liquidation, instrument_of
from purpleflea.store.base import OpenInterest, Store
from purpleflea.store.pages import NEVER_MS as _NEVER  # "no open interest row is due"
from purpleflea.store.pages import open_interest_pages, store_pages

#: How far before the replay's clock an event counts as late (history out of time order), not
#: as the few seconds out of order that feeds deliver.
LATE_MS = 60_000


@dataclass(slots=True)
class Replay:
    """One backtest in progress: feed it events with :meth:`feed`, then :meth:`finish`."""

    engine: CascadeEngine
    strategy: Strategy
    broker: Broker
    heatmaps: HeatmapFeed | None = None
    #: Exchanges whose events' price is a fill (None: every one's).
    fill_priced: frozenset[str] | None = None
    alerts: list[CascadeAlert] = field(default_factory=list)
    #: Open interest rows the heatmap could not use: stored before marks were kept.
    rows_without_mark: int = 0
    #: Open interest rows read (none: the score has no size term, see the backtest command).
    open_interest_rows: int = 0
    #: Events more than :data:`LATE_MS` before the replay's clock (seq order going back in
    #: time: older history appended after newer), and the first one: (seq, ts, clock).
    late_events: int = 0
    first_late: tuple[int, int, int] | None = None
    events: int = 0
    first_ts: int = 0
    last_ts: int = 0
    _second: int = -1
    #: Open interest rows not applied yet (time order), from ``_oi_at`` on.
    _oi: list[OpenInterest] = field(default_factory=list)
    _oi_at: int = 0
    #: The ts at which the next event must stop for open interest (see _apply_open_interest).
    _oi_next: int = _NEVER
    #: Whether more rows may still be added (then the queue running dry means "load more").
    _oi_more: bool = False
    _oi_last: int = -_NEVER
    _prices: MarketPrice = field(init=False)
    #: Markets with a stored mark and no fill-priced event yet (see :meth:`feed`).
    _marked_unfilled: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._prices = MarketPrice(self.fill_priced)

    def add_open_interest(self, rows: Iterable[OpenInterest], *, more: bool = False) -> None:
        """Queue open interest rows (ascending ts, continuing the rows added before).

        ``more=True`` says further rows may follow: :meth:`feed` then stops at the first event
        it cannot score before they are added (see :func:`replay_store`).
        """
        last = self._oi_last
        queue = self._oi
        before = len(queue)
        for row in rows:
            if row.ts < last:
                raise ValueError(
                    f"open interest out of time order: {row.market} at ts {row.ts} "
                    f"after a row at ts {last}"
                )
            last = row.ts
            queue.append(row)
        self.open_interest_rows += len(queue) - before
        self._oi_last = last
        self._oi_more = more
        self._oi_next = self._due()

    def feed(self, batch: Iterable[Liquidation]) -> int:
        """Replay ``batch`` (ascending seq); returns how many of its events were replayed.

        That is all of them unless open interest rows are still to come (``more=True`` in
        :meth:`add_open_interest`) and one of them may be due before the next event: add them
        and feed the rest of the batch again.
        """
        engine, strategy, broker = self.engine, self.strategy, self.broker
        observe = engine.observe
        on_event = strategy.on_event
        on_tick: Callable[[int, Broker], None] | None = getattr(strategy, "on_tick", None)
        note_price = self.heatmaps.note_price if self.heatmaps is not None else None
        counts = self._prices.counts
        second = self._second
        oi_next = self._oi_next
        count = 0
        is_fill = self._prices.is_fill
        marked = self._marked_unfilled
        prices = broker.prices
        for event in batch:
            ts = event.ts
            late = False
            if ts // 1000 > second:
                if second < 0:
                    self.first_ts = ts
                    second = ts // 1000
                else:
                    # Every second the stream crossed, as the live server's timer would, each
                    # after the open interest stored at or before it and before any later row.
                    stalled = False
                    for tick_second in range(second + 1, ts // 1000 + 1):
                        now = tick_second * 1000
                        if now >= oi_next:
                            oi_next = self._apply_open_interest(now)
                            if oi_next <= now:
                                stalled = True  # rows at or before now may still be unread
                                break
                        self._tick(now, on_tick)
                        second = tick_second
                    if stalled:
                        break
            elif ts < second * 1000 - LATE_MS:
                self._late(event)
                late = True
            if ts >= oi_next:
                # Rare (once per snapshot time): the only per-event cost is the comparison.
                oi_next = self._apply_open_interest(ts)
                if oi_next <= ts:
                    break  # rows at or before ts may still be unread
            market = event.market
            priced = counts(market, event.exchange)
            if priced and note_price is not None:
                note_price(market, event.price)
            score = observe(market, event.side, event.size_usd, event.price, ts, event.exchange)
            if (
                priced
                and not (marked and market in marked and not is_fill(event.exchange))
                # A late event's price is the market's of minutes or days ago, not now's: it
                # would move a fill at the replay's (frozen) clock (only a market's first).
                and not (late and market in prices)
            ):
                broker.mark(market, event.price, ts)
            else:
                broker.advance(ts)
            on_event(event, score, broker)
            if engine.has_alerts():
                self._dispatch(engine.drain_alerts())
            count += 1
        self._second = second
        self._oi_next = oi_next
        self.events += count
        if count:
            self.last_ts = max(self.last_ts, broker.now)
        return count

    def _late(self, event: Liquidation) -> None:
        """Count an event from well before the replay's clock: the engine scores it at the
        latest time it has seen (it takes events slightly out of order), not at its own."""
        self.late_events += 1
        if self.first_late is None:
            self.first_late = (event.seq, event.ts, self.broker.now)

    def _apply_open_interest(self, ts: int) -> int:
        """Apply every queued row with ts at or before ``ts``; returns the next due ts."""
        queue, at = self._oi, self._oi_at
        set_open_interest = self.engine.set_open_interest
        heatmaps = self.heatmaps
        broker = self.broker
        end = len(queue)
        while at < end and queue[at].ts <= ts:
            row = queue[at]
            if row.mark_price > 0:
                # The market's mark, newer than every event replayed so far: the broker's
                # price until a newer fill (a bankruptcy price never outranks it).
                broker.mark(row.market, row.mark_price, row.ts)
                if not self._prices.has_fill(row.market):
                    self._marked_unfilled.add(row.market)
            if heatmaps is None:
                # A row is the market's total, so it takes the engine's one default instrument.
                set_open_interest(row.market, row.open_interest_usd)
            else:
                snapshot = row.snapshot()
                if row.mark_price > 0:
                    heatmaps.on_snapshot(snapshot)  # tells the engine, as live
                else:
                    set_open_interest(row.market, row.open_interest_usd, instrument_of(snapshot))
                    self.rows_without_mark += 1
            at += 1
        if at == end:
            queue.clear()  # the memory of one page at most
            at = 0
        self._oi_at = at
        return self._due()

    def _due(self) -> int:
        if self._oi_at < len(self._oi):
            return self._oi[self._oi_at].ts
        # Dry but more to come: the next page may hold rows at the last ts seen, so any
        # event from that ts on must wait for it.
        return self._oi_last if self._oi_more else _NEVER

    def finish(self) -> None:
        """Tick once more past the last event and close what is still open; orders the data
        ended before fill at the last prices."""
        if self._second >= 0:
            self._tick((self._second + 1) * 1000, getattr(self.strategy, "on_tick", None))
        self.broker.close_all("end of data")
        self.broker.fill_pending()

    def _tick(self, now_ms: int, on_tick: Callable[[int, Broker], None] | None) -> None:
        self.broker.advance(now_ms)
        alerts = self.engine.tick(now_ms)
        if alerts:
            self._dispatch(alerts)
        if on_tick is not None:
            on_tick(now_ms, self.broker)

    def _dispatch(self, alerts: list[CascadeAlert]) -> None:
        self.alerts.extend(alerts)
        for alert in alerts:
            self.strategy.on_cascade(alert, self.broker)


async def replay_store(
    replay: Replay,
    store: Store,
    *,
    page: int = 20_000,
    on_page: Callable[[list[Liquidation]], None] | None = None,
) -> None:
    """Feed ``replay`` every stored event and, interleaved by time, the stored open interest.

    Both are read in pages of ``page``, so memory stays flat whatever the store's size;
    ``on_page`` sees each page of events once it has been replayed (progress reporting).
    """
    oi_pages = open_interest_pages(store, page=page)
    replay.add_open_interest((), more=True)
    try:
        async for events in store_pages(store, page=page):
            done = replay.feed(events)
            while done < len(events):
                rows = await anext(oi_pages, None)
                replay.add_open_interest(rows or (), more=rows is not None)
                done += replay.feed(events[done:])
            if on_page is not None:
                on_page(events)
    finally:
        await oi_pages.aclose()
