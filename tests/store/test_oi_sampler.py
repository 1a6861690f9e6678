"""What open interest is worth a row: a market's total, when it moved 0.5 % or went stale."""

from __future__ import annotations

import numpy as np
import pytest

from purpleflea.model import MarketSnapshot
from purpleflea.store.base import OpenInterest
from purpleflea.store.oi_sampler import OpenInterestSampler, TotalsSampler

MIN = 60_000


def _snap(
    ts: int,
    usd: float,
    exchange: str = "binance_usdm",
    market: str = "BTC-PERP",
    mark: float = 100.0,
) -> MarketSnapshot:
    return MarketSnapshot(
        exchange=exchange,
        symbol=market.removesuffix("-PERP") + "USDT",
        market=market,
        ts=ts,
        mark_price=mark,
        open_interest=usd / mark,
        open_interest_usd=usd,
    )


def _row(ts: int, usd: float, market: str = "BTC-PERP", mark: float = 100.0) -> OpenInterest:
    return OpenInterest(ts=ts, market=market, open_interest_usd=usd, mark_price=mark)


def test_a_row_is_the_sum_over_the_listings_at_the_latest_snapshot_ts() -> None:
    sampler = OpenInterestSampler()
    sampler.note(_snap(1_000, 1e9))
    sampler.note(_snap(4_000, 5e8, "bybit"))
    sampler.note(_snap(2_000, 2e9, "okx"))
    sampler.note(_snap(3_000, 7e9, market="ETH-PERP"))
    assert sampler.sample() == [_row(3_000, 7e9, "ETH-PERP"), _row(4_000, 3.5e9)]
    assert sampler.sample() == []  # nothing new since


def test_a_move_under_the_deadband_is_not_written_and_one_over_it_is() -> None:
    sampler = OpenInterestSampler(deadband=0.005)
    sampler.note(_snap(0, 1e9))
    sampler.note(_snap(0, 1e9, "bybit"))
    assert sampler.sample() == [_row(0, 2e9)]
    sampler.note(_snap(MIN, 1e9 + 9.9e6))  # the total moved 0.495 %
    assert sampler.sample() == []
    # Measured from the last row written, not from the last sample: small steps add up.
    sampler.note(_snap(2 * MIN, 1e9 + 1.001e7))  # 0.5005 % above the row
    assert sampler.sample() == [_row(2 * MIN, 2.01001e9)]
    sampler.note(_snap(3 * MIN, 1e9 - 9.9e6, "bybit"))  # 0.4925 % down
    assert sampler.sample() == []
    sampler.note(_snap(4 * MIN, 1e9 - 1.01e7, "bybit"))  # 0.5025 % down
    assert sampler.sample() == [_row(4 * MIN, 2.01001e9 - 1.01e7)]


def test_a_listing_at_zero_leaves_the_sum() -> None:
    sampler = OpenInterestSampler()
    sampler.note(_snap(0, 1e9))
    sampler.note(_snap(0, 3e9, "bybit"))
    sampler.sample()
    sampler.note(_snap(MIN, 0.0, "bybit"))  # as the engine forgets an instrument told 0
    assert sampler.sample() == [_row(MIN, 1e9)]
    sampler.note(_snap(2 * MIN, 0.0))
    assert sampler.sample() == [_row(2 * MIN, 0.0)]  # forgotten in the replay too
    sampler.note(_snap(3 * MIN, 0.0))
    assert sampler.sample() == []  # still 0: no move


def test_the_heartbeat_writes_an_unchanged_total_every_15_minutes_of_snapshot_time() -> None:
    sampler = OpenInterestSampler(heartbeat_ms=15 * MIN)
    written = []
    for minute in range(40):
        sampler.note(_snap(minute * MIN + 500, 1e9))
        written += [row.ts for row in sampler.sample()]
    assert written == [500, 15 * MIN + 500, 30 * MIN + 500]
    # The same snapshot again is no news: its ts is not 15 minutes past the last row's.
    sampler.note(_snap(39 * MIN + 500, 1e9))
    assert sampler.sample() == []
    # A listing's late snapshot, older than the market's last row, still moves the total:
    # written at the market's latest ts (so it replaces that row in a store), never earlier.
    sampler.note(_snap(35 * MIN, 1e9, "bybit"))
    sampler.note(_snap(36 * MIN, 0.0, "okx"))  # nothing to forget: no change
    assert sampler.sample() == [_row(39 * MIN + 500, 2e9)]


def test_markets_are_sampled_independently() -> None:
    sampler = OpenInterestSampler()
    sampler.note(_snap(0, 1e9))
    sampler.note(_snap(0, 1e9, market="ETH-PERP"))
    sampler.sample()
    sampler.note(_snap(MIN, 1.01e9))
    sampler.note(_snap(MIN, 1.001e9, market="ETH-PERP"))
    assert sampler.sample() == [_row(MIN, 1.01e9)]


@pytest.mark.parametrize(
    ("deadband", "heartbeat_ms", "message"),
    [
        (-0.1, 1, "deadband must be >= 0, got -0.1"),
        (float("nan"), 1, "deadband must be >= 0, got nan"),
        (0.005, 0, "heartbeat_ms must be at least 1, got 0"),
    ],
)
def test_bad_settings_are_refused(deadband: float, heartbeat_ms: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OpenInterestSampler(deadband=deadband, heartbeat_ms=heartbeat_ms)


def test_the_totals_sampler_keeps_the_same_rows_as_the_listing_sampler() -> None:
    # The simulator's history samples every market's total at once; a backtest of it must
    # replay the rows the live rule would have kept from the same totals.
    rng = np.random.default_rng(7)
    markets = ["SOL-PERP", "BTC-PERP", "ETH-PERP", "DOGE-PERP"]
    totals = TotalsSampler(markets)
    listings = OpenInterestSampler()
    usd = np.array([3e8, 4e9, 2e9, 1e8])
    mark = np.array([150.0, 1e5, 3e3, 0.2])
    kept = 0
    for step in range(400):
        ts = 1_000 + step * 5 * MIN
        usd = usd * np.exp(rng.normal(0, 0.004, 4))
        mark = mark * np.exp(rng.normal(0, 0.002, 4))
        usd[rng.random(4) < 0.02] = 0.0  # a market reporting none
        for i, market in enumerate(markets):
            listings.note(_snap(ts, float(usd[i]), market=market, mark=float(mark[i])))
        rows = totals.sample(ts, usd, mark)
        assert rows == listings.sample()
        kept += len(rows)
    # Neither every round nor none: the deadbands and the heartbeat both decided.
    assert 4 < kept < 4 * 400 / 2


def test_a_mark_that_moved_is_worth_a_row_with_the_latest_snapshots_mark() -> None:
    # A backtest's heatmap places new positions at the marks it is shown.
    sampler = OpenInterestSampler()
    sampler.note(_snap(1_000, 1e9, mark=100.0))
    assert sampler.sample() == [_row(1_000, 1e9, mark=100.0)]
    sampler.note(_snap(MIN, 1e9, mark=100.2))  # +0.2 %: inside the mark's deadband
    assert sampler.sample() == []
    sampler.note(_snap(2 * MIN, 1e9, mark=99.7))  # -0.3 % from the last row's mark
    assert sampler.sample() == [_row(2 * MIN, 1e9, mark=99.7)]
    # The mark is the latest snapshot's, not the last one noted: a late snapshot of another
    # listing changes the sum, not the mark.
    sampler.note(_snap(3 * MIN, 1e9, mark=99.8))
    sampler.note(_snap(MIN, 1e9, "okx", mark=90.0))
    assert sampler.sample() == [_row(3 * MIN, 2e9, mark=99.8)]
