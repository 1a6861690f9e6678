"""Exchange shares move: a venue's share of a market drifts over days around its nominal one."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tests.sim.recorded import BlockRecording


def test_a_venues_share_of_a_markets_liquidations_and_open_interest_drifts(
    history_month: Callable[[int], BlockRecording],
) -> None:
    # The first 8 days of history_config(seed=0, n_markets=5) (test_crash reads its month).
    run = history_month(0)
    days = 8
    btc = run.market_index["BTC-PERP"]
    listings = run.markets[btc].listings
    binance = next(i for i, lst in enumerate(listings) if lst.exchange == "binance_usdm")
    per_day_events: list[float] = []
    per_day_oi: list[float] = []
    for day in range(days):
        counts = run.events[day * run.blocks_per_day : (day + 1) * run.blocks_per_day, btc]
        per_day_events.append(counts[:, binance].sum() / counts.sum())
        snaps = [s for s in run.day_end_snapshots[day] if s.market == "BTC-PERP"]
        oi = {s.exchange: s.open_interest for s in snaps}
        per_day_oi.append(oi["binance_usdm"] / sum(oi.values()))
    nominal = listings[binance].share
    # It moves by tens of percent from day to day ...
    assert max(per_day_events) / min(per_day_events) > 1.2
    assert max(per_day_oi) / min(per_day_oi) > 1.2
    # ... around the nominal share.
    assert 0.6 * nominal < float(np.mean(per_day_oi)) < 1.5 * nominal
    assert 0.6 * nominal < float(np.mean(per_day_events)) < 1.5 * nominal
