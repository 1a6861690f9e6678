"""Exchange shares move: a venue's share of a market drifts over days around its nominal one."""

from __future__ import annotations

import numpy as np

from purpleflea.sim import Simulator
from purpleflea.sim.history import blocks, history_config


def test_a_venues_share_of_a_markets_liquidations_and_open_interest_drifts() -> None:
    sim = Simulator(history_config(seed=0, n_markets=5))
    btc = sim.market_index["BTC-PERP"]
    listings = sim.markets[btc].listings
    binance = next(i for i, lst in enumerate(listings) if lst.exchange == "binance_usdm")
    per_day_events: list[float] = []
    per_day_oi: list[float] = []
    on_binance = total = 0
    for n, raw in enumerate(blocks(sim, 8), start=1):
        mine = raw.market == btc
        on_binance += int(np.count_nonzero(mine & (raw.listing == binance)))
        total += int(np.count_nonzero(mine))
        if n % 288 == 0:  # a day of 5-minute blocks
            per_day_events.append(on_binance / total)
            on_binance = total = 0
            snaps = [s for s in sim.snapshots(raw.end_ms) if s.market == "BTC-PERP"]
            oi = {s.exchange: s.open_interest for s in snaps}
            per_day_oi.append(oi["binance_usdm"] / sum(oi.values()))
    nominal = listings[binance].share
    # It moves by tens of percent from day to day ...
    assert max(per_day_events) / min(per_day_events) > 1.2
    assert max(per_day_oi) / min(per_day_oi) > 1.2
    # ... around the nominal share.
    assert 0.6 * nominal < float(np.mean(per_day_oi)) < 1.5 * nominal
    assert 0.6 * nominal < float(np.mean(per_day_events)) < 1.5 * nominal
