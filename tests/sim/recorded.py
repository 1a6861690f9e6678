"""A simulated run kept as columns, so several tests can read one run of the same config.

The simulator is deterministic (same config -> same bytes), and a served market's 50 minutes
of crash cost tens of seconds of CPU: tests that read the same configuration share one
recording (``served_crash``, ``served_calm`` and ``history_month`` in ``tests/sim/conftest.py``,
where a seed's calm and crash runs also share its warm-up) instead of each simulating it again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from purpleflea.model import MarketSnapshot
from purpleflea.sim import MarketSpec, SimConfig, Simulator
from purpleflea.sim.config import DAY_MS
from purpleflea.sim.history import blocks

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Recording:
    """``minutes`` of a simulator's stream from its start: its steps, every market's mark
    after each step, the true open interest at both ends, and one row per liquidation event
    (in stream order) with the step that carried it."""

    config: SimConfig
    minutes: int
    market_index: dict[str, int]
    #: Each step's ``ts`` (the end of the step), in order.
    step_ts: IntArray
    #: Every market's mark at the start, and after each step (steps x markets).
    start_marks: FloatArray
    marks: FloatArray
    #: Every market's true open interest (coins, :meth:`Truth.open_interest`) at both ends.
    open_interest_start: FloatArray
    open_interest_end: FloatArray
    #: Per event: the index of its step, its time, market, exchange, price and USD size.
    step: IntArray
    ts: IntArray
    market: tuple[str, ...]
    exchange: tuple[str, ...]
    price: FloatArray
    size_usd: FloatArray

    def events_within(self, minutes: int) -> npt.NDArray[np.bool_]:
        """Which events a run of only the first ``minutes`` would have carried."""
        if minutes > self.minutes:
            raise ValueError(f"the recording holds {self.minutes} minutes, not {minutes}")
        last: npt.NDArray[np.bool_] = (
            self.step_ts[self.step] <= self.config.start_ms + minutes * 60_000
        )
        return last


def record_run(sim: Simulator, minutes: int) -> Recording:
    """Run ``sim``, at its start (just warmed up), for ``minutes`` and keep what the tests
    read."""
    config = sim.config
    if sim.now_ms != config.start_ms:
        raise ValueError(f"the simulator is at {sim.now_ms}, not at its start {config.start_ms}")
    names = sim.market_names
    start_marks = sim.marks().copy()
    open_interest_start = np.array([sim.truth.open_interest(m) for m in names])
    step_ts: list[int] = []
    marks: list[FloatArray] = []
    steps: list[int] = []
    ts: list[int] = []
    market: list[str] = []
    exchange: list[str] = []
    price: list[float] = []
    size_usd: list[float] = []
    for k, sim_step in enumerate(sim.run(minutes * 60_000)):
        step_ts.append(sim_step.ts)
        marks.append(sim.marks().copy())
        for e in sim_step.liquidations:
            steps.append(k)
            ts.append(e.ts or 0)
            market.append(e.market)
            exchange.append(e.exchange)
            price.append(e.price)
            size_usd.append(e.size_usd or 0.0)
    return Recording(
        config=config,
        minutes=minutes,
        market_index=dict(sim.market_index),
        step_ts=np.array(step_ts, dtype=np.int64),
        start_marks=start_marks,
        marks=np.array(marks),
        open_interest_start=open_interest_start,
        open_interest_end=np.array([sim.truth.open_interest(m) for m in names]),
        step=np.array(steps, dtype=np.int64),
        ts=np.array(ts, dtype=np.int64),
        market=tuple(market),
        exchange=tuple(exchange),
        price=np.array(price),
        size_usd=np.array(size_usd),
    )


@dataclass(frozen=True)
class BlockRecording:
    """``days`` of a simulator's blocks (as :func:`purpleflea.sim.history.blocks` computes
    them): every market's mark at the start and after each block, each block's event count
    per (market, listing), and every listing's snapshot at the end of each day."""

    config: SimConfig
    days: int
    markets: tuple[MarketSpec, ...]
    market_index: dict[str, int]
    #: Every market's mark at the start, then after each block ((blocks + 1) x markets).
    marks: FloatArray
    #: Events per block, market and listing (blocks x markets x the most listings).
    events: IntArray
    #: :meth:`Simulator.snapshots` at the end of each day (one tuple per day).
    day_end_snapshots: tuple[tuple[MarketSnapshot, ...], ...]

    @property
    def blocks_per_day(self) -> int:
        return DAY_MS // self.config.block_ms


def record_blocks(config: SimConfig, days: int) -> BlockRecording:
    """Run a fresh simulator of ``config`` for ``days`` of blocks and keep what tests read."""
    if DAY_MS % config.block_ms:
        raise ValueError(f"block_ms ({config.block_ms}) must divide a day")
    sim = Simulator(config)
    per_day = DAY_MS // config.block_ms
    listings = max(len(spec.listings) for spec in sim.markets)
    cells = len(sim.markets) * listings
    marks = [sim.marks().copy()]
    events: list[IntArray] = []
    day_ends: list[tuple[MarketSnapshot, ...]] = []
    for n, raw in enumerate(blocks(sim, days), start=1):
        marks.append(sim.marks().copy())
        events.append(np.bincount(raw.market * listings + raw.listing, minlength=cells))
        if n % per_day == 0:
            day_ends.append(sim.snapshots(raw.end_ms))  # reads state, changes nothing
    return BlockRecording(
        config=config,
        days=days,
        markets=sim.markets,
        market_index=dict(sim.market_index),
        marks=np.array(marks),
        events=np.array(events, dtype=np.int64).reshape(-1, len(sim.markets), listings),
        day_end_snapshots=tuple(day_ends),
    )
