"""The position book: every market's cohorts in flat numpy arrays, one segment per market.

A market owns a fixed number of slots (:func:`purpleflea.sim.markets.slots_for`); a slot holds
one cohort or is empty (``qty == 0``) waiting to be refilled at ``reopen_ms``. Flat arrays with
per-market segments let one numpy call open, close or scan every market at once.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from purpleflea.sim.markets import MarketSpec, slots_for

NEVER = np.iinfo(np.int64).max

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class Book:
    """Cohort slots of all markets (see the module docstring)."""

    def __init__(self, markets: tuple[MarketSpec, ...]) -> None:
        sizes = np.array([slots_for(spec) for spec in markets], dtype=np.int64)
        self.seg: IntArray = np.concatenate(([0], np.cumsum(sizes)))
        total = int(self.seg[-1])
        self.market: IntArray = np.repeat(np.arange(len(markets), dtype=np.int64), sizes)
        self.qty: FloatArray = np.zeros(total)  # coins; 0 = empty slot
        self.side: IntArray = np.zeros(total, dtype=np.int64)  # +1 long, -1 short
        self.entry: FloatArray = np.zeros(total)
        self.lev: FloatArray = np.zeros(total)
        self.mmr: FloatArray = np.zeros(total)
        self.liq: FloatArray = np.zeros(total)
        self.opened_ms: IntArray = np.zeros(total, dtype=np.int64)
        self.close_ms: IntArray = np.full(total, NEVER, dtype=np.int64)
        self.reopen_ms: IntArray = np.zeros(total, dtype=np.int64)
        # Set when a cohort is liquidated inside the block being computed; the slot is emptied
        # when the next block starts, so queries at a time before gone_ms still see it.
        self.gone_ms: IntArray = np.full(total, NEVER, dtype=np.int64)
        self.cohort_id: IntArray = np.zeros(total, dtype=np.int64)

    def alive(self, now_ms: int) -> BoolArray:
        """Slots holding a cohort that is open at ``now_ms``."""
        return (self.qty > 0) & (self.gone_ms > now_ms)

    def triggers(self) -> tuple[FloatArray, FloatArray]:
        """Per market: the highest long and the lowest short liquidation price (+-inf if none)."""
        alive = (self.qty > 0) & (self.gone_ms == NEVER)
        longs = np.where(alive & (self.side > 0), self.liq, -np.inf)
        shorts = np.where(alive & (self.side < 0), self.liq, np.inf)
        starts = self.seg[:-1]
        return np.maximum.reduceat(longs, starts), np.minimum.reduceat(shorts, starts)

    def market_triggers(self, m: int) -> tuple[float, float]:
        """:meth:`triggers` for one market."""
        sl = slice(self.seg[m], self.seg[m + 1])
        alive = (self.qty[sl] > 0) & (self.gone_ms[sl] == NEVER)
        longs = self.liq[sl][alive & (self.side[sl] > 0)]
        shorts = self.liq[sl][alive & (self.side[sl] < 0)]
        return (
            float(longs.max()) if longs.size else -np.inf,
            float(shorts.min()) if shorts.size else np.inf,
        )

    def open_interest(self, now_ms: int, n_markets: int) -> tuple[FloatArray, FloatArray]:
        """Per market: coins held by the open long cohorts and by the open short cohorts."""
        held = np.where(self.alive(now_ms), self.qty, 0.0)
        longs = self.per_market(np.where(self.side > 0, held, 0.0), n_markets)
        shorts = self.per_market(np.where(self.side < 0, held, 0.0), n_markets)
        return longs, shorts

    def per_market(self, values: FloatArray, n_markets: int) -> FloatArray:
        """Sum ``values`` (one per slot) per market."""
        sums: FloatArray = np.bincount(self.market, weights=values, minlength=n_markets).astype(
            np.float64, copy=False
        )
        return sums
