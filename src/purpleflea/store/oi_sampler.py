"""Which open interest to keep: one row per market, only when it moved or went stale.

The cascade engine sizes a cascade by the open interest of its market, the sum over the
market's listings, through ``oi_gain * log2(window / (oi_ref * open interest))`` with
``oi_gain = 2``. Storing every listing's every snapshot (~1,700 listings a minute live) made
open interest outweigh the events and doubled a backtest's time, for nothing the score can see:

* an error of ``d`` in the open interest moves the score by ``2 * log2(1 + d)``: 0.014 points
  at the 0.5 % deadband, far below the integer rounding of a score, so a total within 0.5 % of
  the last one stored scores the same;
* a slow drift that never crosses 0.5 % in one step is written anyway by the 15-minute
  heartbeat, so the replayed value is never older than that while snapshots keep coming.

Each row also carries the mark of the market's latest snapshot, and a move of the mark by
``mark_deadband`` (0.25 %, under the heatmap's default ~0.4 % bucket) is worth a row too: a
backtest with its heatmap on replays each row as a snapshot, and the heatmap places new
positions at the marks it is shown.

:class:`OpenInterestSampler` is that rule, shared by the live server
(:mod:`purpleflea.server.oi_recorder`, sampled once a minute) and the simulator's history
(sampled once per snapshot round, as :class:`TotalsSampler`: the same rule over every market's
total at once, in numpy), so a backtest of either replays the same kind of record.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from purpleflea.model import MarketSnapshot, instrument_of
from purpleflea.store.base import OpenInterest

#: Relative change of a market's open interest that is worth a row.
DEADBAND = 0.005
#: Relative move of a market's mark that is worth a row (for a backtest's heatmap).
MARK_DEADBAND = 0.0025
#: A market with newer snapshots gets a row at least this often, moved or not.
HEARTBEAT_MS = 15 * 60_000

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(slots=True)
class _Market:
    listings: dict[str, float] = field(default_factory=dict)
    #: The latest snapshot's ts: a row's ts, so a backtest applies no listing's value early.
    ts: int = -1
    #: The mark of the latest snapshot (0: none told).
    mark: float = 0.0
    #: The last row emitted: its ts (-1: none yet), total and mark.
    row_ts: int = -1
    row_usd: float = 0.0
    row_mark: float = 0.0


class OpenInterestSampler:
    """Keeps the latest open interest of each listing and emits market totals worth storing.

    :meth:`note` every snapshot whose open interest the engine was told; :meth:`sample` then
    returns, for each market noted since the previous sample, a row of the market's total (ts
    and mark: its latest snapshot's) if that total moved by at least ``deadband`` (relative)
    from the last row, or the mark by ``mark_deadband``, or the last row is ``heartbeat_ms``
    old or more by snapshot time. A market's first row is always emitted. A late snapshot
    older than the last row still counts, at the latest ts: a row may then repeat the last
    row's ts, and replaces it in the store. Pure: no I/O, no clock.
    """

    def __init__(
        self,
        *,
        deadband: float = DEADBAND,
        mark_deadband: float = MARK_DEADBAND,
        heartbeat_ms: int = HEARTBEAT_MS,
    ) -> None:
        for name, value in (("deadband", deadband), ("mark_deadband", mark_deadband)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"OpenInterestSampler {name} must be >= 0, got {value}")
        if heartbeat_ms < 1:
            raise ValueError(
                f"OpenInterestSampler heartbeat_ms must be at least 1, got {heartbeat_ms}"
            )
        self.deadband = deadband
        self.mark_deadband = mark_deadband
        self.heartbeat_ms = heartbeat_ms
        self._markets: dict[str, _Market] = {}
        #: Markets noted since the last sample: the only ones a sample can emit.
        self._touched: set[str] = set()
        #: Markets whose last listing retired: forgotten once a sample emitted their fall.
        self._gone: set[str] = set()

    def note(self, snapshot: MarketSnapshot) -> None:
        """One listing's open interest, as the engine was told it (0 forgets the listing)."""
        market = snapshot.market
        state = self._markets.get(market)
        if state is None:
            state = self._markets[market] = _Market()
        # As the engine does: the last value told wins, and 0 drops the listing from the sum.
        if snapshot.open_interest_usd > 0:
            state.listings[instrument_of(snapshot)] = snapshot.open_interest_usd
        else:
            state.listings.pop(instrument_of(snapshot), None)
        if snapshot.ts >= state.ts:
            state.mark = snapshot.mark_price
            state.ts = snapshot.ts
        self._touched.add(market)

    def retire(self, market: str, instrument: str, ts: int) -> None:
        """``instrument`` of ``market`` (``"<exchange>:<symbol>"``) was retired at ``ts``, as
        the engine was told (an expired future, a delisted contract: the heatmap's rule, no
        snapshot for a day): it leaves the market's total, and the next sample has a row of
        the fall at ``ts``. A market left with no listing is forgotten after that row: every
        market ever listed stayed, and a delisted listing's last value stayed in the stored
        total for good, though the engine had dropped it."""
        state = self._markets.get(market)
        if state is None or state.listings.pop(instrument, None) is None:
            return
        state.ts = max(state.ts, ts)
        self._touched.add(market)
        if not state.listings:
            self._gone.add(market)

    def sample(self) -> list[OpenInterest]:
        """The rows worth storing now, in (ts, market) order; they become the baseline."""
        rows: list[OpenInterest] = []
        for market in self._touched:
            state = self._markets[market]
            total = sum(state.listings.values())
            if state.row_ts >= 0 and state.ts - state.row_ts < self.heartbeat_ms:
                change = abs(total - state.row_usd)
                moved = abs(state.mark - state.row_mark)
                if (change == 0 or change < self.deadband * state.row_usd) and (
                    moved == 0 or moved < self.mark_deadband * state.row_mark
                ):
                    continue
            state.row_ts, state.row_usd, state.row_mark = state.ts, total, state.mark
            rows.append(
                OpenInterest(
                    ts=state.ts, market=market, open_interest_usd=total, mark_price=state.mark
                )
            )
        self._touched.clear()
        for market in self._gone:
            if not self._markets[market].listings:  # no listing came back since
                del self._markets[market]
        self._gone.clear()
        rows.sort(key=lambda row: (row.ts, row.market))
        return rows


class TotalsSampler:
    """:class:`OpenInterestSampler`'s rule for a source that knows every market's total at once
    (the simulator's bulk history, each snapshot round): one numpy pass per round instead of a
    Python call per market (30 days x 275 markets is 2.4M of them, ~10 % of the history's
    time). Same deadbands and heartbeat; a total of 0 or less is no open interest. Pure.
    """

    def __init__(
        self,
        markets: Sequence[str],
        *,
        deadband: float = DEADBAND,
        mark_deadband: float = MARK_DEADBAND,
        heartbeat_ms: int = HEARTBEAT_MS,
    ) -> None:
        OpenInterestSampler(  # the same checks, the same messages
            deadband=deadband, mark_deadband=mark_deadband, heartbeat_ms=heartbeat_ms
        )
        self.markets = list(markets)
        self.deadband = deadband
        self.mark_deadband = mark_deadband
        self.heartbeat_ms = heartbeat_ms
        n = len(self.markets)
        # Rows come out in (ts, market) order, as OpenInterestSampler.sample's.
        self._order = np.array(sorted(range(n), key=self.markets.__getitem__), dtype=np.int64)
        self._row_ts = np.full(n, -1, dtype=np.int64)
        self._row_usd = np.zeros(n)
        self._row_mark = np.zeros(n)

    def sample(self, ts: int, usd: FloatArray, mark: FloatArray) -> list[OpenInterest]:
        """Every market's total (``usd``, in the order of ``markets``) and mark at ``ts``: the
        rows worth storing, which become the baseline."""
        return self.keep(ts, usd, mark).rows(self.markets)

    def keep(self, ts: int, usd: FloatArray, mark: FloatArray) -> KeptTotals:
        """:meth:`sample`'s rows as columns (a child process sends them cheaply)."""
        total = np.where(usd > 0, usd, 0.0)
        change = np.abs(total - self._row_usd)
        moved = np.abs(mark - self._row_mark)
        quiet = (
            (self._row_ts >= 0)
            & (ts - self._row_ts < self.heartbeat_ms)
            & ((change == 0) | (change < self.deadband * self._row_usd))
            & ((moved == 0) | (moved < self.mark_deadband * self._row_mark))
        )
        emit = self._order[~quiet[self._order]]
        self._row_ts[emit] = ts
        self._row_usd[emit] = total[emit]
        self._row_mark[emit] = mark[emit]
        return KeptTotals(ts, emit, total[emit], mark[emit])


@dataclass(frozen=True, slots=True)
class KeptTotals:
    """The rows :class:`TotalsSampler` kept at ``ts``, in row order, as columns: each row's
    market (its index in the sampler's ``markets``), total and mark."""

    ts: int
    market: IntArray
    usd: FloatArray
    mark: FloatArray

    def __len__(self) -> int:
        return int(self.market.size)

    def rows(self, markets: Sequence[str]) -> list[OpenInterest]:
        ts = self.ts
        return [
            OpenInterest(ts=ts, market=markets[i], open_interest_usd=u, mark_price=m)
            for i, u, m in zip(
                self.market.tolist(), self.usd.tolist(), self.mark.tolist(), strict=True
            )
        ]
