"""The heatmap model: open-interest changes become tranches at their liquidation prices, leave
when open interest falls or price sweeps them, and read out as buckets, clusters and fuel."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from purpleflea.engine.heatmap import (
    FIRST_SIGHT,
    FirstSight,
    HeatmapConfig,
    HeatmapModel,
    LeverageTier,
    format_price,
)
from purpleflea.engine.heatmap_feed import HeatmapFeed
from purpleflea.model import MarketSnapshot, Side

# Turnover off unless a test is about it, so each test sees one mechanism at a time; new open
# interest through the tiers (``opened=None``; by default it follows the fitted shape).
TEN_X = HeatmapConfig(tiers=(LeverageTier(10, 1.0, 0.005),), opened=None, turnover_per_hour=0)
TWO_TIERS = HeatmapConfig(
    tiers=(LeverageTier(10, 0.5, 0.005), LeverageTier(25, 0.5, 0.005)),
    opened=None,
    turnover_per_hour=0,
)


def snap(
    ts: int,
    mark: float,
    coins: float,
    *,
    market: str = "BTC-PERP",
    exchange: str = "binance_usdm",
    symbol: str = "BTCUSDT",
) -> MarketSnapshot:
    return MarketSnapshot(
        exchange=exchange,
        symbol=symbol,
        market=market,
        ts=ts,
        mark_price=mark,
        open_interest=coins,
        open_interest_usd=coins * mark,
    )


def opened_at(model: HeatmapModel, price: float, coins: float) -> HeatmapModel:
    """A model that saw no open interest, then ``coins`` opened at exactly ``price``."""
    model.on_snapshot(snap(0, price, 0.0))
    model.on_snapshot(snap(1, price, coins))
    return model


def weighted_price(prices: tuple[float, ...], usd: tuple[float, ...], bucket: float) -> float:
    centres = np.array(prices) + bucket / 2
    return float(np.average(centres, weights=np.array(usd)))


def test_an_open_interest_increase_lands_at_the_tiers_liquidation_prices() -> None:
    model = opened_at(HeatmapModel(TEN_X), 100_000.0, 10.0)
    long_liq = 100_000 * (1 - 1 / 10) / (1 - 0.005)  # 90,452.26
    short_liq = 100_000 * (1 + 1 / 10) / (1 + 0.005)  # 109,452.74
    heat = model.heatmap("BTC-PERP", low=80_000, high=120_000, bucket=10)
    assert weighted_price(heat.prices, heat.long_usd, 10) == pytest.approx(long_liq, rel=1e-3)
    assert weighted_price(heat.prices, heat.short_usd, 10) == pytest.approx(short_liq, rel=1e-3)
    # Notional at risk is the coins at their liquidation price.
    assert sum(heat.long_usd) == pytest.approx(10 * long_liq, rel=1e-3)
    assert sum(heat.short_usd) == pytest.approx(10 * short_liq, rel=1e-3)
    # Nothing on the wrong side of the mark.
    assert sum(u for p, u in zip(heat.prices, heat.long_usd, strict=True) if p >= 100_000) == 0
    assert sum(u for p, u in zip(heat.prices, heat.short_usd, strict=True) if p < 100_000) == 0


def test_the_leverage_mix_splits_new_open_interest_by_weight() -> None:
    model = opened_at(HeatmapModel(TWO_TIERS), 100_000.0, 10.0)
    liq_25x = 100_000 * (1 - 1 / 25) / (1 - 0.005)  # 96,482
    liq_10x = 100_000 * (1 - 1 / 10) / (1 - 0.005)  # 90,452
    assert model.fuel("BTC-PERP", "long", 100_000, 4.0) == pytest.approx(5 * liq_25x, rel=1e-3)
    assert model.fuel("BTC-PERP", "long", 100_000, 12.0) == pytest.approx(
        5 * (liq_25x + liq_10x), rel=1e-3
    )


def test_entries_spread_over_the_candle_range() -> None:
    model = HeatmapModel(TEN_X)
    model.on_snapshot(snap(0, 100_000, 0.0))
    model.on_snapshot(snap(1, 100_000, 10.0), low=98_000, high=102_000)
    heat = model.heatmap("BTC-PERP", low=80_000, high=120_000, bucket=100)
    spread = [p for p, u in zip(heat.prices, heat.long_usd, strict=True) if u > 0]
    factor = 0.9 / 0.995
    assert min(spread) == pytest.approx(98_000 * factor, abs=200)
    assert max(spread) == pytest.approx(102_000 * factor, abs=200)


def test_open_interest_decrease_removes_positions_proportionally() -> None:
    model = opened_at(HeatmapModel(TWO_TIERS), 100_000.0, 10.0)
    before = model.heatmap("BTC-PERP", bucket=100)
    model.on_snapshot(snap(2, 100_000, 4.0))
    after = model.heatmap("BTC-PERP", bucket=100)
    assert np.allclose(np.array(after.long_usd), 0.4 * np.array(before.long_usd))
    assert np.allclose(np.array(after.short_usd), 0.4 * np.array(before.short_usd))


def test_turnover_moves_positions_to_current_prices_at_constant_open_interest() -> None:
    config = HeatmapConfig(tiers=TEN_X.tiers, opened=None, turnover_per_hour=0.5)
    model = opened_at(HeatmapModel(config), 100_000.0, 10.0)
    model.on_snapshot(snap(1 + 3_600_000, 105_000, 10.0), low=104_000, high=106_000)
    kept = math.exp(-0.5)
    # The kept part is still at the old 10x liquidation price (90,452); the reopened part is
    # spread over the path since the last snapshot (100,000 .. 106,000 -> 90,452 .. 95,879).
    old_liq, new_low, new_high = 100_000 * 0.9 / 0.995, 90_452.26, 106_000 * 0.9 / 0.995
    span = math.log(new_high / new_low)

    def reopened_between(low: float, high: float) -> float:
        # Uniform in log-price: coins x the mean price of the slice.
        share = math.log(high / low) / span
        return 10 * (1 - kept) * share * (high - low) / math.log(high / low)

    at_old = model.fuel("BTC-PERP", "long", 90_600, 100 * (1 - 90_300 / 90_600))
    expected = 10 * kept * old_liq + reopened_between(new_low, 90_600)
    assert at_old == pytest.approx(expected, rel=5e-3)
    above = model.fuel("BTC-PERP", "long", 96_000, 100 * (1 - 90_600 / 96_000))
    assert above == pytest.approx(reopened_between(90_600, new_high), rel=5e-3)


def test_a_candle_low_sweeps_longs_it_reached_and_spares_the_rest() -> None:
    model = opened_at(HeatmapModel(TWO_TIERS), 100_000.0, 10.0)
    # Price dipped to 95,000 and came back: the 25x longs (liq ~96,482) are gone, the 10x
    # longs (liq ~90,452) and every short survive. Open interest fell by what was liquidated.
    model.on_snapshot(snap(2, 99_000, 5.0), low=95_000, high=99_500)
    assert model.fuel("BTC-PERP", "long", 99_000, 5.0) == 0.0
    liq_10x = 100_000 * 0.9 / 0.995
    assert model.fuel("BTC-PERP", "long", 99_000, 15.0) == pytest.approx(5 * liq_10x, rel=1e-3)
    # The shorts' counterparties left with the liquidations: both short tiers scaled to 5 coins.
    short_total = model.fuel("BTC-PERP", "short", 99_000, 30.0)
    short_liqs = 100_000 * (1.1 / 1.005 + 1.04 / 1.005) / 2
    assert short_total == pytest.approx(5 * short_liqs, rel=1e-3)


def test_without_a_range_the_path_from_the_previous_mark_sweeps() -> None:
    model = opened_at(HeatmapModel(TWO_TIERS), 100_000.0, 10.0)
    model.on_snapshot(snap(2, 96_000, 10.0))  # straight down through the 25x longs
    heat = model.heatmap("BTC-PERP", low=80_000, high=100_000, bucket=100)
    # The 25x longs were replaced by new ones opened on the way down (open interest held).
    assert sum(u for p, u in zip(heat.prices, heat.long_usd, strict=True) if p > 96_000) == 0
    assert model.fuel("BTC-PERP", "long", 96_000, 20.0) > 0


def test_shorts_are_swept_by_the_high() -> None:
    model = opened_at(HeatmapModel(TWO_TIERS), 100_000.0, 10.0)
    model.on_snapshot(snap(2, 101_000, 5.0), high=104_000)
    assert model.fuel("BTC-PERP", "short", 101_000, 5.0) == 0.0  # 25x shorts at ~103,483
    assert model.fuel("BTC-PERP", "short", 101_000, 10.0) > 0  # 10x shorts at ~109,453


def test_first_sight_spreads_existing_open_interest_short_of_the_mark() -> None:
    model = HeatmapModel()
    model.on_snapshot(snap(0, 50_000, 100.0))
    heat = model.heatmap("BTC-PERP", low=1_000, high=200_000, bucket=100)
    longs = dict(zip(heat.prices, heat.long_usd, strict=True))
    shorts = dict(zip(heat.prices, heat.short_usd, strict=True))
    # Nothing beyond the mark, give or take the 0.1 % grid bin holding it.
    assert sum(u for p, u in longs.items() if p >= 50_100) == 0
    assert sum(u for p, u in shorts.items() if p < 49_900) == 0
    long_coins = sum(u / (p + 50) for p, u in longs.items())
    assert long_coins == pytest.approx(100.0, rel=0.01)


def gamma_share(shape: float, scale: float, reach: float, x: float) -> float:
    """Share of a gamma density on [0, reach] lying within [0, x] (trapezoids on a fine grid)."""
    grid = np.linspace(1e-9, reach, 200_001)
    density = grid ** (shape - 1) * np.exp(-grid / scale)
    cumulative = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2)])
    return float(np.interp(x, grid, cumulative) / cumulative[-1])


def test_first_sight_places_liquidations_by_the_fitted_distance_shape() -> None:
    # A new user saw $317M in every BTC bucket from 110,500 to 113,500: the open interest of a
    # market first seen was spread evenly over entries within 3 % of the mark. Its liquidation
    # prices now sit at log-distances from the mark following FIRST_SIGHT's gamma, fitted on
    # real positions (bench/heatmap_prior.py), on both sides.
    mark, coins = 50_000.0, 100.0
    model = HeatmapModel()
    model.on_snapshot(snap(0, mark, coins))
    reach = FIRST_SIGHT.reach
    heat = model.heatmap(
        "BTC-PERP",
        low=mark * math.exp(-reach) * 0.99,
        high=mark * math.exp(reach) * 1.01,
        bucket=10,
    )
    centres = np.array(heat.prices) + 5
    long_coins = np.array(heat.long_usd) / centres
    short_coins = np.array(heat.short_usd) / centres
    assert long_coins.sum() == pytest.approx(coins, rel=1e-3)
    assert short_coins.sum() == pytest.approx(coins, rel=1e-3)
    distance = np.abs(np.log(centres / mark))
    for x in (0.01, 0.03, 0.05, 0.1, 0.2, 0.4, 0.6):
        expected = gamma_share(FIRST_SIGHT.shape, FIRST_SIGHT.scale, reach, x)
        assert long_coins[distance <= x].sum() / coins == pytest.approx(expected, abs=0.005)
        assert short_coins[distance <= x].sum() / coins == pytest.approx(expected, abs=0.005)
    # Nothing beyond the reach, and a smooth hump, not a plateau: the densest 1 % of
    # distance is the mode's, (shape - 1) x scale from the mark.
    assert long_coins[distance > reach + 1e-3].sum() == 0
    percent = np.bincount(np.minimum(distance * 100, 69).astype(int), weights=long_coins)
    mode = (FIRST_SIGHT.shape - 1) * FIRST_SIGHT.scale
    assert abs(int(np.argmax(percent)) - mode * 100) <= 1


def test_the_earlier_flat_first_sight_is_kept_for_comparison() -> None:
    model = HeatmapModel(HeatmapConfig(tiers=TEN_X.tiers, first_sight=None, opened=None))
    model.on_snapshot(snap(0, 100_000, 10.0))
    heat = model.heatmap("BTC-PERP", low=80_000, high=120_000, bucket=100)
    spread = [p for p, u in zip(heat.prices, heat.long_usd, strict=True) if u > 0]
    factor = 0.9 / 0.995  # entries within 3 % of the mark, at the 10x liquidation price
    assert min(spread) == pytest.approx(100_000 / 1.03 * factor, abs=200)
    assert max(spread) == pytest.approx(100_000 * 1.03 * factor, abs=200)


SHAPED = HeatmapConfig(opened=FIRST_SIGHT, turnover_per_hour=0)


def test_opened_open_interest_can_follow_the_real_shape_from_its_entry() -> None:
    # With ``opened``, an increase is placed like real positions (FIRST_SIGHT's gamma of
    # liquidation log-distances), from the entry it was opened at, not through the tiers.
    mark, coins = 50_000.0, 100.0
    model = opened_at(HeatmapModel(SHAPED), mark, coins)
    heat = model.heatmap("BTC-PERP", low=mark * 0.4, high=mark * 2.1, bucket=10)
    centres = np.array(heat.prices) + 5
    long_coins = np.array(heat.long_usd) / centres
    short_coins = np.array(heat.short_usd) / centres
    assert long_coins.sum() == pytest.approx(coins, rel=1e-3)
    assert short_coins.sum() == pytest.approx(coins, rel=1e-3)
    assert long_coins[centres >= mark].sum() == 0
    assert short_coins[centres < mark].sum() == 0
    distance = np.abs(np.log(centres / mark))
    for x in (0.03, 0.1, 0.3):
        expected = gamma_share(FIRST_SIGHT.shape, FIRST_SIGHT.scale, FIRST_SIGHT.reach, x)
        assert long_coins[distance <= x].sum() / coins == pytest.approx(expected, abs=0.005)
        assert short_coins[distance <= x].sum() / coins == pytest.approx(expected, abs=0.005)


def test_opened_shape_follows_the_entries_and_the_sweep_still_applies() -> None:
    model = HeatmapModel(SHAPED)
    model.on_snapshot(snap(0, 100_000, 0.0))
    model.on_snapshot(snap(1, 100_000, 10.0), low=98_000, high=102_000)
    long_at_mark = model.fuel("BTC-PERP", "long", 100_000, 99.0)
    # Opened at entries from 98,000 to 102,000: the map is the shape smeared over that range
    # and cut at the mark; the same increase opened at 100,000 alone has the same total.
    single = opened_at(HeatmapModel(SHAPED), 100_000.0, 10.0)
    assert long_at_mark == pytest.approx(single.fuel("BTC-PERP", "long", 100_000, 99.0), rel=0.01)
    # A low 8 % down sweeps every long whose liquidation price it reached (open interest
    # halves, so nothing is reopened in the swept range).
    model.on_snapshot(snap(2, 100_000, 5.0), low=92_000, high=100_000)
    assert model.fuel("BTC-PERP", "long", 100_000, 8.0) < 1e-3 * long_at_mark
    held = model.heatmap("BTC-PERP", low=40_000, high=100_000, bucket=100)
    coins = sum(u / (p + 50) for p, u in zip(held.prices, held.long_usd, strict=True))
    assert coins == pytest.approx(5.0, rel=0.01)


def test_opened_share_blends_the_shape_with_the_tiers() -> None:
    half = HeatmapConfig(
        tiers=TEN_X.tiers, opened=FIRST_SIGHT, opened_share=0.5, turnover_per_hour=0
    )
    model = opened_at(HeatmapModel(half), 100_000.0, 10.0)
    tiers = opened_at(HeatmapModel(TEN_X), 100_000.0, 10.0)
    shaped = opened_at(HeatmapModel(SHAPED), 100_000.0, 10.0)
    for pct in (5.0, 9.0, 12.0, 40.0):
        both = [m.fuel("BTC-PERP", "long", 100_000, pct) for m in (tiers, shaped)]
        assert model.fuel("BTC-PERP", "long", 100_000, pct) == pytest.approx(
            sum(both) / 2, rel=1e-6
        )


def test_exchanges_of_one_market_add_up() -> None:
    model = HeatmapModel(TEN_X)
    for exchange, coins in (("binance_usdm", 10.0), ("bybit", 5.0)):
        model.on_snapshot(snap(0, 100_000, 0.0, exchange=exchange))
        model.on_snapshot(snap(1, 100_000, coins, exchange=exchange))
    model.on_snapshot(snap(1, 3_000, 7.0, market="ETH-PERP", symbol="ETHUSDT"))
    assert model.markets() == ("BTC-PERP", "ETH-PERP")
    liq = 100_000 * 0.9 / 0.995
    assert model.fuel("BTC-PERP", "long", 100_000, 15.0) == pytest.approx(15 * liq, rel=1e-3)


def test_a_stale_snapshot_is_ignored() -> None:
    model = opened_at(HeatmapModel(TEN_X), 100_000.0, 10.0)
    before = model.heatmap("BTC-PERP")
    assert model.on_snapshot(snap(0, 50_000, 1.0)) is False
    assert model.heatmap("BTC-PERP") == before


def test_clusters_name_the_dense_zones() -> None:
    model = opened_at(HeatmapModel(TEN_X), 100_000.0, 10.0)
    heat = model.heatmap("BTC-PERP", low=80_000, high=120_000, bucket=1_000)
    assert [c.side for c in heat.clusters] == ["short", "long"]  # larger notional first
    long_zone = heat.clusters[1]
    assert long_zone.low <= 100_000 * 0.9 / 0.995 < long_zone.high
    assert long_zone.usd == pytest.approx(sum(heat.long_usd))
    assert long_zone.label == "$905K of longs between $90,000 and $91,000"
    assert long_zone.density == pytest.approx(long_zone.usd / 1.0)  # $1,000 = 1 % of the mark
    assert long_zone.strength == pytest.approx(40)  # all of it in 1 bucket of 40


def test_cluster_count_and_threshold_follow_the_config() -> None:
    model = HeatmapModel(HeatmapConfig(max_clusters=1))
    opened_at(model, 100_000.0, 10.0)
    heat = model.heatmap("BTC-PERP", bucket=100)
    assert len([c for c in heat.clusters if c.side == "long"]) == 1
    assert len(heat.clusters) == 2
    flat = HeatmapModel(HeatmapConfig(cluster_factor=1e6))
    opened_at(flat, 100_000.0, 10.0)
    assert flat.heatmap("BTC-PERP").clusters == ()


def test_labels_read_well_for_small_coins_and_big_sums() -> None:
    assert format_price(91_000, 500) == "$91,000"
    assert format_price(0.0001234, 0.0000001) == "$0.0001234"
    assert format_price(2.5, 0.25) == "$2.50"
    model = opened_at(HeatmapModel(TEN_X), 0.0001234, 1e9)
    [long_zone] = [c for c in model.heatmap("BTC-PERP").clusters if c.side == "long"]
    assert long_zone.label == "$112K of longs between $0.0001115 and $0.0001120"


def test_default_view_is_round_and_centred_on_the_mark() -> None:
    model = opened_at(HeatmapModel(), 77_563.3, 10.0)
    heat = model.heatmap("BTC-PERP")
    assert heat.bucket_size == 250  # 20 % either side over ~100 buckets, rounded
    assert heat.prices[0] % 250 == 0
    assert heat.prices[0] <= 77_563.3 * 0.8
    assert heat.prices[-1] + heat.bucket_size >= 77_563.3 * 1.2
    assert heat.mark_price == 77_563.3
    assert heat.ts == 1
    assert len(heat.prices) == len(heat.long_usd) == len(heat.short_usd)


def test_explicit_range_and_bucket_are_honoured() -> None:
    model = opened_at(HeatmapModel(), 100_000.0, 10.0)
    heat = model.heatmap("BTC-PERP", low=90_000, high=95_000, bucket=250)
    assert heat.prices == tuple(90_000 + 250 * i for i in range(20))
    assert sum(heat.long_usd) == pytest.approx(
        model.fuel("BTC-PERP", "long", 95_000, 100 * 5_000 / 95_000), rel=1e-9
    )
    wide = model.heatmap("BTC-PERP", low=1, high=1_000_000, bucket=1_000)
    total = sum(wide.long_usd)
    assert total == pytest.approx(model.fuel("BTC-PERP", "long", 100_000, 99.99), rel=1e-6)


def test_bad_inputs_raise_clear_errors() -> None:
    model = opened_at(HeatmapModel(), 100_000.0, 10.0)
    with pytest.raises(ValueError, match="unknown market 'ETH-PERP'"):
        model.heatmap("ETH-PERP")
    with pytest.raises(ValueError, match="unknown market 'ETH-PERP'"):
        model.fuel("ETH-PERP", "long", 1.0, 1.0)
    with pytest.raises(ValueError, match="bucket must be positive, got 0"):
        model.heatmap("BTC-PERP", bucket=0)
    with pytest.raises(ValueError, match="bucket must be positive, got -5"):
        model.heatmap("BTC-PERP", bucket=-5)
    with pytest.raises(ValueError, match="low 95000 must be below high 90000"):
        model.heatmap("BTC-PERP", low=95_000, high=90_000)
    # It said "between 73545.50980370244 and 110318.26470555365" and not what would do.
    with pytest.raises(ValueError, match="makes 4,000,000 buckets") as tiny:
        model.heatmap("BTC-PERP", bucket=0.01)
    assert str(tiny.value) == (
        "heatmap BTC-PERP: bucket 0.01 makes 4,000,000 buckets between 80,000.00 and "
        "120,000.00, at most 10,000: take a bucket of 4 or more, or a narrower low..high"
    )
    with pytest.raises(ValueError, match="side must be 'long' or 'short'"):
        model.fuel("BTC-PERP", "both", 100_000, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pct must be in"):
        model.fuel("BTC-PERP", "long", 100_000, 0)
    with pytest.raises(ValueError, match="BTCUSDT: mark_price must be a positive number"):
        model.on_snapshot(snap(5, 0.0, 1.0))
    with pytest.raises(ValueError, match="open_interest must be >= 0, got nan"):
        model.on_snapshot(snap(5, 1.0, float("nan")))
    with pytest.raises(ValueError, match=r"low 2\.0 is above high 1\.0"):
        model.on_snapshot(snap(5, 1.5, 1.0), low=2.0, high=1.0)
    with pytest.raises(ValueError, match=r"HeatmapConfig\.tiers: maintenance 0\.2"):
        HeatmapConfig(tiers=(LeverageTier(10, 1.0, 0.2),))
    with pytest.raises(ValueError, match=r"turnover_per_hour must be >= 0, got -1"):
        HeatmapConfig(turnover_per_hour=-1)
    with pytest.raises(ValueError, match=r"HeatmapConfig\.buckets must be positive"):
        HeatmapConfig(buckets=0)
    with pytest.raises(ValueError, match=r"first_sight\.scale must be a positive number, got nan"):
        HeatmapConfig(first_sight=FirstSight(shape=1.2, scale=math.nan))
    with pytest.raises(ValueError, match=r"opened\.shape must be a positive number, got 0"):
        HeatmapConfig(opened=FirstSight(shape=0, scale=0.3))
    with pytest.raises(ValueError, match=r"opened_share must be in \[0, 1\], got 1.5"):
        HeatmapConfig(opened_share=1.5)
    with pytest.raises(ValueError, match=r"negligible_share must be in \[0, 0\.001\), got 0\.5"):
        HeatmapConfig(negligible_share=0.5)


def _random_feed(seed: int) -> list[tuple[MarketSnapshot, float, float]]:
    rng = random.Random(seed)
    feed = []
    for market, price in (("BTC-PERP", 100_000.0), ("SOL-PERP", 150.0)):
        for exchange in ("binance_usdm", "okx"):
            mark, coins = price, 1_000.0
            for ts in range(200):
                move = rng.gauss(0, 0.004)
                low = mark * (1 - abs(rng.gauss(0, 0.003)))
                mark *= 1 + move
                high = mark * (1 + abs(rng.gauss(0, 0.003)))
                low = min(low, mark)
                coins = max(0.0, coins * (1 + rng.gauss(0, 0.01)))
                feed.append((snap(ts, mark, coins, market=market, exchange=exchange), low, high))
    return feed


def test_same_feed_gives_the_same_heatmaps_whatever_the_interleaving() -> None:
    feed = _random_feed(7)
    by_time = sorted(feed, key=lambda item: (item[0].ts, item[0].market, item[0].exchange))
    models = [HeatmapModel(), HeatmapModel(), HeatmapModel()]
    for model, order in zip(models, (feed, feed, by_time), strict=True):
        for snapshot, low, high in order:
            model.on_snapshot(snapshot, low=low, high=high)
    for market in ("BTC-PERP", "SOL-PERP"):
        first = models[0].heatmap(market)
        assert first == models[1].heatmap(market) == models[2].heatmap(market)
        assert sum(first.long_usd) > 0
        assert first.clusters


def test_fuel_matches_the_heatmap_over_the_same_range() -> None:
    model = HeatmapModel()
    for snapshot, low, high in _random_feed(3):
        model.on_snapshot(snapshot, low=low, high=high)
    heat = model.heatmap("BTC-PERP")
    mark = heat.mark_price
    below = [
        u
        for p, u in zip(heat.prices, heat.long_usd, strict=True)
        if p >= mark * 0.95 and p + heat.bucket_size <= mark
    ]
    assert model.fuel("BTC-PERP", "long", mark, 5.0) >= sum(below)
    assert model.fuel("BTC-PERP", "long", mark, 5.0) <= sum(below) + 2 * max(heat.long_usd)


def test_default_mix_is_by_notional_mostly_low_leverage() -> None:
    tiers = HeatmapConfig().tiers
    assert sum(t.weight for t in tiers) == pytest.approx(1.0)
    assert sum(t.weight for t in tiers if t.leverage <= 10) >= 0.8
    # 2x and 3x longs liquidate 33-50 % below entry: outside a +/- 20 % view. The rest of a
    # fresh book (5x and up) sits within 21 % below the mark. USD = coins x liquidation price.
    flat = HeatmapConfig(turnover_per_hour=0, first_sight=None, opened=None, warm_start_pct=0.01)
    model = HeatmapModel(flat)
    model.on_snapshot(snap(0, 100.0, 1000.0))
    usd = {t.leverage: t.weight * (1 - 1 / t.leverage) / (1 - t.maintenance) for t in tiers}
    in_view = sum(v for lev, v in usd.items() if lev >= 5) / sum(usd.values())
    near = model.fuel("BTC-PERP", "long", 100.0, 21.0)
    everything = model.fuel("BTC-PERP", "long", 100.0, 99.0)
    assert near / everything == pytest.approx(in_view, rel=0.01)
    # Within 12 %: everything in view but the 5x tier (liquidated ~19.6 % below).
    beyond = usd[5] / sum(v for lev, v in usd.items() if lev >= 5)
    assert model.fuel("BTC-PERP", "long", 100.0, 12.0) == pytest.approx(near * (1 - beyond), 0.01)


HOUR = 3_600_000
DAY = 24 * HOUR


def test_listings_that_stopped_reporting_for_a_day_are_dropped_and_memory_stays_bounded() -> None:
    # Live, the pollers list every dated future (Deribit's expiries, Kraken's FF_, Bybit's
    # dated USDC contracts) and every perpetual a venue lists: each expiry and each delisting
    # left its book (~60 KB) in the model for ever, a market that can never trade again.
    model = HeatmapModel(TEN_X)
    for day in range(60):
        for hour in range(24):
            ts = day * DAY + hour * HOUR
            model.on_snapshot(snap(ts, 100_000, 10.0 + hour))
            # This day's future and the next two days' are listed; older ones expired.
            for expiry in range(day, day + 3):
                future = f"BTC-{20260101 + expiry}"
                model.on_snapshot(
                    snap(ts, 100_000, 5.0, market=future, exchange="deribit", symbol=future)
                )
    # Listed now: the perpetual and three futures; expired a day ago or less: one more.
    assert len(model.markets()) <= 5
    assert "BTC-PERP" in model.markets()
    assert f"BTC-{20260101 + 59}" in model.markets()
    assert f"BTC-{20260101 + 10}" not in model.markets()
    with pytest.raises(ValueError, match="unknown market"):
        model.heatmap(f"BTC-{20260101 + 10}")


def test_a_delisted_listing_leaves_its_market_and_the_other_listings_stay() -> None:
    model = HeatmapModel(TEN_X)
    model.on_snapshot(snap(0, 100_000, 0.0, exchange="bybit", symbol="BTCUSDT"))
    model.on_snapshot(snap(1, 100_000, 5.0, exchange="bybit", symbol="BTCUSDT"))
    liq = 100_000 * 0.9 / 0.995
    for hour in range(30):  # binance keeps reporting, bybit's listing went quiet at 1 ms
        model.on_snapshot(snap(hour * HOUR, 100_000, 0.0 if hour == 0 else 10.0))
    # Bybit's 5 coins are gone from the market's sum; Binance's 10 are kept.
    assert model.fuel("BTC-PERP", "long", 100_000, 15.0) == pytest.approx(10 * liq, rel=1e-3)
    assert model.take_retired() == [("BTC-PERP", "bybit", "BTCUSDT")]
    assert model.take_retired() == []


def test_a_dropped_listing_is_forgotten_by_the_cascade_engine_too() -> None:
    told: list[tuple[str, float, str]] = []

    class Fuel:
        def set_fuel(self, market: str, side: str, ratio: float) -> None:
            pass

        def set_open_interest(self, market: str, usd: float, instrument: str = "") -> None:
            told.append((market, usd, instrument))

    feed = HeatmapFeed(HeatmapModel(TEN_X), fuel=Fuel())
    expiring = snap(0, 3_000, 7.0, market="ETH-20260102", exchange="deribit", symbol="ETH-2JAN26")
    feed.on_snapshot(expiring)
    for hour in range(26):
        feed.on_snapshot(snap(hour * HOUR, 100_000, 10.0))
    # The expired future's open interest no longer counts in its market's size.
    assert ("ETH-20260102", 0.0, "deribit:ETH-2JAN26") in told
    assert "ETH-20260102" not in feed.model.markets()
    assert not [key for key in feed._usual if key[0] == "ETH-20260102"]


def round_trip(model: HeatmapModel, base: float = 100.0) -> HeatmapModel:
    """Ten days up to 10x, ten days back down, ten days near the start: hourly snapshots of
    1,000 coins with a candle range of +/- 0.5 %."""
    path = [base * 10 ** (h / 240) for h in range(240)]
    path += [base * 10 ** (1 - h / 240) for h in range(240)]
    path += [base * (1 + 0.01 * math.sin(h / 5)) for h in range(240)]
    for hour, price in enumerate(path):
        model.on_snapshot(snap(hour * HOUR, price, 1000.0), low=price * 0.995, high=price * 1.005)
    return model


def test_a_book_shrinks_back_after_its_price_went_10x_and_came_back() -> None:
    # Books only widened: a coin that went 10x and back kept the bins of every price it had
    # visited (~2,300 more, ~37 KB) for good, though sweeps had emptied them and turnover had
    # left a vanishing share in the rest.
    model = round_trip(HeatmapModel())
    book = model._books["BTC-PERP"][("binance_usdm", "BTCUSDT")]
    top = math.exp((book.start + len(book.long)) * math.log(1.001))
    bottom = math.exp(book.start * math.log(1.001))
    # What it holds now: longs down to ~half the price, shorts up to ~twice it (the opened
    # shape's reach, ln 2; the tiers' 2x reached 1.5x), plus slack: 256 bins kept, and a cut
    # only when it saves 256 more, so up to 1.29**2 beyond (335 here; ~1,500 before trimming).
    assert top < 3.5 * 101.0
    assert bottom > 0.3 * 99.0
    assert len(book.long) < 2_500


def test_trimming_leaves_the_served_maps_as_they_were() -> None:
    trimmed = round_trip(HeatmapModel())
    kept = round_trip(HeatmapModel(HeatmapConfig(negligible_share=0)))
    book = kept._books["BTC-PERP"][("binance_usdm", "BTCUSDT")]
    assert len(book.long) > 3_400  # every bin from ~50 to ~1,500 (10x with 2x shorts)
    for low, high, bucket in ((None, None, None), (30.0, 2_000.0, 5.0), (90.0, 110.0, 0.1)):
        a = trimmed.heatmap("BTC-PERP", low=low, high=high, bucket=bucket)
        b = kept.heatmap("BTC-PERP", low=low, high=high, bucket=bucket)
        scale = float(np.max([*b.long_usd, *b.short_usd]))
        assert np.allclose(a.long_usd, b.long_usd, rtol=1e-6, atol=1e-9 * scale)
        assert np.allclose(a.short_usd, b.short_usd, rtol=1e-6, atol=1e-9 * scale)
        assert [c.label for c in a.clusters] == [c.label for c in b.clusters]
    sides: tuple[Side, ...] = ("long", "short")
    for side in sides:
        for pct in (2.0, 20.0, 90.0):
            got = trimmed.fuel("BTC-PERP", side, 100.0, pct)
            assert got == pytest.approx(kept.fuel("BTC-PERP", side, 100.0, pct), rel=1e-6)
