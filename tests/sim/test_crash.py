"""The served market's crash episode: a real crash's shape and size, and calm outside it.

Real figures (``bench/sim_realism.py`` reads them from ``shared/data/real``): Binance perpetual
hourly candles over a year and Hyperliquid hourly open interest through 2025-10-10.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from purpleflea.sim import Simulator
from purpleflea.sim.history import blocks, history_config
from tests.sim.recorded import BlockRecording, Recording

#: 2025-10-10, Binance perpetuals: the 21:00 hour's low against the 20:00 hour's open.
REAL_CRASH_LOW = {"BTC-PERP": -0.129, "ETH-PERP": -0.161, "SOL-PERP": -0.319, "DOGE-PERP": -0.638}
#: Hyperliquid BTC open interest, 20:00 -> 22:00: $4.43B -> $2.19B.
REAL_OI_FALL = -0.51
#: A year of Binance perpetual hourly closes: p99.9 of |1 h log return|, BTC and the five
#: coins pooled (BTC ETH SOL DOGE HYPE); 14 days of Binance BTC 5-minute closes (Coinglass):
#: p99.9 of |5 min log return|.
REAL_1H_P999_BTC = 0.0314
REAL_1H_P999_TOP = 0.0485
REAL_5M_P999_BTC = 0.0112
#: The scorecard's pass band: within x1.5 of the real figure (the simulated p99.9 of a month
#: of hours still varies by ~30% from seed to seed).
BAND = 1.5


def test_the_served_market_crashes_in_two_waves_within_its_first_two_minutes(
    served_crash: Callable[[int], Recording],
) -> None:
    for seed in (0, 1):
        run = served_crash(seed)  # the first 50 minutes of SimConfig.served(seed=seed)
        config = run.config
        assert config.crash_start_ms is not None
        assert config.crash_start_ms - config.start_ms <= 120_000
        per_minute = np.zeros(50)
        np.add.at(per_minute, (run.ts - config.start_ms) // 60_000, run.size_usd)
        # Each market's lowest mark after any step against its mark at the start.
        lows = {}
        for m in REAL_CRASH_LOW:
            i = run.market_index[m]
            lows[m] = min(0.0, float(run.marks[:, i].min() / run.start_marks[i] - 1))
        btc = run.market_index["BTC-PERP"]
        oi_before, oi_after = run.open_interest_start[btc], run.open_interest_end[btc]
        # Episode minutes 0-8 fall, 8-16 bounce, 16-30 fall again (it starts at once).
        wave_1, bounce, wave_2 = (per_minute[a:b].sum() for a, b in ((0, 8), (9, 16), (17, 30)))
        assert wave_1 > 50e6, per_minute
        assert wave_1 > 3 * bounce, per_minute
        assert wave_2 > 3 * bounce, per_minute
        # As deep as a real crash for BTC, and no deeper than the real one anywhere.
        assert lows["BTC-PERP"] < -0.05
        for market, low in lows.items():
            assert low >= REAL_CRASH_LOW[market], (market, low)
        # Open interest falls by a large part of it, but not beyond 2025-10-10's fall.
        assert REAL_OI_FALL < oi_after / oi_before - 1 < -0.2


def test_outside_a_crash_markets_move_no_more_than_real_ones(
    history_month: Callable[[int], BlockRecording],
) -> None:
    # A month of the five largest markets, two seeds, no crash episode (5-minute blocks).
    hourly_btc: list[np.ndarray] = []
    hourly_top: list[np.ndarray] = []
    five_min_btc: list[np.ndarray] = []
    for seed in (0, 1):
        log_marks = np.log(history_month(seed).marks)  # at the start and after each block
        five_min_btc.append(np.abs(np.diff(log_marks[:, 0])))
        hourly = np.abs(log_marks[12::12] - log_marks[:-12:12])
        hourly_btc.append(hourly[:, 0])
        hourly_top.append(hourly.ravel())
    assert np.percentile(np.concatenate(hourly_btc), 99.9) <= BAND * REAL_1H_P999_BTC
    assert np.percentile(np.concatenate(hourly_top), 99.9) <= BAND * REAL_1H_P999_TOP
    assert np.percentile(np.concatenate(five_min_btc), 99.9) <= BAND * REAL_5M_P999_BTC


def test_a_scheduled_crash_changes_nothing_before_it_starts() -> None:
    # The episode's volatility boost once reached the step that ends at its start (the last
    # step before it): a run with an episode and one without differed before the episode.
    plain = history_config(seed=3, n_markets=2)
    crash_at = plain.start_ms + 3_600_000
    with_crash = Simulator(history_config(seed=3, n_markets=2, crash_start_ms=crash_at))
    without = Simulator(plain)
    for a, b in zip(blocks(with_crash, 1 / 24), blocks(without, 1 / 24), strict=True):
        assert np.array_equal(a.ts, b.ts)
        assert np.array_equal(a.price, b.price)
    assert np.array_equal(with_crash.marks(), without.marks())
    next(blocks(with_crash, 1 / 288))
    next(blocks(without, 1 / 288))
    assert not np.array_equal(with_crash.marks(), without.marks())  # and it does start
