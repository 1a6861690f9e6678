"""The simulator's ground truth: the true open positions and the true cascades.

Positions
    The simulator models leveraged traders as **cohorts**: the positions opened on one market,
    on one side, at one leverage, in one minute (they share entry price, leverage and
    maintenance margin, hence one liquidation price). A cohort is opened, lives, and is either
    closed voluntarily or liquidated as a unit; its liquidation is reported as one or more
    exchange events whose sizes sum to its notional. :class:`TruePosition` is one cohort.

    Liquidation price (isolated margin, fees and funding ignored), with ``L`` the leverage and
    ``m`` the maintenance margin rate: a long is liquidated when the mark price falls to
    ``entry * (1 - 1/L + m)``, a short when it rises to ``entry * (1 + 1/L - m)`` (the price at
    which the remaining margin equals the maintenance margin).

Open interest
    The modelled cohorts are the leveraged traders; longs and shorts are opened independently,
    so the two sides of the book differ. They are taken to be each other's counterparties as
    far as they go, and the excess of the larger side to face unmodelled unleveraged traders
    (market makers, hedgers, who are never liquidated). An exchange reports one side of its
    open position, so the open interest it shows is the larger side's coins:
    ``max(longs, shorts)`` -- the smallest open interest consistent with the books (typically
    ~55 % of ``longs + shorts``). :meth:`Truth.open_interest` and every
    :class:`~purpleflea.model.MarketSnapshot` report that; ``open_interest(market, side)`` gives
    one side's cohorts. :class:`Flows` count both sides' cohorts.

Cascades
    A **true cascade** is a run of liquidations on one market and side — consecutive
    liquidation steps at most ``cascade_gap_ms`` apart — that satisfies both:

    - at least two of its cohorts were **impact-driven**: at the step they were liquidated, the
      mark price with the price impact of the run's own earlier liquidations taken out
      (permanent part plus the still-decaying transient part) had *not* crossed their
      liquidation price — they were liquidated only because earlier forced orders of the run
      pushed the price through them;
    - its total notional is at least ``cascade_min_depth`` times the market's 1% depth (the run's
      own forced orders moved the price by at least ``cascade_min_depth`` percent).

    ``start_ms``/``end_ms`` are its first and last event times, so the run's events are exactly
    the events of that market and side with ``start_ms <= ts <= end_ms``. A cascade is reported
    by :meth:`Truth.cascades` only once it is known to be over (``known_ms``: no liquidation for
    ``cascade_gap_ms`` after its last step) and that time has been reached, so a live evaluator
    is never shown the future. This is the **impact** definition, the truth before issue 20.

    The **wave** definition (issue 20's decision, docs/cascade.md "What a cascade is") judges the
    liquidation stream itself, as the real-data evaluation does: a run of one market and side's
    liquidations (events at most ``cascade_gap_ms`` apart) in which some
    :data:`WAVE_WINDOW_MS` hold at least ``cascade_min_depth`` times the market's 1 % depth,
    liquidated in at least :data:`WAVE_MIN_UNITS` distinct seconds, impact-driven or not (a
    heavy minute of Binance's stream, one forced order per symbol and second, holds at least
    three events). The **positions** variant asks for three distinct cohorts instead of
    seconds (stricter; cohorts are not visible on any exchange). :func:`wave_cascades` finds
    them in a recorded stream and :func:`merge_cascades` joins them with the impact
    cascades, so the impact truth is a subset of the wave truth.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from purpleflea.model import Side

if TYPE_CHECKING:
    from purpleflea.sim.process import Simulator

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: The names of the definitions of a true cascade (see the module docstring).
Definition = Literal["wave", "positions", "impact"]
#: A wave sweeps its share of the depth within this time (the real-data evaluation's heavy
#: minute).
WAVE_WINDOW_MS = 60_000
#: ... over at least this many distinct seconds (or positions, for "positions").
WAVE_MIN_UNITS = 3


@dataclass(frozen=True, slots=True)
class TruePosition:
    """One open cohort: ``quantity`` coins on ``side`` of ``market``."""

    id: int
    market: str
    side: Side
    quantity: float
    entry_price: float
    leverage: float
    mmr: float
    liquidation_price: float
    opened_ms: int
    notional_usd: float  # quantity x liquidation price: what would be sold/bought there


@dataclass(frozen=True, slots=True)
class TrueCascade:
    """One true cascade episode (see the module docstring for the definition)."""

    market: str
    side: Side
    start_ms: int
    end_ms: int
    notional_usd: float
    events: int
    cohorts: int
    impact_driven: int
    start_price: float  # mark price at the run's first liquidation step
    end_price: float  # mark price at its last liquidation step
    known_ms: int  # when it is known to be over: last liquidation step + cascade_gap_ms

    @property
    def price_move_pct(self) -> float:
        return (self.end_price / self.start_price - 1.0) * 100.0


@dataclass(frozen=True, slots=True)
class Flows:
    """Cumulative cohort flows of one market in coins, both sides together:
    ``open_interest(m, "long") + open_interest(m, "short") = opened - closed - liquidated``."""

    opened: float
    closed: float
    liquidated: float


class Truth:
    """Read-only view of a :class:`~purpleflea.sim.process.Simulator`'s ground truth.

    Every query answers as of the simulator's current time (``sim.now_ms``, the last step it
    yielded), never later.
    """

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def _market(self, market: str) -> int:
        try:
            return self._sim.market_index[market]
        except KeyError:
            raise KeyError(f"unknown simulated market {market!r}") from None

    def positions(
        self,
        market: str | None = None,
        *,
        at_ms: int | None = None,
        ids: Collection[int] | None = None,
    ) -> list[TruePosition]:
        """The open cohorts (of one market, or all), ordered by market then slot: open now,
        or at ``at_ms`` within the block just computed (a position liquidated since is in
        the book until the next block starts); only those with ``ids`` when given."""
        book = self._sim.book
        alive = book.alive(self._sim.now_ms if at_ms is None else at_ms)
        if market is not None:
            m = self._market(market)
            sl = slice(book.seg[m], book.seg[m + 1])
            idx = np.nonzero(alive[sl])[0] + book.seg[m]
        else:
            idx = np.nonzero(alive)[0]
        if ids is not None:
            idx = idx[np.isin(book.cohort_id[idx], np.fromiter(ids, dtype=np.int64))]
        names = self._sim.market_names
        columns = zip(
            book.cohort_id[idx].tolist(),
            book.market[idx].tolist(),
            book.side[idx].tolist(),
            book.qty[idx].tolist(),
            book.entry[idx].tolist(),
            book.lev[idx].tolist(),
            book.mmr[idx].tolist(),
            book.liq[idx].tolist(),
            book.opened_ms[idx].tolist(),
            strict=True,
        )
        return [
            TruePosition(
                id=cid,
                market=names[m],
                side="long" if side > 0 else "short",
                quantity=qty,
                entry_price=entry,
                leverage=lev,
                mmr=mmr,
                liquidation_price=liq,
                opened_ms=opened,
                notional_usd=qty * liq,
            )
            for cid, m, side, qty, entry, lev, mmr, liq, opened in columns
        ]

    def notional_at_risk(self, market: str, side: Side, bucket_edges: npt.ArrayLike) -> FloatArray:
        """USD that would be force-liquidated in each price bucket ``[edges[i], edges[i+1])``.

        The notional of a cohort is its quantity times its liquidation price; cohorts whose
        liquidation price falls outside the edges are not counted.
        """
        edges = np.asarray(bucket_edges, dtype=np.float64)
        if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
            raise ValueError("bucket_edges must be a strictly increasing 1-D array of >= 2 prices")
        book = self._sim.book
        m = self._market(market)
        sl = slice(book.seg[m], book.seg[m + 1])
        sign = 1 if side == "long" else -1
        chosen = book.alive(self._sim.now_ms)[sl] & (book.side[sl] == sign)
        liq = book.liq[sl][chosen]
        usd = liq * book.qty[sl][chosen]
        counts, _ = np.histogram(liq, bins=edges, weights=usd)
        return counts.astype(np.float64)

    def open_interest(self, market: str, side: Side | None = None) -> float:
        """Open interest of ``market`` in coins as an exchange reports it: one side's open
        position (see the module docstring), or with ``side`` the coins of that side's cohorts."""
        book = self._sim.book
        m = self._market(market)
        sl = slice(book.seg[m], book.seg[m + 1])
        alive = book.alive(self._sim.now_ms)[sl]
        held, sides = book.qty[sl][alive], book.side[sl][alive]
        longs, shorts = float(held[sides > 0].sum()), float(held[sides < 0].sum())
        if side is None:
            return max(longs, shorts)
        if side == "long":
            return longs
        if side == "short":
            return shorts
        raise ValueError(f"open_interest {market}: side must be 'long' or 'short', got {side!r}")

    def flows(self, market: str) -> Flows:
        """Cumulative coins opened, closed and liquidated on ``market`` up to now."""
        m = self._market(market)
        return self._sim.flows_of(m)

    def cascades(self) -> list[TrueCascade]:
        """True cascades known to be over by now, in order of their end."""
        now = self._sim.now_ms
        return [c for c in self._sim.runs.cascades if c.known_ms <= now]


@dataclass(frozen=True, slots=True)
class LiquidationStream:
    """Liquidation events as columns, one row per exchange event, in any order."""

    names: tuple[str, ...]  # market names; ``markets`` indexes them
    markets: IntArray
    sides: IntArray  # +1 long, -1 short
    ts: IntArray
    usd: FloatArray
    prices: FloatArray
    cohorts: IntArray  # the simulator's cohort of each event


def first_wave_moment(ts: IntArray, usd: FloatArray, units: IntArray, bar: float) -> int:
    """Index of the first event (``ts`` ascending) at which the last :data:`WAVE_WINDOW_MS`
    hold >= ``bar`` USD over at least :data:`WAVE_MIN_UNITS` distinct ``units`` (seconds or
    positions), or -1 when the events never make a wave."""
    cum = np.concatenate(([0.0], np.cumsum(usd)))
    lo = np.searchsorted(ts, ts - WAVE_WINDOW_MS, side="left")
    window = cum[1:] - cum[lo]
    for i in np.flatnonzero(window >= bar).tolist():
        if np.unique(units[lo[i] : i + 1]).size >= WAVE_MIN_UNITS:
            return int(i)
    return -1


def wave_units(stream: LiquidationStream, idx: IntArray, definition: Definition) -> IntArray:
    """What must be distinct three times in a wave: the event's second, or its position."""
    if definition == "wave":
        return stream.ts[idx] // 1000
    if definition == "positions":
        return stream.cohorts[idx]
    raise ValueError(f"wave_units: definition must be 'wave' or 'positions', got {definition!r}")


def wave_cascades(
    stream: LiquidationStream,
    depth_usd: Mapping[str, float],
    *,
    min_depth: float,
    gap_ms: int,
    definition: Definition = "wave",
) -> list[TrueCascade]:
    """The runs of ``stream`` that are waves (module docstring), in order of their end.

    ``depth_usd`` is each market's 1 % depth and ``min_depth`` the share of it a wave sweeps
    (the simulator's ``cascade_min_depth``); ``gap_ms`` splits a market side's events into
    runs (``cascade_gap_ms``). ``impact_driven`` is 0: the stream does not say."""
    key = stream.markets * 2 + (stream.sides < 0)
    order = np.lexsort((stream.ts, key))
    k_sorted, ts_sorted = key[order], stream.ts[order]
    # A new run wherever the market and side change or the stream of that side paused > gap.
    breaks = np.flatnonzero((np.diff(k_sorted) != 0) | (np.diff(ts_sorted) > gap_ms)) + 1
    found: list[TrueCascade] = []
    for idx in np.split(order, breaks):
        if idx.size < WAVE_MIN_UNITS:
            continue
        name = stream.names[int(stream.markets[idx[0]])]
        bar = min_depth * depth_usd[name]
        usd = stream.usd[idx]
        if float(usd.sum()) < bar:
            continue
        if first_wave_moment(stream.ts[idx], usd, wave_units(stream, idx, definition), bar) < 0:
            continue
        found.append(
            TrueCascade(
                market=name,
                side="long" if stream.sides[idx[0]] > 0 else "short",
                start_ms=int(stream.ts[idx[0]]),
                end_ms=int(stream.ts[idx[-1]]),
                notional_usd=float(usd.sum()),
                events=int(idx.size),
                cohorts=int(np.unique(stream.cohorts[idx]).size),
                impact_driven=0,
                start_price=float(stream.prices[idx[0]]),
                end_price=float(stream.prices[idx[-1]]),
                known_ms=int(stream.ts[idx[-1]]) + gap_ms,
            )
        )
    found.sort(key=lambda c: c.end_ms)
    return found


def merge_cascades(*groups: Iterable[TrueCascade]) -> list[TrueCascade]:
    """The union of several truths: cascades of one market and side that overlap in time
    become one (its span the union, the larger notional and impact-driven count, the first's
    other fields), so every input cascade lies inside one output cascade. In order of end."""
    by_key: dict[tuple[str, str], list[TrueCascade]] = {}
    for group in groups:
        for c in group:
            by_key.setdefault((c.market, c.side), []).append(c)
    merged: list[TrueCascade] = []
    for cs in by_key.values():
        cs.sort(key=lambda c: c.start_ms)
        current = cs[0]
        for c in cs[1:]:
            if c.start_ms <= current.end_ms:
                current = replace(
                    current,
                    start_ms=min(current.start_ms, c.start_ms),
                    end_ms=max(current.end_ms, c.end_ms),
                    notional_usd=max(current.notional_usd, c.notional_usd),
                    impact_driven=max(current.impact_driven, c.impact_driven),
                )
            else:
                merged.append(current)
                current = c
        merged.append(current)
    merged.sort(key=lambda c: c.end_ms)
    return merged
