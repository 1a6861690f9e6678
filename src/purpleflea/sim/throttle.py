"""A snapshot venue's throttle, applied to simulated events: at most one per symbol per second.

Binance's ``forceOrder`` stream pushes, per symbol, only the latest liquidation of each
second (shared/EXCHANGES.md); the other ``snapshot`` venues are thinned by the same rule here.
:func:`kept_by_throttle` is what the coverage estimate's benchmark (bench/coverage_estimate.py)
thins the simulator's truth with, so what a throttled feed hid is known; :class:`SnapshotThrottle`
thins the feed the server and ``purpleflea sim`` publish.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from purpleflea.sim.events import RawBlock
from purpleflea.sim.process import Simulator
from purpleflea.venues import registry


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


class SnapshotThrottle:
    """The simulator's published feed thinned as the snapshot venues thin theirs: of each
    snapshot listing's events, one per second reaches the feed (the first: the count and the
    size mix are what matter here; Binance keeps the latest, which needs the second's end).

    The simulator and its truth are untouched; this sits between the blocks it computes and
    what is published (the live source and ``purpleflea sim`` history), so an event tagged
    ``snapshot`` really comes from a feed that hid the rest of its second. It remembers each
    listing's last second across blocks, so a second split between two blocks still yields one.
    """

    def __init__(self, snapshot: npt.NDArray[np.bool_]) -> None:
        #: ``snapshot[market, listing]``: whether that listing's venue is a snapshot feed.
        self._snapshot = snapshot
        self._last_second = np.full(snapshot.size, -1, dtype=np.int64)
        self.hidden = 0  # events thinned away so far

    @classmethod
    def for_listings(cls, listings: Sequence[Sequence[str]]) -> SnapshotThrottle:
        """From each market's listing exchanges, in the simulator's listing order."""
        width = max((len(row) for row in listings), default=0)
        table = np.zeros((len(listings), max(width, 1)), dtype=bool)
        for m, row in enumerate(listings):
            for li, exchange in enumerate(row):
                table[m, li] = registry.coverage_of(exchange) == "snapshot"
        return cls(table)

    def thin(self, raw: RawBlock) -> RawBlock:
        """``raw`` without the events the snapshot feeds would not have sent."""
        if raw.ts.size == 0:
            return raw
        key = raw.market * self._snapshot.shape[1] + raw.listing
        index = np.flatnonzero(self._snapshot.reshape(-1)[key])
        if index.size == 0:
            return raw
        keys, second = key[index], raw.ts[index] // 1000
        order = np.lexsort((index, second, keys))
        k, s = keys[order], second[order]
        first = np.ones(order.size, dtype=bool)
        first[1:] = (k[1:] != k[:-1]) | (s[1:] != s[:-1])
        first &= s != self._last_second[k]  # that second already sent one in the last block
        np.maximum.at(self._last_second, k, s)
        keep = np.ones(raw.ts.size, dtype=bool)
        keep[index] = False
        keep[index[order][first]] = True
        dropped = int(raw.ts.size - keep.sum())
        if not dropped:
            return raw
        self.hidden += dropped
        return replace(
            raw,
            ts=raw.ts[keep],
            market=raw.market[keep],
            listing=raw.listing[keep],
            side=raw.side[keep],
            price=raw.price[keep],
            fill=raw.fill[keep],
            quantity=raw.quantity[keep],
            run=raw.run[keep],
            cohort=raw.cohort[keep],
        )


def snapshot_throttle(sim: Simulator) -> SnapshotThrottle:
    """The throttle of ``sim``'s listings."""
    return SnapshotThrottle.for_listings(
        [[listing.exchange for listing in spec.listings] for spec in sim.markets]
    )
