"""The snapshot venues' throttle on the simulator's published feed: one event per listing and
second for snapshot venues (across block edges too), every event for complete ones."""

from __future__ import annotations

from collections import Counter

import numpy as np

from purpleflea.sim import SimConfig, Simulator
from purpleflea.sim.events import RawBlock
from purpleflea.sim.throttle import SnapshotThrottle, snapshot_throttle
from purpleflea.venues import registry


def _block(ts: list[int], listing: list[int], first_n: int = 0) -> RawBlock:
    n = len(ts)
    return RawBlock(
        start_ms=ts[0] if ts else 0,
        end_ms=(ts[-1] if ts else 0) + 1,
        first_n=first_n,
        ts=np.array(ts, dtype=np.int64),
        market=np.zeros(n, dtype=np.int64),
        listing=np.array(listing, dtype=np.int64),
        side=np.ones(n, dtype=np.int64),
        price=np.arange(1, n + 1, dtype=np.float64),
        fill=np.arange(1, n + 1, dtype=np.float64),
        quantity=np.ones(n, dtype=np.float64),
        run=np.zeros(n, dtype=np.int64),
        cohort=np.arange(n, dtype=np.int64),
    )


def test_one_per_second_for_snapshot_listings_and_all_for_complete_ones() -> None:
    throttle = SnapshotThrottle.for_listings([["binance_usdm", "bybit"]])
    # Listing 0 (snapshot): three in second 10, one in 11. Listing 1 (complete): all kept.
    raw = _block([10_000, 10_100, 10_900, 10_950, 11_000, 11_500], [0, 0, 0, 1, 0, 1])
    thinned = throttle.thin(raw)
    assert thinned.ts.tolist() == [10_000, 10_950, 11_000, 11_500]
    assert thinned.listing.tolist() == [0, 1, 0, 1]
    assert thinned.price.tolist() == [1.0, 4.0, 5.0, 6.0]  # every array masked alike
    assert throttle.hidden == 2


def test_a_second_split_between_two_blocks_still_sends_one() -> None:
    throttle = SnapshotThrottle.for_listings([["okx"]])
    first = throttle.thin(_block([20_100, 20_400], [0, 0]))
    second = throttle.thin(_block([20_600, 20_900, 21_050], [0, 0, 0], first_n=2))
    assert first.ts.tolist() == [20_100]
    assert second.ts.tolist() == [21_050]


def test_the_published_simulated_feed_is_thinned_like_the_venues() -> None:
    sim = Simulator(SimConfig.demo(seed=11, n_markets=20))
    throttle = snapshot_throttle(sim)
    per_second: Counter[tuple[str, str, int]] = Counter()
    computed = published = 0
    while published < 2_000:
        raw = sim.next_block()
        computed += raw.ts.size
        thinned = throttle.thin(raw)
        published += thinned.ts.size
        for event in sim.venue_events(thinned):
            assert event.ts is not None
            if registry.coverage_of(event.exchange) == "snapshot":
                per_second[(event.exchange, event.symbol, event.ts // 1000)] += 1
    assert per_second
    assert max(per_second.values()) == 1
    assert throttle.hidden == computed - published > 0
