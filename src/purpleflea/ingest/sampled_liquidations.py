"""Liquidations of sampled accounts, told by their positions: pure, no I/O, no clock.

Between two polls of an account, a position that shrank or vanished while the market traded
through its liquidation price was, in all likelihood, liquidated there (a trader closing by
hand at exactly the price that would have liquidated them is the rare case this misreads).
The trade stream that discovers accounts also says how far the market moved:
:class:`PriceExtremes` keeps each market's lowest and highest trade price per second, and
:func:`vanished` turns the before/after positions into liquidation events, each at the
position's liquidation price, sized by what disappeared.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable

from purpleflea.model import VenueLiquidation
from purpleflea.positions import Position

_SECOND_MS = 1_000


class PriceExtremes:
    """Lowest and highest trade price per market and second, for the last ``keep_ms``."""

    def __init__(self, keep_ms: int) -> None:
        self.keep_ms = keep_ms
        self._seconds: dict[str, deque[list[float]]] = {}  # market -> [second, low, high]
        #: The newest trade's second when every market was last trimmed (:meth:`_sweep`).
        self._swept = 0

    def add(self, market: str, ts_ms: int, price: float) -> None:
        second = ts_ms // _SECOND_MS
        if second - self._swept >= self.keep_ms // _SECOND_MS:
            self._sweep(ts_ms)
        seconds = self._seconds.setdefault(market, deque())
        if seconds and seconds[-1][0] == second:
            last = seconds[-1]
            last[1], last[2] = min(last[1], price), max(last[2], price)
        elif not seconds or seconds[-1][0] < second:
            seconds.append([second, price, price])
        else:  # a late trade: widen the newest second rather than reorder (never narrows)
            last = seconds[-1]
            last[1], last[2] = min(last[1], price), max(last[2], price)
        while seconds and seconds[0][0] < (ts_ms - self.keep_ms) // _SECOND_MS:
            seconds.popleft()

    def _sweep(self, ts_ms: int) -> None:
        """Trim every market to ``keep_ms`` before ``ts_ms`` and forget those left with no
        second, once per ``keep_ms`` of trade time: a market's own trades trim only it, and a
        coin delisted or no longer traded kept its last ``keep_ms`` of seconds for good."""
        self._swept = ts_ms // _SECOND_MS
        oldest = (ts_ms - self.keep_ms) // _SECOND_MS
        for market, seconds in list(self._seconds.items()):
            while seconds and seconds[0][0] < oldest:
                seconds.popleft()
            if not seconds:
                del self._seconds[market]

    def between(self, market: str, start_ms: int, end_ms: int) -> tuple[float, float] | None:
        """The lowest and highest price traded from ``start_ms`` to ``end_ms`` (whole seconds
        at both ends), or None when nothing traded then (or it is forgotten)."""
        first, last = start_ms // _SECOND_MS, end_ms // _SECOND_MS
        inside = [s for s in self._seconds.get(market, ()) if first <= s[0] <= last]
        if not inside:
            return None
        return min(s[1] for s in inside), max(s[2] for s in inside)

    def since(self, market: str) -> Callable[[int], tuple[float, float] | None]:
        """A lookup of the lowest and highest price traded from a moment (whole second) to
        the newest trade, as :meth:`between` to now, each answer in O(log n) (the measured
        map asks it once per sampled position)."""
        seconds = list(self._seconds.get(market, ()))
        starts = [s[0] for s in seconds]
        lows, highs = [0.0] * len(seconds), [0.0] * len(seconds)
        low, high = float("inf"), float("-inf")
        for i in range(len(seconds) - 1, -1, -1):
            low, high = min(low, seconds[i][1]), max(high, seconds[i][2])
            lows[i], highs[i] = low, high

        def lookup(start_ms: int) -> tuple[float, float] | None:
            i = bisect.bisect_left(starts, start_ms // _SECOND_MS)
            return (lows[i], highs[i]) if i < len(starts) else None

        return lookup


def vanished(
    before: list[Position],
    after: list[Position],
    extremes: PriceExtremes,
    *,
    since_ms: int,
    now_ms: int,
) -> list[VenueLiquidation]:
    """The liquidations ``before`` -> ``after`` shows: each position of ``before`` with a
    liquidation price that shrank or vanished while its market traded through that price.
    Ids are stable for one position and poll interval, so a repeated call yields the same."""
    events = []
    for position in before:
        liquidation = position.liquidation_price
        if liquidation is None:
            continue
        remaining = sum(
            p.size for p in after if p.market == position.market and p.side == position.side
        )
        lost = position.size - remaining
        if lost <= position.size * 1e-9:
            continue
        traded = extremes.between(position.market, since_ms, now_ms)
        if traded is None:
            continue
        low, high = traded
        if (position.side == "long" and low > liquidation) or (
            position.side == "short" and high < liquidation
        ):
            continue  # closed or reduced by hand: the market never reached its price
        events.append(
            VenueLiquidation(
                id=f"{position.exchange}:sampled:{position.account}:{position.symbol}:"
                f"{position.side}:{since_ms}",
                exchange=position.exchange,
                symbol=position.symbol,
                market=position.market,
                side=position.side,
                price=liquidation,
                quantity=lost,
                size_usd=lost * liquidation,
                ts=now_ms,
                liquidated_user=position.account,
            )
        )
    return events
