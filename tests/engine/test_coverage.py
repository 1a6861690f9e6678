"""The coverage estimate (engine/coverage.py): what a throttled feed hid, from the seconds it
showed, a burst model of each minute measured on the complete venues, and the snapshot venue's
ratio to them fitted over the trailing day."""

from __future__ import annotations

import numpy as np
import pytest

from purpleflea.engine.coverage import (
    BUSY_SECONDS_WEIGHT,
    PRIOR_EVENTS_PER_SECOND,
    burst_shape,
    factors,
    fit_weight,
    minute_estimates,
    silent_share,
)
from purpleflea.model import Coverage

HOUR = 3_600_000
MINUTE = 60_000
COVERAGE: dict[str, Coverage] = {
    "bybit": "complete",
    "htx": "complete",
    "binance_usdm": "snapshot",
    "hyperliquid": "sampled",
}
Row = tuple[int, str, str, int, int, float]
KEY = (0, "BTC-PERP", "binance_usdm")


def _row(exchange: str, events: int, seconds: int, usd: float, minute: int = 0) -> Row:
    """One minute rollup cell of BTC-PERP: (minute, market, exchange, events, seconds, usd)."""
    return (minute, "BTC-PERP", exchange, events, seconds, usd)


@pytest.mark.parametrize(("mean", "alpha"), [(0.05, 0.1), (0.5, 0.3), (3.0, 0.2), (8.0, 2.0)])
def test_the_burst_shape_inverts_the_silent_share(mean: float, alpha: float) -> None:
    means = np.array([mean])
    silent = silent_share(means, np.array([alpha]))
    assert burst_shape(means, silent)[0] == pytest.approx(alpha, rel=1e-6)


def test_a_minute_no_burstier_than_poisson_gets_the_poisson_limit() -> None:
    # 10 events in 10 distinct seconds: fewer empty seconds than Poisson would leave.
    means = np.array([10 / 60])
    alpha = burst_shape(means, np.array([50 / 60]))
    assert np.isinf(alpha[0])
    assert silent_share(means, alpha)[0] == pytest.approx(np.exp(-10 / 60))


def test_burst_minutes_weigh_less_in_the_fit_than_quiet_ones() -> None:
    quiet = fit_weight(np.array([2 / 60]), np.array([np.inf]))[0]
    # 300 events in 20 seconds: both venues are busy in the burst whatever their ratio.
    means = np.array([300 / 60])
    burst = fit_weight(means, burst_shape(means, np.array([40 / 60])))[0]
    assert quiet == 1.0  # at most a quiet minute's weight
    assert burst < 0.4 * quiet


def test_without_a_complete_venue_the_prior_applies() -> None:
    found = factors([_row("binance_usdm", 10, 10, 1_000.0)], COVERAGE.__getitem__)
    assert found == {KEY: (PRIOR_EVENTS_PER_SECOND,) * 2}


def test_a_minute_where_the_reference_was_quiet_hides_nothing() -> None:
    rows = [
        _row("bybit", 4, 4, 400.0),  # the hour has a reference, in minute 0 only
        _row("binance_usdm", 6, 6, 600.0),
        _row("binance_usdm", 5, 5, 500.0, minute=MINUTE),
        _row("hyperliquid", 5, 5, 500.0, minute=MINUTE),
    ]
    found = factors(rows, COVERAGE.__getitem__)
    assert set(found) == {KEY}  # sampled feeds are taken as measured
    # Minute 0 is Poisson (Bybit's 4 events in 4 seconds): Binance's 6 busy seconds of 60
    # stand for 60 ln(60 / 54) = 6.32 events (both halves of the estimate agree on it); the
    # minute without Bybit adds nothing to its 5.
    assert found[KEY].events == pytest.approx((60 * np.log(60 / 54) + 5) / 11, rel=2e-3)


def test_a_feed_that_sent_more_than_its_seconds_is_never_lowered() -> None:
    # 500 events in 10 seconds: not throttled after all; the estimate keeps the measure.
    rows = [_row("bybit", 20, 20, 2_000.0), _row("binance_usdm", 500, 10, 50_000.0)]
    assert factors(rows, COVERAGE.__getitem__) == {KEY: (1.0, 1.0)}


def test_hidden_events_are_priced_at_the_hours_pooled_mean_size() -> None:
    rows = [
        _row("bybit", 300, 30, 60_000.0),
        _row("binance_usdm", 35, 35, 7_000.0),
        # A later minute of the same hour with one large order on each venue: it moves the
        # price of minute 0's hidden events too (the hour's pool, not the minute's).
        _row("bybit", 1, 1, 90_000.0, minute=30 * MINUTE),
        _row("binance_usdm", 1, 1, 43_000.0, minute=30 * MINUTE),
    ]
    found = factors(rows, COVERAGE.__getitem__)[KEY]
    estimates = minute_estimates(rows, COVERAGE.__getitem__)
    hidden = estimates[KEY].events - 35
    assert hidden > 100  # a burst: the throttle hid most of it
    assert estimates[KEY].price == pytest.approx(200_000 / 337)
    assert estimates[(30 * MINUTE, *KEY[1:])].price == pytest.approx(200_000 / 337)
    late_hidden = estimates[(30 * MINUTE, *KEY[1:])].events - 1
    expected = 50_000 + (hidden + late_hidden) * 200_000 / 337
    assert found.usd == pytest.approx(expected / 50_000)
    assert type(found.events) is float  # plain floats: aggregates are served as JSON
    assert type(found.usd) is float


def _simulated_minutes(
    rng: np.random.Generator, ratio: float, mean: float, alpha: float, minutes: int
) -> tuple[list[tuple[int, int, int, int]], int]:
    """Minutes of negative binomial seconds shared by both venues (gamma intensities, Bybit
    at ``mean`` events a second, Binance at ``ratio`` times that): per minute Bybit's events
    and busy seconds, Binance's shown events (= busy seconds), and Binance's true total."""
    out, truth = [], 0
    for _ in range(minutes):
        intensity = rng.gamma(alpha, mean / alpha, size=60)
        bybit = rng.poisson(intensity)
        binance = rng.poisson(ratio * intensity)
        truth += int(binance.sum())
        out.append((int(bybit.sum()), int((bybit > 0).sum()), int((binance > 0).sum()), 0))
    return out, truth


def test_a_throttled_venue_drawn_from_the_model_is_recovered() -> None:
    rng = np.random.default_rng(7)
    rows: list[Row] = []
    truth = shown = 0
    # Quiet minutes (little hidden) and bursty ones (most hidden), Binance 1.6x Bybit.
    quiet, quiet_truth = _simulated_minutes(rng, 1.6, 0.05, 2.0, 40)
    burst, burst_truth = _simulated_minutes(rng, 1.6, 2.0, 0.15, 20)
    for i, (events, seconds, busy, _) in enumerate(quiet + burst):
        if events:
            rows.append(_row("bybit", events, seconds, 100.0 * events, minute=i * MINUTE))
        if busy:
            rows.append(_row("binance_usdm", busy, busy, 100.0 * busy, minute=i * MINUTE))
            shown += busy
    truth = quiet_truth + burst_truth
    found = factors(rows, COVERAGE.__getitem__)[KEY]
    assert shown < 0.6 * truth  # the throttle hid much
    # The estimate recovers the truth (the USD follows: every event here is $100).
    assert found.events * shown == pytest.approx(truth, rel=0.15)
    assert found.usd == pytest.approx(found.events)


def test_burst_hours_borrow_the_ratio_of_the_trailing_day() -> None:
    def minute(at: int, bybit: int, bybit_seconds: int, binance_seconds: int) -> list[Row]:
        return [
            _row("bybit", bybit, bybit_seconds, 100.0 * bybit, minute=at),
            _row("binance_usdm", binance_seconds, binance_seconds, 0.0, minute=at),
        ]

    # Hour 1: a burst every minute, 200 Bybit events in 12 seconds, Binance busy in 14.
    burst = [r for i in range(60) for r in minute(HOUR + i * MINUTE, 200, 12, 14)]
    key = (HOUR, "BTC-PERP", "binance_usdm")
    alone = factors(burst, COVERAGE.__getitem__)[key].events * 14
    for shown, ratio in ((8, 2.0), (12, 3.0)):
        # Hour 0: quiet minutes, Bybit one event in each of 4 seconds, Binance `shown`: it
        # sets Binance at about `ratio` x Bybit, which the burst barely moves.
        quiet = [r for i in range(60) for r in minute(i * MINUTE, 4, 4, shown)]
        found = factors(quiet + burst, COVERAGE.__getitem__)[key].events * 14
        assert found == pytest.approx(ratio * 200, rel=0.1)
    # Alone, the burst hour is fitted on its own seconds: not the 3x a quiet day showed.
    assert 200 < alone < 0.8 * 3.0 * 200


def test_the_trailing_window_ends_after_a_day() -> None:
    def hour(at: int, binance_seconds: int) -> list[Row]:
        return [
            r
            for i in range(10)
            for r in (
                _row("bybit", 3, 3, 300.0, minute=at + i * MINUTE),
                _row("binance_usdm", binance_seconds, binance_seconds, 0.0, at + i * MINUTE),
            )
        ]

    rows = [*hour(0, 6), *hour(30 * HOUR, 3)]
    found = factors(rows, COVERAGE.__getitem__)
    separate = factors(hour(30 * HOUR, 3), COVERAGE.__getitem__)
    key = (30 * HOUR, "BTC-PERP", "binance_usdm")
    assert found[key] == pytest.approx(separate[key])


def test_all_complete_venues_form_the_reference() -> None:
    bybit_only = [_row("bybit", 120, 15, 12_000.0), _row("binance_usdm", 20, 20, 2_000.0)]
    # A second complete venue liquidating the same bursts: Binance's ratio to the reference
    # halves, the estimate of its count stays (the burst shape is the larger venue's).
    both = [*bybit_only, _row("htx", 120, 15, 12_000.0)]
    one = factors(bybit_only, COVERAGE.__getitem__)[KEY]
    two = factors(both, COVERAGE.__getitem__)[KEY]
    assert two.events == pytest.approx(one.events, rel=0.01)
    assert one.events > 2.0


def test_a_minutes_estimate_averages_its_seconds_and_the_reference() -> None:
    # One minute: the fitted ratio reproduces Binance's shown seconds exactly, so the seconds
    # estimate and the reference's events times the ratio agree in expectation only; check
    # the average against the two computed from the model.
    rows = [_row("bybit", 120, 15, 12_000.0), _row("binance_usdm", 20, 20, 2_000.0)]
    found = factors(rows, COVERAGE.__getitem__)[KEY]
    means = np.array([120 / 60])
    alpha = burst_shape(means, np.array([45 / 60]))
    grid = np.geomspace(0.01, 100.0, 20_001)
    busy = 60 * (1 - silent_share(means * grid, alpha))
    ratio = float(np.interp(20, busy, grid))
    per_second = ratio * 2.0 / (1 - silent_share(means * ratio, alpha)[0])
    expected = BUSY_SECONDS_WEIGHT * 20 * per_second + (1 - BUSY_SECONDS_WEIGHT) * ratio * 120
    assert found.events * 20 == pytest.approx(expected, rel=0.01)


def test_an_hour_the_snapshot_venue_showed_nothing_does_not_pull_its_ratio_down() -> None:
    def hour(at: int, binance: bool) -> list[Row]:
        rows = []
        for i in range(20):
            rows.append(_row("bybit", 4, 4, 400.0, minute=at + i * MINUTE))
            if binance:
                rows.append(_row("binance_usdm", 6, 6, 600.0, minute=at + i * MINUTE))
        return rows

    steady = [*hour(0, True), *hour(HOUR, True), *hour(2 * HOUR, True)]
    # Binance's feed was down in hour 1 (a gap) while Bybit reported as usual.
    gap = [*hour(0, True), *hour(HOUR, False), *hour(2 * HOUR, True)]
    key = (2 * HOUR, "BTC-PERP", "binance_usdm")
    assert factors(gap, COVERAGE.__getitem__)[key] == pytest.approx(
        factors(steady, COVERAGE.__getitem__)[key]
    )
    # A partial hour of silence still counts as the venue's: Binance showed nothing in most of
    # hour 1's minutes, so its ratio (and the hidden share of hour 2) falls.
    partial = [*hour(0, True), *hour(HOUR, False), _row("binance_usdm", 1, 1, 100.0, HOUR)]
    partial += hour(2 * HOUR, True)
    assert (
        factors(partial, COVERAGE.__getitem__)[key].events
        < factors(steady, COVERAGE.__getitem__)[key].events
    )


def test_a_given_ratio_replaces_the_fitted_one_and_only_for_its_venue() -> None:
    rows = [_row("bybit", 4, 4, 400.0), _row("binance_usdm", 6, 6, 600.0)]
    fitted = minute_estimates(rows, COVERAGE.__getitem__)[KEY].events
    given = minute_estimates(
        rows, COVERAGE.__getitem__, ratios={("BTC-PERP", "binance_usdm"): 3.0}
    )[KEY].events
    # Bybit's minute is Poisson (4 events in 4 seconds); at ratio 3 Binance's mean is 0.2 a
    # second: its 6 busy seconds stand for 6 x 0.2 / (1 - e^-0.2) events, Bybit's 4 for 12.
    by_seconds = 6 * 0.2 / (1 - np.exp(-0.2))
    assert given == pytest.approx(
        BUSY_SECONDS_WEIGHT * by_seconds + (1 - BUSY_SECONDS_WEIGHT) * 12, rel=1e-9
    )
    assert fitted < 9.0 < given
    other = minute_estimates(rows, COVERAGE.__getitem__, ratios={("ETH-PERP", "binance_usdm"): 3.0})
    assert other[KEY].events == fitted


def test_the_estimate_does_not_depend_on_the_order_of_the_rows() -> None:
    # Two complete venues tied on events, one bursty (6 of its 60 seconds busy), one not (30):
    # the burst shape must not be whichever row came first. SQLite's GROUP BY returned them
    # sorted, PostgreSQL's in no set order, so the same history had other est_* figures there.
    rows = [
        _row("bybit", 30, 6, 3_000.0),
        _row("htx", 30, 30, 3_000.0),
        _row("binance_usdm", 10, 10, 1_000.0),
    ]
    forward = factors(rows, COVERAGE.__getitem__)[KEY]
    backward = factors(rows[::-1], COVERAGE.__getitem__)[KEY]
    assert backward.events == pytest.approx(forward.events, rel=1e-12)
    assert backward.usd == pytest.approx(forward.usd, rel=1e-12)
