"""The coverage estimate (engine/coverage.py): what a throttled feed hid, from the seconds it
showed and a complete venue's events per busy second on the same market and hour."""

from __future__ import annotations

import math

import pytest

from purpleflea.engine.coverage import (
    MAX_BUSY_SHARE,
    PRIOR_EVENTS_PER_SECOND,
    Cell,
    events_per_busy_second,
    hidden,
    intensity,
    snapshot_ratio,
)
from purpleflea.model import Coverage

HOUR = 3_600_000
COVERAGE: dict[str, Coverage] = {
    "bybit": "complete",
    "binance_usdm": "snapshot",
    "hyperliquid": "sampled",
}


def _cell(exchange: str, events: int, seconds: int, usd: float, **kw: object) -> Cell:
    fields: dict[str, object] = {
        "bucket": 0,
        "group": "BTC-PERP",
        "start_ms": 0,
        "market": "BTC-PERP",
        "exchange": exchange,
        "events": events,
        "seconds": seconds,
        "size_usd": usd,
    }
    fields.update(kw)
    return Cell(**fields)  # type: ignore[arg-type]


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


def test_without_a_complete_venue_the_prior_applies() -> None:
    assert snapshot_ratio(10, 0, 0) == PRIOR_EVENTS_PER_SECOND
    extras = hidden([_cell("binance_usdm", 10, 10, 1_000.0)], COVERAGE.__getitem__)
    assert extras[(0, "BTC-PERP")].events == pytest.approx(10 * (PRIOR_EVENTS_PER_SECOND - 1))
    assert extras[(0, "BTC-PERP")].size_usd == pytest.approx(1_000 * (PRIOR_EVENTS_PER_SECOND - 1))


def test_only_snapshot_cells_gain_and_per_hour() -> None:
    cells = [
        _cell("bybit", 300, 100, 30_000.0, group="bybit"),
        _cell("binance_usdm", 60, 60, 6_000.0, group="binance_usdm"),
        _cell("hyperliquid", 5, 5, 500.0, group="hyperliquid"),
        # Another hour with no complete venue: the prior, not the first hour's calibration.
        _cell("binance_usdm", 4, 4, 400.0, group="binance_usdm", start_ms=HOUR, bucket=HOUR),
    ]
    extras = hidden(cells, COVERAGE.__getitem__)
    assert set(extras) == {(0, "binance_usdm"), (HOUR, "binance_usdm")}
    ratio = snapshot_ratio(60, 300, 100)
    assert extras[(0, "binance_usdm")].size_usd == pytest.approx(6_000.0 * (ratio - 1))
    assert extras[(HOUR, "binance_usdm")].events == pytest.approx(4 * (PRIOR_EVENTS_PER_SECOND - 1))


def test_a_feed_that_sent_more_than_its_seconds_is_never_lowered() -> None:
    # 500 events in 10 seconds: not throttled after all; the estimate keeps the measure.
    cells = [
        _cell("bybit", 20, 20, 2_000.0, group="a"),
        _cell("binance_usdm", 500, 10, 50_000.0, group="b"),
    ]
    assert hidden(cells, COVERAGE.__getitem__) == {}
