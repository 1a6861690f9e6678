"""Bulk generation of simulated history into a store, as fast as the machine allows.

History runs the same simulator as the live feed with coarser steps (1 s steps, 5-minute
blocks instead of 250 ms and 1 minute) and skips the per-step objects: each block's events go
straight from arrays to published :class:`~purpleflea.model.Liquidation` structs. Each market's
open interest (its listings' sum, at the end of each 5-minute block) goes through the same
:class:`~purpleflea.store.oi_sampler.OpenInterestSampler` rule as the live server's
(:class:`~purpleflea.store.oi_sampler.TotalsSampler`, every market at once), so the store
keeps each market's total when it moved, and a backtest of simulated history has the size term
as a backtest of live history does.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, suppress
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, NoReturn

import numpy as np

from purpleflea.clock import now_ms, utc_iso
from purpleflea.model import Liquidation, Side, VenueLiquidation, to_liquidation
from purpleflea.progress import Progress
from purpleflea.sim.config import event_id_prefix
from purpleflea.sim.events import RawBlock
from purpleflea.sim.history_child import ChildProducer, Request
from purpleflea.sim.history_columns import (
    COVERAGE,
    Chunk,
    Layout,
    Simulated,
    Totals,
    received_at,
)
from purpleflea.sim.process import DAY_MS, DEFAULT_START_MS, SimConfig, Simulator
from purpleflea.sim.throttle import snapshot_throttle
from purpleflea.sim.truth import TrueCascade
from purpleflea.store.base import Query, Store
from purpleflea.store.bulk import EventColumns
from purpleflea.store.oi_sampler import KeptTotals, TotalsSampler
from purpleflea.store.seqmark import mark_floor

if TYPE_CHECKING:
    from purpleflea.store.sqlite import SQLiteBulkLoad

HISTORY_STEP_MS = 1_000
HISTORY_BLOCK_MS = 300_000
#: Events are appended to the store in batches of about this many.
BATCH = 50_000

Scorer = Callable[[VenueLiquidation], int]


@dataclass(frozen=True, slots=True)
class HistorySummary:
    """What :func:`generate_history` wrote."""

    events: int
    markets: int  # markets with at least one event
    notional_usd: float
    first_seq: int
    last_seq: int
    start_ms: int
    end_ms: int
    wall_s: float
    cascades: tuple[TrueCascade, ...]
    #: The store's last event when it held the start of this very history (an interrupted
    #: run): the history went on after it.
    resumed_after: Liquidation | None = None


def history_config(
    *, seed: int = 0, n_markets: int = 275, start_ms: int = DEFAULT_START_MS, **knobs: float
) -> SimConfig:
    """The simulator configuration :func:`generate_history` uses."""
    return SimConfig(
        seed=seed,
        n_markets=n_markets,
        start_ms=start_ms,
        step_ms=HISTORY_STEP_MS,
        block_ms=HISTORY_BLOCK_MS,
        snapshot_ms=HISTORY_BLOCK_MS,
        **knobs,  # type: ignore[arg-type]
    )


def blocks(sim: Simulator, days: float) -> Iterator[RawBlock]:
    """The simulator's blocks covering ``days`` of simulated time."""
    count = round(days * DAY_MS / sim.config.block_ms)
    for _ in range(count):
        yield sim.next_block()


def published(
    sim: Simulator, raw: RawBlock, first_seq: int, scorer: Scorer | None = None
) -> list[Liquidation]:
    """The block's events as published events with consecutive seqs from ``first_seq``.

    ``received_at`` is the event time plus a deterministic 40-199 ms of feed latency.
    """
    coverage = COVERAGE
    if scorer is not None:
        # Scored: the simulator's own venue events, each published with the scorer's verdict.
        scored: list[Liquidation] = []
        for j, venue in enumerate(sim.venue_events(raw)):
            seq = first_seq + j
            assert venue.ts is not None  # the simulator stamps every event
            scored.append(
                to_liquidation(
                    venue,
                    seq=seq,
                    received_at=received_at(venue.ts, seq),
                    coverage=coverage[venue.exchange],
                    cascade_score=scorer(venue),
                )
            )
        return scored
    # Unscored (the bulk path): straight from the arrays to published events, with no venue
    # struct in between.
    prefix = event_id_prefix(sim.config)
    names, specs = sim.market_names, sim.markets
    sides: tuple[Side, Side] = ("short", "long")
    rows = zip(
        raw.ts.tolist(),
        raw.market.tolist(),
        raw.listing.tolist(),
        raw.side.tolist(),
        raw.price.tolist(),
        raw.quantity.tolist(),
        strict=True,
    )
    out: list[Liquidation] = []
    for j, (ts, m, li, side, price, qty) in enumerate(rows):
        seq = first_seq + j
        listing = specs[m].listings[li]
        out.append(
            Liquidation(
                id=f"{prefix}{raw.first_n + j}",
                seq=seq,
                exchange=listing.exchange,
                symbol=listing.symbol,
                market=names[m],
                side=sides[side > 0],
                price=price,
                quantity=qty,
                size_usd=price * qty,
                ts=ts,
                received_at=received_at(ts, seq),
                coverage=coverage[listing.exchange],
            )
        )
    return out


class Producer:
    """The simulation side of :func:`generate_history`: runs blocks until a batch is full.

    For a bulk load it runs in a child process (:mod:`purpleflea.sim.history_child`);
    otherwise on a worker thread while the event loop writes the previous batch (SQLite
    releases the GIL for much of its work, so the two overlap partly); only that thread
    touches the simulator, the sampler and the scorer, one chunk at a time.
    """

    def __init__(
        self,
        sim: Simulator,
        days: float,
        first_seq: int,
        scorer: Scorer | None,
        batch: int,
        *,
        columns: bool = False,
        after: Liquidation | None = None,
    ) -> None:
        if columns and scorer is not None:
            raise ValueError("scored events are built one by one: no columns")
        if after is not None and scorer is not None:
            raise ValueError("a scorer must see every event: no resuming")
        self.sim = sim
        #: The stored event of this history the events go on after (see :meth:`_unstored`).
        self._after = after
        self._after_n = -1 if after is None else int(after.id.rsplit("-", 1)[1])
        self.columns = columns
        self.seq = first_seq
        self.scorer = scorer
        self.batch = batch
        self.notional = 0.0
        self.active = np.zeros(len(sim.market_names), dtype=bool)
        self.layout = Layout.of(sim)
        self._blocks = blocks(sim, days)
        self._sampler = TotalsSampler(sim.market_names)
        # History is what the feeds would have published: the snapshot venues thinned.
        self._throttle = snapshot_throttle(sim)

    def next_chunk(self) -> Chunk | None:
        """The next batch (about ``batch`` events); ``None`` once the days are done."""
        simulated = self.simulate()
        if simulated is None:
            return None
        if self.columns:
            return self.layout.columns(simulated)
        events: list[Liquidation] = []
        for raw in simulated.blocks:
            events += published(self.sim, raw, simulated.first_seq + len(events), self.scorer)
        return Chunk(events, self.layout.open_interest(simulated), simulated.hours)

    def simulate(self) -> Simulated | None:
        """The next batch as the simulation leaves it; ``None`` once the days are done."""
        sim = self.sim
        first_seq = self.seq
        thinned: list[RawBlock] = []
        open_interest: list[KeptTotals] = []
        rows = 0
        hours = 0.0
        skipped = 0
        for computed in self._blocks:
            raw = self._throttle.thin(computed)
            if self._after is not None:
                unstored = self._unstored(raw)
                skipped += raw.ts.size - unstored.ts.size
                raw = unstored
            thinned.append(raw)
            self.seq += raw.ts.size
            self.notional += float(raw.size_usd.sum())
            self.active[raw.market] = True
            totals = sim.market_open_interest(raw.end_ms)
            if totals is not None:
                kept = self._sampler.keep(raw.end_ms, *totals)
                open_interest.append(kept)
                rows += len(kept)
            hours += sim.config.block_ms / 3_600_000
            # Batches end where they always have: a rollup cell split across two of them sums
            # its floats in another order.
            # (A resumed run counts the events it skipped: its batches end where the
            # interrupted run's did.)
            if self.seq - first_seq + skipped >= self.batch or rows >= self.batch:
                break
        if not hours:
            if self._after is not None:
                self._refuse_resuming("lies beyond this history's end")
            return None
        if self._after is not None:
            # The interrupted run stored this batch's open interest with its events (it had
            # stored events of a later batch); that of the batch holding its last event may
            # be missing (killed between the two appends), and goes in again.
            open_interest.clear()
        return Simulated(first_seq, thinned, open_interest, hours)

    def _unstored(self, raw: RawBlock) -> RawBlock:
        """``raw`` without the events an interrupted run stored (ids up to ``after``'s),
        once the block holding ``after`` shows it is this history's event."""
        after = self._after
        assert after is not None
        stored = self._after_n - raw.first_n + 1  # this block's events up to ``after``
        if stored > raw.ts.size:
            return _rows_from(raw, raw.ts.size)
        theirs = (after.ts, after.market, after.symbol, after.side, after.price, after.quantity)
        # Passed its id, or another event has it.
        if stored <= 0 or self._event_key(raw, stored - 1) != theirs:
            self._refuse_resuming("is not this history's")
        self._after = None
        return _rows_from(raw, stored)

    def _refuse_resuming(self, why: str) -> NoReturn:
        after = self._after
        assert after is not None
        raise ValueError(
            f"the store's last event {after.id} (seq {after.seq:,}) {why}: it has the ids of "
            "this seed and start but another history's times (another --markets or --days?), "
            "and this history cannot go on after it. Simulate into another store (--store)"
        )

    def _event_key(self, raw: RawBlock, j: int) -> tuple[int, str, str, str, float, float]:
        """What the ``j``-th event of ``raw`` is: its ts, market, symbol, side, price and
        quantity, as published."""
        m = int(raw.market[j])
        symbol = self.sim.markets[m].listings[int(raw.listing[j])].symbol
        side = ("short", "long")[int(raw.side[j]) > 0]
        price, qty = float(raw.price[j]), float(raw.quantity[j])
        return int(raw.ts[j]), self.sim.market_names[m], symbol, side, price, qty

    def totals(self) -> Totals:
        """The simulation's totals so far."""
        return Totals(
            self.seq,
            int(self.active.sum()),
            self.notional,
            self.sim.now_ms,
            tuple(self.sim.truth.cascades()),
        )


def _rows_from(raw: RawBlock, k: int) -> RawBlock:
    """``raw``'s events from its ``k``-th on (their ids unchanged)."""
    if k == 0:
        return raw
    return replace(
        raw,
        first_n=raw.first_n + k,
        ts=raw.ts[k:],
        market=raw.market[k:],
        listing=raw.listing[k:],
        side=raw.side[k:],
        price=raw.price[k:],
        fill=raw.fill[k:],
        quantity=raw.quantity[k:],
        run=raw.run[k:],
        cohort=raw.cohort[k:],
    )


async def _write(store: Store, loader: SQLiteBulkLoad | None, chunk: Chunk) -> None:
    """One chunk into the bulk load, or appended to the store."""
    events = chunk.events
    if loader is not None:
        assert isinstance(events, EventColumns)  # the producer makes columns for a bulk load
        loader.append(events)
        if chunk.open_interest:
            loader.append_open_interest(chunk.open_interest)
        return
    assert not isinstance(events, EventColumns)  # columns only go to a bulk load
    if events:
        await store.append(events)
    if chunk.open_interest:
        await store.append_open_interest(chunk.open_interest)


def _refuse_going_back(last: Liquidation | None, start_ms: int) -> None:
    """Refuse a history that starts before the store's last event: its seqs would follow that
    event while its times precede it, and a backtest replays seq order (a day going back in
    time; the same day again is all duplicates, stored as none)."""
    if last is not None and last.ts > start_ms:
        next_day = (last.ts // DAY_MS + 1) * DAY_MS
        # A later day only while it is history (a store `serve` wrote today: none).
        later = f", or from {utc_iso(next_day)[:10]} on (--start)" if next_day < now_ms() else ""
        raise ValueError(
            f"the store's last event (seq {last.seq:,}) is at {utc_iso(last.ts)}, after the "
            f"history's start {utc_iso(start_ms)}: appended after it, the history would replay "
            f"out of time order (backtests read seq order). Simulate into another store "
            f"(--store){later}"
        )


def _resumes(last: Liquidation | None, config: SimConfig) -> bool:
    """Whether the store's last event is one of this history's (its ids: this seed and
    start), so the history goes on after it: a run interrupted while appending stored its
    beginning, whole batches in seq order, and the simulation gives the same events again."""
    prefix = event_id_prefix(config)
    return last is not None and last.id.startswith(prefix) and last.id[len(prefix) :].isdigit()


async def generate_history(
    store: Store,
    *,
    days: float,
    seed: int = 0,
    n_markets: int = 275,
    start_ms: int = DEFAULT_START_MS,
    scorer: Scorer | None = None,
    progress: bool = True,
    **knobs: float,
) -> HistorySummary:
    """Simulate ``days`` from ``start_ms`` and append every event, and each market's open
    interest whenever the sampler keeps it (checked every 5-minute block), to ``store``.

    Seqs continue from ``await store.last_seq() + 1`` (or after the seq mark beside a SQLite
    store, :mod:`purpleflea.store.seqmark`, when it is higher); ``scorer`` gives each event's
    ``cascade_score`` (0 without one), called in event order from one worker thread (the
    simulation runs there, one batch ahead of the writes). A bulk load simulates in a child
    process instead, a few batches ahead (:mod:`purpleflea.sim.history_child`): an error
    there is raised here as itself, and the child is stopped if the load fails. ``knobs`` are
    :class:`~purpleflea.sim.SimConfig` fields such as ``cascade_rate``. Unscored into an empty
    SQLite store, the whole history is one bulk load (:meth:`SQLiteStore.bulk_load`: batches as
    columns, one transaction, indexes built at the end; interrupted, it leaves the store
    empty); scored, an empty SQLite store builds its history indexes once at the end
    (:meth:`SQLiteStore.deferred_indexes`).
    """
    if not days > 0:
        raise ValueError(f"days must be > 0, got {days}")
    started = time.monotonic()
    config = history_config(seed=seed, n_markets=n_markets, start_ms=start_ms, **knobs)
    last_seq = await store.last_seq()
    # The newest event, not the item at the last seq: a store `serve` wrote may end in a
    # cascade alert (they share the events' seqs), which names no time to refuse going back to.
    stored = (await store.query(Query(limit=1))).events if last_seq > 0 else []
    last = stored[0] if stored else None
    after = last if scorer is None and _resumes(last, config) else None
    if after is None:
        _refuse_going_back(last, start_ms)
    # After a SQLite store's seq mark when above it: those seqs may have been published.
    path = getattr(store, "path", None)  # a SQLite store's file
    first_seq = max(last_seq, mark_floor(path) if isinstance(path, str) else 0) + 1
    bar = Progress(days * 24, "simulating", unit="sim h") if progress else None
    bulk = getattr(store, "bulk_load", None) if scorer is None else None  # SQLite's
    deferred = getattr(store, "deferred_indexes", None)  # SQLite's, for scored history
    loop = asyncio.get_running_loop()
    with ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(1, thread_name_prefix="sim-history"))
        loader = stack.enter_context(bulk()) if bulk is not None else None
        indexes_deferred = loader is not None
        if loader is None and deferred is not None:
            indexes_deferred = stack.enter_context(deferred())
        producer: Producer | ChildProducer
        if loader is not None and sys.executable:
            # Columns pickle cheaply, and only the bulk path's writes are heavy enough that
            # the simulation gains a core from a process of its own (a scorer stays here).
            producer = ChildProducer(Request(config, days, first_seq, BATCH))
            stack.callback(producer.close)
        else:
            producer = Producer(
                Simulator(config),
                days,
                first_seq,
                scorer,
                BATCH,
                columns=loader is not None,
                after=after,
            )
        chunk = await loop.run_in_executor(pool, producer.next_chunk)
        while chunk is not None:
            # The next batch is simulated while this one is written.
            upcoming = loop.run_in_executor(pool, producer.next_chunk)
            try:
                await _write(store, loader, chunk)
            except BaseException:
                # The worker finishes the batch it is on before this error leaves (an error of
                # its own comes second).
                with suppress(Exception):
                    await upcoming
                raise
            if bar is not None:
                bar.advance(chunk.hours)
            chunk = await upcoming
        totals = producer.totals()
        if bar is not None:
            bar.finish()
            if indexes_deferred:
                print("building the history indexes...", file=sys.stderr, flush=True)
    return HistorySummary(
        events=totals.next_seq - first_seq,
        markets=totals.markets,
        notional_usd=totals.notional_usd,
        first_seq=first_seq,
        last_seq=totals.next_seq - 1,
        start_ms=start_ms,
        end_ms=totals.end_ms,
        wall_s=time.monotonic() - started,
        cascades=totals.cascades,
        resumed_after=after,
    )
