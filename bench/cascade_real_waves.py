"""What a wave is in issue 20's real-data goals (``bench/cascade_real.py --goals/--venues``).

Two definitions of a *heavy minute* (a market and side's calendar minute), one way to join
them into *waves* (runs of one market and side's heavy minutes at most WAVE_GAP_MIN apart):

- ``pooled`` (the issue's, the goal): notional >= one dollar bar for every market and venue,
  the pooled HEAVY_PERCENTILE of the Binance files' market-side minutes ($30,468), in
  >= HEAVY_MIN_EVENTS events.
- ``relative`` (reported beside it; pre-registered in docs/cascade.md, "A market-relative
  wave"): forced orders in >= MIN_SECONDS distinct seconds and notional >= the pooled bar,
  raised to RELATIVE_K x the median of the market-side's own active minutes (those with any
  liquidation) in the RELATIVE_WINDOW_MIN minutes before it, when it had at least
  RELATIVE_MIN_HISTORY of them. Trailing only: a minute's verdict reads no later minute.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

HEAVY_PERCENTILE = 99.0
HEAVY_MIN_EVENTS = 3
WAVE_GAP_MIN = 5
#: ``relative``: the bar is an order of magnitude over the market-side's typical active minute.
#: On the Binance tuning files the two tuning waves with enough history of their own sit at
#: 14.6x and 24x it (the other four fall back to the pooled bar), so any k up to 14 finds the
#: pooled bar's 6 tuning waves and no other; 10 is the round value with margin below that.
RELATIVE_K = 10.0
RELATIVE_WINDOW_MIN = 60
#: Fewer active minutes than this in the window: the market-side's median says too little,
#: so the pooled bar alone judges the minute.
RELATIVE_MIN_HISTORY = 5
#: Distinct seconds, not events: a complete venue (OKX) lists one order's fills separately.
MIN_SECONDS = 3
DEFINITIONS = ("pooled", "relative")
Definition = Literal["pooled", "relative"]

MinuteKey = tuple[str, str, int]  # market, side, ms // 60,000


class Event(Protocol):
    """A liquidation as the real-data benches read it (``cascade_real.Row``, a venue's Liq)."""

    @property
    def market(self) -> str: ...

    @property
    def side(self) -> str: ...

    @property
    def size_usd(self) -> float: ...

    @property
    def price(self) -> float: ...

    @property
    def ts(self) -> int: ...


E = TypeVar("E", bound=Event)


def minutes(rows: Iterable[E]) -> dict[MinuteKey, list[E]]:
    """Each market, side and calendar minute's events."""
    out: dict[MinuteKey, list[E]] = {}
    for r in rows:
        out.setdefault((r.market, r.side, r.ts // 60_000), []).append(r)
    return out


def heavy_threshold(all_sessions: Iterable[Sequence[Event]]) -> float:
    """The pooled HEAVY_PERCENTILE of market-side minute notionals over every session."""
    import numpy as np

    usd = [sum(r.size_usd for r in m) for s in all_sessions for m in minutes(s).values()]
    return float(np.percentile(usd, HEAVY_PERCENTILE))


def over_bar(rows: Iterable[Event], threshold: float) -> set[MinuteKey]:
    """``pooled``: the minutes with >= threshold in >= HEAVY_MIN_EVENTS events."""
    return {
        k
        for k, m in minutes(rows).items()
        if len(m) >= HEAVY_MIN_EVENTS and sum(r.size_usd for r in m) >= threshold
    }


def relative_bar(history: Sequence[float], threshold: float) -> float:
    """The ``relative`` bar of a minute whose market-side had ``history`` (its active minutes'
    notionals in the trailing window): ``threshold`` raised to RELATIVE_K x their median."""
    if len(history) < RELATIVE_MIN_HISTORY:
        return threshold
    return max(threshold, RELATIVE_K * statistics.median(history))


def over_relative_bar(rows: Iterable[Event], threshold: float) -> set[MinuteKey]:
    """``relative``: the minutes with >= :func:`relative_bar` in >= MIN_SECONDS distinct
    seconds, each judged by the same market-side's minutes before it only."""
    by_minute = minutes(rows)
    past: dict[tuple[str, str], list[tuple[int, float]]] = {}
    out: set[MinuteKey] = set()
    for key in sorted(by_minute, key=lambda k: k[2]):
        market, side, minute = key
        m = by_minute[key]
        usd = sum(r.size_usd for r in m)
        seen = past.setdefault((market, side), [])
        history = [u for at, u in seen if at >= minute - RELATIVE_WINDOW_MIN]
        seconds = len({r.ts // 1000 for r in m})
        if seconds >= MIN_SECONDS and usd >= relative_bar(history, threshold):
            out.add(key)
        seen.append((minute, usd))
    return out


@dataclass
class Wave:
    market: str
    side: str
    first_ts: int  # the first liquidation of its first heavy minute
    end_ts: int  # the last liquidation of its last heavy minute
    heavy_minutes: int
    usd: float


def join(rows: Iterable[Event], heavy: set[MinuteKey]) -> list[Wave]:
    """The ``heavy`` minutes of ``rows`` joined into waves: per market and side, a heavy
    minute at most WAVE_GAP_MIN minutes after the previous one continues its wave."""
    by_minute = minutes(rows)
    out: list[Wave] = []
    last: dict[tuple[str, str], tuple[int, Wave]] = {}
    for key in sorted(heavy & by_minute.keys()):
        market, side, minute = key
        m = sorted(by_minute[key], key=lambda r: r.ts)
        usd = sum(r.size_usd for r in m)
        prev = last.get((market, side))
        if prev is not None and minute - prev[0] <= WAVE_GAP_MIN:
            w = prev[1]
            w.end_ts, w.heavy_minutes, w.usd = m[-1].ts, w.heavy_minutes + 1, w.usd + usd
        else:
            w = Wave(market, side, m[0].ts, m[-1].ts, 1, usd)
            out.append(w)
        last[(market, side)] = (minute, w)
    return sorted(out, key=lambda w: w.first_ts)


def waves(rows: Sequence[Event], threshold: float, definition: Definition = "pooled") -> list[Wave]:
    """``rows``' waves by ``definition``, ``threshold`` being the pooled bar."""
    if definition == "pooled":
        return join(rows, over_bar(rows, threshold))
    if definition == "relative":
        return join(rows, over_relative_bar(rows, threshold))
    raise ValueError(f"--wave must be one of {DEFINITIONS}, got {definition!r}")
