"""Bulk generation of simulated history into a store, as fast as the machine allows.

History runs the same simulator as the live feed with coarser steps (1 s steps, 5-minute
blocks instead of 250 ms and 1 minute) and skips the per-step objects: each block's events go
straight from arrays to published :class:`~purpleflea.model.Liquidation` structs. Each market's
open interest (its listings' sum, at the end of each 5-minute block) goes through the same
:class:`~purpleflea.store.oi_sampler.OpenInterestSampler` as the live server's, so the store
keeps each market's total when it moved, and a backtest of simulated history has the size term
as a backtest of live history does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from purpleflea.model import Liquidation, Side, VenueLiquidation, publish
from purpleflea.progress import Progress
from purpleflea.sim.config import event_id_prefix
from purpleflea.sim.events import RawBlock
from purpleflea.sim.process import DAY_MS, DEFAULT_START_MS, SimConfig, Simulator
from purpleflea.sim.truth import TrueCascade
from purpleflea.store.base import OpenInterest, Store
from purpleflea.store.oi_sampler import OpenInterestSampler

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
    if scorer is not None:
        # Scored: the simulator's own venue events, each published with the scorer's verdict.
        scored: list[Liquidation] = []
        for j, venue in enumerate(sim.venue_events(raw)):
            seq = first_seq + j
            assert venue.ts is not None  # the simulator stamps every event
            scored.append(
                publish(
                    venue,
                    seq=seq,
                    received_at=venue.ts + 40 + seq % 160,
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
                received_at=ts + 40 + seq % 160,
            )
        )
    return out


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

    Seqs continue from ``await store.last_seq() + 1``; ``scorer`` gives each event's
    ``cascade_score`` (0 without one), called in event order. ``knobs`` are
    :class:`~purpleflea.sim.SimConfig` fields such as ``cascade_rate``.
    """
    if not days > 0:
        raise ValueError(f"days must be > 0, got {days}")
    started = time.monotonic()
    sim = Simulator(history_config(seed=seed, n_markets=n_markets, start_ms=start_ms, **knobs))
    first_seq = seq = await store.last_seq() + 1
    notional = 0.0
    active = np.zeros(n_markets, dtype=bool)
    pending: list[Liquidation] = []
    open_interest: list[OpenInterest] = []
    sampler = OpenInterestSampler()
    total_hours = days * 24
    bar = Progress(total_hours, "simulating", unit="sim h") if progress else None
    for raw in blocks(sim, days):
        batch = published(sim, raw, seq, scorer)
        seq += len(batch)
        notional += float(raw.size_usd.sum())
        active[raw.market] = True
        pending.extend(batch)
        for market, usd in sim.market_open_interest_usd(raw.end_ms):
            sampler.note_total(market, raw.end_ms, usd)
        open_interest.extend(sampler.sample())
        if len(pending) >= BATCH:
            await store.append(pending)
            pending = []
        if len(open_interest) >= BATCH:
            await store.append_open_interest(open_interest)
            open_interest = []
        if bar is not None:
            bar.advance(sim.config.block_ms / 3_600_000)
    if pending:
        await store.append(pending)
    if open_interest:
        await store.append_open_interest(open_interest)
    if bar is not None:
        bar.finish()
    return HistorySummary(
        events=seq - first_seq,
        markets=int(active.sum()),
        notional_usd=notional,
        first_seq=first_seq,
        last_seq=seq - 1,
        start_ms=start_ms,
        end_ms=sim.now_ms,
        wall_s=time.monotonic() - started,
        cascades=tuple(sim.truth.cascades()),
    )
