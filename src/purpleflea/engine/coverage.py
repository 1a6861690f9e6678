"""What throttled feeds hid: the estimate behind aggregates' ``est_count`` and ``est_size_usd``.

A ``snapshot`` venue (Binance) sends at most one liquidation per symbol per second, so the
seconds that carried one of its events are a lower bound on how many it had. What it hid is
read off the ``complete`` venues (Bybit, ...) liquidating the same market: the *reference*.

**The minute's burst shape.** Liquidations come in bursts (a liquidated position is worked
off as many orders over a few seconds), so within a minute some seconds carry many events and
most none. Each second's events are modelled as a Poisson count whose mean varies from second
to second as a gamma draw (a negative binomial second) with the minute's mean ``m`` and shape
``k`` (small: bursty). Every venue liquidates the same positions' orders, so they share the
shape and differ in scale. In each minute the complete venues had events, their events ``C``
give ``m = C / 60``, and the busy seconds ``B`` of the one with the most events give the
shape: ``(1 + m_1 / k)^-k = 1 - B / 60`` with ``m_1`` its own mean (a minute no burstier than
Poisson gets the Poisson limit). A venue liquidating ``r`` times the reference's events shows
on average ``60 q(r)`` busy seconds, ``q(r) = 1 - (1 + r m / k)^-k``. (The earlier model put
one Poisson mean on the minute's busy seconds: a burst looked busier than it was, and a shown
second was held to a cap set on the tuning seeds.)

**The ratio** ``r`` of a snapshot venue to the reference moves slowly (venues' shares drift
over days), so it is fitted over the trailing :data:`SHARE_WINDOW_MS`: the ``r`` at which the
model's busy seconds, over every minute the reference had events (including those where the
snapshot venue showed none, in the hours it showed any), match the seconds the snapshot venue
showed. Each minute counts by what its seconds say about ``r`` (the slope of ``60 q`` in ``r``
over the variance ``60 q (1 - q)``, at ``r = 1``, at most a quiet minute's weight): in a burst
both venues are busy in the same seconds whatever ``r``, and such minutes barely count, so the
model's error there does not steer the fit; the minutes where the throttle hides little carry
it.

**A minute's count**, where the reference had events and the snapshot venue showed ``B_s >= 1``
seconds, averages (:data:`BUSY_SECONDS_WEIGHT` each) two estimates at that ``r``: the
reference's events times ``r`` (noise: the reference's counting), and the shown seconds times
the model's events per busy second ``r m / q(r)`` (noise: the throttle's), never below what
was shown. A minute where the reference saw nothing was quiet: nothing hidden.

A hidden event is priced at the market-hour's mean event size over the snapshot venues' shown
events and the reference's (both sample the same liquidations; an hour's pool is steadier
than a minute's, which a few large orders swing). Without a complete venue in the hour, the
shown events are multiplied by :data:`PRIOR_EVENTS_PER_SECOND`. ``complete`` and ``sampled``
events are taken as measured: a ``sampled`` feed's misses are accounts we do not watch, which
no second-count reveals.

The estimate never lowers a figure: a factor is at least 1. Pure and deterministic: minute
cells in, factors out; the stores gather the cells from their minute rollups.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from purpleflea.model import Coverage

#: The estimate's method, as stored beside the factors a store keeps for closed hours: bump it
#: whenever what :func:`factors` computes changes (a constant, a weight, the arithmetic), so a
#: store opened by the new code drops the factors the old one computed instead of serving them.
#: 6: the same factors; each stored row also carries its events and the prior's share of
#: them (``est_calibration``), so the rows version 5 stored, without them, are dropped.
#: 5: complete venues tied on a minute's events give the burst shape of the first by name,
#: not of whichever row came first (the same figures on SQLite; PostgreSQL's differed).
#: 4: hidden events priced at the market-hour's pooled mean size (3: the minute's).
#: 3: the negative binomial burst model with the ratio fitted over the trailing day, against
#: all complete venues (2: one Poisson mean on the top complete venue's busy seconds, capped).
METHOD_VERSION = 6
#: Events per busy second of a snapshot venue when no complete venue overlaps it.
PRIOR_EVENTS_PER_SECOND = 2.0
#: The weight of a minute's busy-seconds estimate; the reference's events times the ratio have
#: the rest (equal: neither is the better one on its own on the tuning seeds).
BUSY_SECONDS_WEIGHT = 0.5
HOUR_MS = 3_600_000
SECONDS_PER_MINUTE = 60.0
#: The trailing window the ratio is fitted on, ending with the estimated hour.
SHARE_WINDOW_MS = 24 * HOUR_MS
#: The ratios the fit considers (a snapshot venue from 1/100 to 100 times the reference),
#: log-spaced 5.9 % apart; the fit interpolates between them.
RATIO_GRID = np.geomspace(0.01, 100.0, 161)
#: Minutes evaluated on the grid at once (bounds the fit's memory: 4,096 x 161 floats).
_CHUNK = 4096

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
MinuteKey = tuple[int, str]
VenueMinute = tuple[int, str, str]


def burst_shape(mean: FloatArray, silent: FloatArray) -> FloatArray:
    """Per minute, the gamma shape ``k`` at which a negative binomial second of mean ``mean``
    is empty with probability ``silent``: ``(1 + mean / k)^-k = silent``; ``inf`` (Poisson)
    where the minute is no burstier than Poisson (``silent <= e^-mean``)."""
    target = np.log(silent)
    low = np.full(mean.shape, -12.0)
    high = np.full(mean.shape, 12.0)
    for _ in range(60):  # bisection on ln k: -k ln(1 + mean / k) falls as k grows
        middle = (low + high) / 2.0
        alpha = np.exp(middle)
        above = -alpha * np.log1p(mean / alpha) > target
        low = np.where(above, middle, low)
        high = np.where(above, high, middle)
    bursty = target > -mean * (1.0 - 1e-9)
    result: FloatArray = np.where(bursty, np.exp((low + high) / 2.0), np.inf)
    return result


def silent_share(mean: FloatArray, alpha: FloatArray) -> FloatArray:
    """The share of seconds with no event, for negative binomial seconds of mean ``mean`` and
    gamma shape ``alpha`` (``inf``: Poisson). Broadcasts."""
    poisson = np.isinf(alpha)
    shape = np.where(poisson, 1.0, alpha)
    result: FloatArray = np.where(poisson, np.exp(-mean), np.exp(-shape * np.log1p(mean / shape)))
    return result


def fit_weight(mean: FloatArray, alpha: FloatArray) -> FloatArray:
    """How much a minute's busy seconds say about the ratio ``r``, at ``r = 1``: the slope of
    the expected busy share in ``r`` over its binomial variance, at most 1 (a quiet minute's
    weight, where the busy seconds are the events)."""
    silent = silent_share(mean, alpha)
    poisson = np.isinf(alpha)
    shape = np.where(poisson, 1.0, alpha)
    slope = np.where(
        poisson, mean * np.exp(-mean), mean * np.exp(-(shape + 1.0) * np.log1p(mean / shape))
    )
    variance = np.maximum(silent * (1.0 - silent), 1e-12)
    result: FloatArray = np.minimum(1.0, slope / variance)
    return result


class Factor(NamedTuple):
    """A snapshot exchange's estimate on one market in one hour, as multiples of what it
    showed: ``events`` for its count, ``usd`` for its volume (both >= 1)."""

    events: float
    usd: float


class _Reference(NamedTuple):
    """The complete venues' minutes of a market, aligned arrays (one entry per minute)."""

    row_of: dict[MinuteKey, int]
    events: FloatArray  # all complete venues' events
    mean: FloatArray  # events per second
    alpha: FloatArray  # the burst shape


class MinuteEstimate(NamedTuple):
    """A snapshot exchange's estimate in one minute: what it showed (``shown`` events,
    ``shown_usd``), its estimated ``events`` (>= ``shown``) and the ``price`` of each hidden
    one in USD."""

    shown: int
    shown_usd: float
    events: float
    price: float


def minute_estimates(
    cells: Iterable[tuple[int, str, str, int, int, float]],
    coverage_of: Callable[[str], Coverage],
    *,
    ratios: Mapping[tuple[str, str], float] | None = None,
) -> dict[VenueMinute, MinuteEstimate]:
    """Each snapshot exchange's :class:`MinuteEstimate` per ``(minute_ms, market, exchange)``
    it showed events in, from one row per minute, market and exchange: ``(minute_ms, market,
    exchange, events, seconds, size_usd)`` (the minute rollup's sums over sides). Hours must be
    whole (every exchange of the market); an hour's ratio is fitted on the
    :data:`SHARE_WINDOW_MS` before it, so the rows should reach back that far (an hour whose
    window is cut short uses what is there). ``ratios`` (per ``(market, exchange)``) replaces
    the fitted ratio where given: the benchmark's ceiling with each venue's true ratio, not a
    serving path."""
    rows = cells if isinstance(cells, list) else list(cells)
    coverage: dict[str, Coverage] = {}
    for row in rows:
        if row[2] not in coverage:
            coverage[row[2]] = coverage_of(row[2])
    complete: dict[MinuteKey, list[float]] = {}  # events, usd, top venue's events and seconds
    top_venue: dict[MinuteKey, str] = {}
    shown: dict[VenueMinute, tuple[int, int, float]] = {}
    venues: dict[str, set[str]] = {}
    for minute, market, exchange, events, seconds, usd in rows:
        if events <= 0:
            continue
        if coverage[exchange] == "complete":
            cell = complete.setdefault((minute, market), [0.0, 0.0, 0.0, 0.0])
            cell[0] += events
            cell[1] += usd
            # Of venues tied on events, the first by name gives the shape: not whichever row
            # came first (PostgreSQL's GROUP BY returns them in no set order, SQLite's sorted).
            if events > cell[2] or (events == cell[2] and exchange < top_venue[(minute, market)]):
                cell[2], cell[3] = events, seconds
                top_venue[(minute, market)] = exchange
        elif coverage[exchange] == "snapshot":
            shown[(minute, market, exchange)] = (events, seconds, usd)
            venues.setdefault(market, set()).add(exchange)
    referenced = {(_hour(minute), market) for minute, market in complete}
    reference = _reference(complete)

    # The fit's observations: every minute the reference had events, for every snapshot venue
    # of the market, with the seconds that venue showed (0 if none); but only in hours where
    # the venue showed something on the market: an hour of nothing is more likely a gap in its
    # feed than a quiet venue, and would pull its ratio down for a day.
    showing = {(_hour(minute), market, exchange) for minute, market, exchange in shown}
    fit_keys = [
        (minute, market, exchange)
        for minute, market in reference.row_of
        for exchange in sorted(venues.get(market, ()))
        if (_hour(minute), market, exchange) in showing
    ]
    ratio = _fitted_ratios(fit_keys, reference, shown)
    if ratios is not None:
        ratio = {key: ratios.get(key[1:], fitted) for key, fitted in ratio.items()}
    calibrated = [key for key in shown if key[:2] in reference.row_of]
    estimates = dict(
        zip(calibrated, _minute_estimates(calibrated, reference, shown, ratio), strict=True)
    )

    hour_price = _hour_prices(complete, shown)
    # Per snapshot minute: what it showed, its estimated events and their price.
    out: dict[VenueMinute, MinuteEstimate] = {}
    for key, (events, seconds, usd) in shown.items():
        minute, market, _ = key
        hour = _hour(minute)
        if (hour, market) not in referenced:
            estimated = float(_shown_busy(events, seconds)) * PRIOR_EVENTS_PER_SECOND
            price = usd / events
        elif key not in estimates:
            # The reference was quiet: nothing hidden (priced at what it showed, for the bench).
            estimated, price = float(events), usd / events
        else:
            estimated, price = estimates[key], hour_price[(hour, market)]
        out[key] = MinuteEstimate(events, usd, max(float(events), estimated), price)
    return out


def factors(
    cells: Iterable[tuple[int, str, str, int, int, float]],
    coverage_of: Callable[[str], Coverage],
) -> dict[tuple[int, str, str], Factor]:
    """Each snapshot exchange's :class:`Factor` per ``(hour_ms, market, exchange)``: the hour's
    :func:`minute_estimates` added up, as multiples of what it showed."""
    hours: dict[tuple[int, str, str], list[float]] = {}
    for (minute, market, exchange), found in minute_estimates(cells, coverage_of).items():
        hour = _hour(minute)
        total = hours.setdefault((hour, market, exchange), [0.0, 0.0, 0.0, 0.0])
        extra = found.events - found.shown  # never below what was measured
        total[0] += found.shown
        total[1] += found.shown_usd
        total[2] += found.events
        total[3] += found.shown_usd + extra * found.price
    out: dict[tuple[int, str, str], Factor] = {}
    for key, (count, count_usd, estimate, estimate_usd) in hours.items():
        usd_factor = max(1.0, estimate_usd / count_usd) if count_usd > 0 else estimate / count
        out[key] = Factor(float(estimate / count), float(usd_factor))  # plain floats: JSON
    return out


def _hour_prices(
    complete: dict[MinuteKey, list[float]], shown: dict[VenueMinute, tuple[int, int, float]]
) -> dict[tuple[int, str], float]:
    """Per ``(hour, market)``: the mean event size over the complete venues' events and every
    snapshot venue's shown ones in that hour (the price of a hidden event). An hour pools
    enough events that a few large orders barely move it, where a minute's mean swung with
    them; on seeds 1-3 a trailing hour, two or three clock hours, or a shrinkage of the
    minute's mean towards the hour's did no better (docs/coverage.md)."""
    pool: dict[tuple[int, str], list[float]] = {}
    for (minute, market), cell in complete.items():
        total = pool.setdefault((_hour(minute), market), [0.0, 0.0])
        total[0] += cell[0]
        total[1] += cell[1]
    for (minute, market, _), (events, _, usd) in shown.items():
        total = pool.setdefault((_hour(minute), market), [0.0, 0.0])
        total[0] += events
        total[1] += usd
    return {key: usd / events for key, (events, usd) in pool.items() if events > 0}


def _hour(minute: int) -> int:
    """The start (ms) of the UTC hour holding ``minute``."""
    return minute // HOUR_MS * HOUR_MS


def _shown_busy(events: int, seconds: int) -> int:
    """The seconds a snapshot venue showed in a minute: at most its events (rollups from
    before the seconds column count none: each event is then taken as its own second)."""
    return min(seconds, events) if seconds > 0 else events


def _reference(complete: dict[MinuteKey, list[float]]) -> _Reference:
    """Arrays of the complete venues' minutes: the mean from all their events, the burst
    shape from the busy seconds of the one with the most (clamped to at least one, at most
    its events, and short of the whole minute, so that a shape exists)."""
    keys = list(complete)
    cells = np.array([complete[key] for key in keys], dtype=np.float64).reshape(-1, 4)
    top_events = cells[:, 2]
    top_busy = np.minimum(
        np.maximum(cells[:, 3], 1.0), np.minimum(top_events, SECONDS_PER_MINUTE - 0.5)
    )
    alpha = burst_shape(top_events / SECONDS_PER_MINUTE, 1.0 - top_busy / SECONDS_PER_MINUTE)
    return _Reference(
        row_of={key: i for i, key in enumerate(keys)},
        events=cells[:, 0],
        mean=cells[:, 0] / SECONDS_PER_MINUTE,
        alpha=alpha,
    )


def _minute_estimates(
    keys: list[VenueMinute],
    reference: _Reference,
    shown: dict[VenueMinute, tuple[int, int, float]],
    ratio: dict[tuple[int, str, str], float],
) -> list[float]:
    """Each ``(minute, market, snapshot exchange)``'s estimated events: the average of its
    shown seconds times the model's events per busy second and the reference's events times
    the ratio fitted for the hour."""
    if not keys:
        return []
    at = np.array([reference.row_of[key[:2]] for key in keys], dtype=np.int64)
    rho = np.array([ratio[(_hour(m), mk, ex)] for m, mk, ex in keys])
    busy = np.array([_shown_busy(*shown[key][:2]) for key in keys], dtype=np.float64)
    own_mean = rho * reference.mean[at]
    busy_share = 1.0 - silent_share(own_mean, reference.alpha[at])
    per_busy_second = np.maximum(1.0, own_mean / np.maximum(busy_share, 1e-300))
    by_seconds = busy * per_busy_second
    by_reference = rho * reference.events[at]
    result: list[float] = (
        BUSY_SECONDS_WEIGHT * by_seconds + (1.0 - BUSY_SECONDS_WEIGHT) * by_reference
    ).tolist()
    return result


def _fitted_ratios(
    keys: list[VenueMinute],
    reference: _Reference,
    shown: dict[VenueMinute, tuple[int, int, float]],
) -> dict[tuple[int, str, str], float]:
    """Per ``(hour, market, exchange)``: the ratio ``r`` over the trailing window at which the
    model's busy seconds over ``keys`` match the seconds the exchange showed, each minute
    weighted by :func:`fit_weight`."""
    if not keys:
        return {}
    group_of: dict[tuple[int, str, str], int] = {}
    group = np.empty(len(keys), dtype=np.int64)
    at = np.empty(len(keys), dtype=np.int64)
    observed = np.empty(len(keys))
    for i, (minute, market, exchange) in enumerate(keys):
        group[i] = group_of.setdefault((_hour(minute), market, exchange), i)
        at[i] = reference.row_of[(minute, market)]
        events, seconds, _ = shown.get((minute, market, exchange), (0, 0, 0.0))
        observed[i] = min(float(_shown_busy(events, seconds)), SECONDS_PER_MINUTE)
    # Compact group ids (setdefault stored each group's first row).
    _, group = np.unique(group, return_inverse=True)
    mean, alpha = reference.mean[at], reference.alpha[at]
    weight = fit_weight(mean, alpha)
    expected = np.zeros((len(group_of), RATIO_GRID.size))
    for start in range(0, len(keys), _CHUNK):
        part = slice(start, start + _CHUNK)
        silent = silent_share(mean[part, None] * RATIO_GRID[None, :], alpha[part, None])
        np.add.at(expected, group[part], weight[part, None] * (1.0 - silent))
    shown_share = np.bincount(
        group, weights=weight * observed / SECONDS_PER_MINUTE, minlength=len(group_of)
    )
    by_venue: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for index, (hour, market, exchange) in enumerate(sorted(group_of, key=group_of.__getitem__)):
        by_venue.setdefault((market, exchange), []).append((hour, index))
    ratio: dict[tuple[int, str, str], float] = {}
    for (market, exchange), series in by_venue.items():
        series.sort()
        first = 0
        window = np.zeros(RATIO_GRID.size)
        window_shown = 0.0
        for hour, index in series:
            window += expected[index]
            window_shown += shown_share[index]
            while series[first][0] <= hour - SHARE_WINDOW_MS:
                window -= expected[series[first][1]]
                window_shown -= shown_share[series[first][1]]
                first += 1
            # The expected seconds rise with the ratio: invert by interpolation, clamped to
            # the grid's ends.
            ratio[(hour, market, exchange)] = float(np.interp(window_shown, window, RATIO_GRID))
    return ratio
