"""The coverage estimate (engine/coverage.py): what a throttled feed hid, from the seconds it
showed and a complete venue's events per busy second on the same market and hour."""

from __future__ import annotations

import math

import pytest

from purpleflea.engine.coverage import (
    MAX_BUSY_SHARE,
    PRIOR_EVENTS_PER_SECOND,
    events_per_busy_second,
    factors,
    intensity,
    snapshot_ratio,
)
from purpleflea.model import Coverage

HOUR = 3_600_000
MINUTE = 60_000
COVERAGE: dict[str, Coverage] = {
    "bybit": "complete",
    "binance_usdm": "snapshot",
    "hyperliquid": "sampled",
}
Row = tuple[int, str, str, int, int, float]


def _row(exchange: str, events: int, seconds: int, usd: float, minute: int = 0) -> Row:
    """One minute rollup cell of BTC-PERP: (minute, market, exchange, events, seconds, usd)."""
    return (minute, "BTC-PERP", exchange, events, seconds, usd)


@pytest.mark.parametrize("lam", [0.01, 0.5, 1.0, 3.0, 10.0])
def test_intensity_inverts_events_per_busy_second(lam: float) -> None:
    assert intensity(events_per_busy_second(lam)) == pytest.approx(lam, rel=1e-6)


def test_the_snapshot_venue_is_scaled_by_the_model_of_its_busy_share() -> None:
    # Complete venue: 300 events in 100 busy seconds -> lambda_c solves l/(1-e^-l) = 3.
    lam_c = intensity(3.0)
    busy = 300 / lam_c
    # Snapshot venue showed 60 busy seconds (of the ~106 the market was busy).
    lam_s = -math.log1p(-60 / busy)
    assert snapshot_ratio(60, 300, 100) == pytest.approx(lam_s / -math.expm1(-lam_s))
    assert snapshot_ratio(60, 300, 100) > 1.0


def test_quiet_markets_hide_nothing_and_saturation_is_capped() -> None:
    assert snapshot_ratio(40, 50, 50) == 1.0  # the complete venue never had two in a second
    capped = events_per_busy_second(-math.log1p(-MAX_BUSY_SHARE))
    assert snapshot_ratio(10_000, 300, 100) == pytest.approx(capped)
    # A cohort's burst puts many events in a shown second: the cap must let one stand for more
    # than the 4.6 of a 0.99 cap, which held the estimate ~30 % short on the simulator.
    assert 8.0 < capped < 9.0


def test_without_a_complete_venue_the_prior_applies() -> None:
    assert snapshot_ratio(10, 0, 0) == PRIOR_EVENTS_PER_SECOND
    found = factors([_row("binance_usdm", 10, 10, 1_000.0)], COVERAGE.__getitem__)
    assert found == {(0, "BTC-PERP", "binance_usdm"): (PRIOR_EVENTS_PER_SECOND,) * 2}


def test_each_minute_is_calibrated_on_the_complete_venues_same_minute() -> None:
    rows = [
        # Minute 0: a cascade; bybit saw 300 events in 100 seconds, binance showed 60 seconds.
        _row("bybit", 300, 100, 60_000.0),
        _row("binance_usdm", 60, 60, 6_000.0),
        # Minute 1: bybit quiet (one event a second): binance hid nothing there.
        _row("bybit", 5, 5, 500.0, minute=MINUTE),
        _row("binance_usdm", 4, 4, 400.0, minute=MINUTE),
        _row("hyperliquid", 5, 5, 500.0),
        # Another hour with no complete venue: the prior, not the first hour's calibration.
        _row("binance_usdm", 4, 4, 400.0, minute=HOUR),
    ]
    found = factors(rows, COVERAGE.__getitem__)
    assert set(found) == {(0, "BTC-PERP", "binance_usdm"), (HOUR, "BTC-PERP", "binance_usdm")}
    hidden = 60 * snapshot_ratio(60, 300, 100) - 60
    first = found[(0, "BTC-PERP", "binance_usdm")]
    assert first.events == pytest.approx((64 + hidden) / 64)
    # Hidden events are priced at the minute's pooled mean size: (6k + 60k) / (60 + 300).
    assert first.usd == pytest.approx((6_400 + hidden * 66_000 / 360) / 6_400)
    assert found[(HOUR, "BTC-PERP", "binance_usdm")].events == PRIOR_EVENTS_PER_SECOND


def test_a_feed_that_sent_more_than_its_seconds_is_never_lowered() -> None:
    # 500 events in 10 seconds: not throttled after all; the estimate keeps the measure.
    rows = [_row("bybit", 20, 20, 2_000.0), _row("binance_usdm", 500, 10, 50_000.0)]
    assert factors(rows, COVERAGE.__getitem__) == {(0, "BTC-PERP", "binance_usdm"): (1.0, 1.0)}


def test_the_share_of_the_reference_over_the_trailing_day_is_averaged_in() -> None:
    def hour(at: int, shown: int) -> list[Row]:
        return [
            _row("bybit", 100, 50, 10_000.0, minute=at),
            _row("binance_usdm", shown, shown, 100.0 * shown, minute=at),
        ]

    rows = [*hour(0, 30), *hour(HOUR, 10), *hour(26 * HOUR, 10)]
    found = factors(rows, COVERAGE.__getitem__)
    busy = {shown: shown * snapshot_ratio(shown, 100, 50) for shown in (30, 10)}
    # Alone in its window, an hour's share estimate is its own busy-seconds estimate.
    assert found[(0, "BTC-PERP", "binance_usdm")].events == pytest.approx(busy[30] / 30)
    assert found[(26 * HOUR, "BTC-PERP", "binance_usdm")].events == pytest.approx(busy[10] / 10)
    # The next hour's is pulled towards the day's ratio of Binance's estimate to Bybit's events.
    share = (busy[30] + busy[10]) / 200
    expected = 0.5 * busy[10] + 0.5 * share * 100
    assert found[(HOUR, "BTC-PERP", "binance_usdm")].events == pytest.approx(expected / 10)
