"""A snapshot venue's throttle, applied to simulated events: at most one per symbol per second.

Binance's ``forceOrder`` stream pushes, per symbol, only the latest liquidation of each
second (shared/EXCHANGES.md); the other ``snapshot`` venues are thinned by the same rule here.
The simulator's feed itself is not thinned yet (its events are its truth); this is what the
coverage estimate's benchmark (bench/coverage_estimate.py) thins them with, so the truth of what
a throttled feed hid is known.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def kept_by_throttle(
    ts: npt.NDArray[np.int64], symbol: npt.NDArray[np.int64], throttled: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """Which events a throttled feed shows: of the ``throttled`` events, the last (by ``ts``,
    ties by position) of each ``symbol`` (any integer key of one instrument) and second;
    every other event is shown. Arrays are aligned, one entry per event."""
    keep = np.ones(ts.size, dtype=bool)
    index = np.flatnonzero(throttled)
    if index.size == 0:
        return keep
    second = ts[index] // 1000
    # Sort by (symbol, second, ts, position): the last of each run of equal (symbol, second)
    # is the one the venue pushes.
    order = np.lexsort((index, ts[index], second, symbol[index]))
    sym, sec = symbol[index][order], second[order]
    last = np.ones(order.size, dtype=bool)
    last[:-1] = (sym[1:] != sym[:-1]) | (sec[1:] != sec[:-1])
    keep[index] = False
    keep[index[order][last]] = True
    return keep
