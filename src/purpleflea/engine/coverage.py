"""What throttled feeds hid: the estimate behind aggregates' ``est_count`` and ``est_size_usd``.

A ``snapshot`` venue (Binance) sends at most one liquidation per symbol per second, so the
seconds that carried one of its events are a lower bound on how many it had. What it hid is
read off a ``complete`` venue (Bybit) liquidating the same market: the *reference*, the
complete venue with the most events on the market in the hour. Two estimates of a snapshot
venue's true count in an hour are averaged (:data:`BUSY_SECONDS_WEIGHT` each):

1. **Busy seconds, per minute.** In a minute, the market is *busy* in ``S`` seconds and in
   each a venue's liquidations arrive as a Poisson count with a mean ``λ_v`` of its own. A
   venue then shows ``B_v = S (1 - e^-λ_v)`` seconds with events and ``C_v = S λ_v`` events.
   For the reference both are measured: ``C_c / B_c = λ_c / (1 - e^-λ_c)`` gives ``λ_c``, and
   ``S = C_c / λ_c``. The snapshot venue shows ``B_s``: ``λ_s = -ln(1 - B_s / S)`` (the busy
   share held at :data:`MAX_BUSY_SHARE`), and its count is ``B_s λ_s / (1 - e^-λ_s)``. A
   minute where the reference saw nothing was quiet: nothing hidden. Calibrating per minute,
   not per hour, follows a cascade's busy minutes instead of averaging them with calm ones.
2. **Share of the reference.** Venues' shares of a market move slowly (days), so the ratio of
   the snapshot venue's estimate (1.) to the reference's events over the trailing
   :data:`SHARE_WINDOW_MS` (the minutes where both had events), times the reference's events
   in this hour's such minutes, is a second estimate whose errors are the reference's
   counting noise rather than the throttle's: averaging the two cuts the error.

A hidden event is priced at the minute's mean event size over the snapshot venue's shown
events and the reference's (both sample the same liquidations; the larger sample is
steadier); the share estimate scales that volume like the count. Without a reference in the
hour, the shown events are multiplied by :data:`PRIOR_EVENTS_PER_SECOND`. Both constants were
set on the simulator's tuning seeds (bench/coverage_estimate.py; results in BENCHMARKS.md).
``complete`` and ``sampled`` events are taken as measured: a ``sampled`` feed's misses are
accounts we do not watch, which no second-count reveals.

The estimate never lowers a figure: a factor is at least 1. Pure and deterministic: minute
cells in, factors out; the stores gather the cells from their minute rollups.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import NamedTuple

from purpleflea.model import Coverage

#: The highest share of busy seconds the model trusts for a snapshot venue (see module doc).
#: It bounds the events one shown second may stand for (``λ_s <= -ln(1 - cap)``, about 8.5).
#: A cohort's events cluster on one symbol a couple of seconds apart, so a minute's rate is
#: uneven and the reference's single ``λ`` understates the busy seconds ``S``: the snapshot
#: venue's share of ``S`` reaches the cap in its busiest minutes. At 0.99 (at most 4.6 per
#: second) the estimate fell 30-36 % short on the simulator; 0.9998 was set on seeds 1-3.
MAX_BUSY_SHARE = 0.9998
#: The estimate's method, as stored beside the factors a store keeps for closed hours: bump it
#: whenever what :func:`factors` computes changes (a constant, a weight, the arithmetic), so a
#: store opened by the new code drops the factors the old one computed instead of serving them.
METHOD_VERSION = 2
#: Events per busy second of a snapshot venue when no complete venue overlaps it.
PRIOR_EVENTS_PER_SECOND = 2.0
#: The weight of the busy-seconds estimate; the share estimate has the rest.
BUSY_SECONDS_WEIGHT = 0.5
HOUR_MS = 3_600_000
#: The trailing window of the share estimate, ending with the estimated hour.
SHARE_WINDOW_MS = 24 * HOUR_MS


def events_per_busy_second(lam: float) -> float:
    """``λ / (1 - e^-λ)``: a Poisson count's mean given that it is at least one."""
    if lam < 1e-9:
        return 1.0
    return lam / -math.expm1(-lam)


def intensity(per_busy_second: float) -> float:
    """The ``λ`` whose :func:`events_per_busy_second` is ``per_busy_second`` (>= 1)."""
    if per_busy_second <= 1.0:
        return 0.0
    low, high = 0.0, 1.0
    while events_per_busy_second(high) < per_busy_second:
        high *= 2.0
    for _ in range(60):  # bisection: the function is increasing
        middle = (low + high) / 2.0
        if events_per_busy_second(middle) < per_busy_second:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0


def snapshot_ratio(busy_seconds: int, complete_count: int, complete_seconds: int) -> float:
    """Estimated true events per busy second of a snapshot venue that showed
    ``busy_seconds``, beside a complete venue with ``complete_count`` events in
    ``complete_seconds`` busy seconds (0 of either: no complete venue, use the prior)."""
    if busy_seconds <= 0:
        return 1.0
    if complete_count <= 0 or complete_seconds <= 0:
        return PRIOR_EVENTS_PER_SECOND
    lam_c = intensity(complete_count / complete_seconds)
    if lam_c <= 0.0:
        # The complete venue never had two in a second: the market was quiet, the snapshot
        # venue's throttle hid (about) nothing.
        return 1.0
    busy_market_seconds = complete_count / lam_c
    share = min(busy_seconds / busy_market_seconds, MAX_BUSY_SHARE)
    return events_per_busy_second(-math.log1p(-share))


class Factor(NamedTuple):
    """A snapshot exchange's estimate on one market in one hour, as multiples of what it
    showed: ``events`` for its count, ``usd`` for its volume (both >= 1)."""

    events: float
    usd: float


def factors(
    cells: Iterable[tuple[int, str, str, int, int, float]],
    coverage_of: Callable[[str], Coverage],
) -> dict[tuple[int, str, str], Factor]:
    """Each snapshot exchange's :class:`Factor` per ``(hour_ms, market, exchange)``, from one
    row per minute, market and exchange: ``(minute_ms, market, exchange, events, seconds,
    size_usd)`` (the minute rollup's sums over sides). Hours must be whole (every exchange of
    the market); an hour's share estimate reads the :data:`SHARE_WINDOW_MS` before it, so the
    rows should reach back that far (an hour whose window is cut short uses what is there)."""
    rows = cells if isinstance(cells, list) else list(cells)
    coverage: dict[str, Coverage] = {}
    for row in rows:
        if row[2] not in coverage:
            coverage[row[2]] = coverage_of(row[2])
    complete_hour: dict[tuple[int, str, str], int] = {}
    for minute, market, exchange, events, _, _ in rows:
        if coverage[exchange] == "complete":
            key = (minute // HOUR_MS * HOUR_MS, market, exchange)
            complete_hour[key] = complete_hour.get(key, 0) + events
    reference: dict[tuple[int, str], tuple[str, int]] = {}
    for (hour, market, exchange), events in complete_hour.items():
        if events > reference.get((hour, market), ("", 0))[1]:
            reference[(hour, market)] = (exchange, events)
    ref_minute: dict[tuple[int, str], tuple[int, int, float]] = {}
    for minute, market, exchange, events, seconds, usd in rows:
        found = reference.get((minute // HOUR_MS * HOUR_MS, market))
        if found is not None and found[0] == exchange:
            ref_minute[(minute, market)] = (events, seconds, usd)
    # Per snapshot hour: shown events and USD, the busy-seconds estimate's events and USD,
    # and the reference's events in the minutes where both had events.
    hours: dict[tuple[int, str, str], list[float]] = {}
    for minute, market, exchange, events, seconds, usd in rows:
        if coverage[exchange] != "snapshot" or events <= 0:
            continue
        hour = minute // HOUR_MS * HOUR_MS
        key = (hour, market, exchange)
        total = hours.get(key)
        if total is None:
            total = hours[key] = [0.0, 0.0, 0.0, 0.0, 0.0]
        total[0] += events
        total[1] += usd
        busy = min(seconds, events) if seconds > 0 else events
        if (hour, market) not in reference:
            estimated, mean_usd, ref_events = busy * PRIOR_EVENTS_PER_SECOND, usd / events, 0
        else:
            ref_events, ref_seconds, ref_usd = ref_minute.get((minute, market), (0, 0, 0.0))
            if ref_events <= 0:
                estimated, mean_usd = events, 0.0  # the reference was quiet: nothing hidden
            else:
                estimated = busy * snapshot_ratio(busy, ref_events, ref_seconds)
                mean_usd = (usd + ref_usd) / (events + ref_events)
        extra = max(0.0, estimated - events)  # never below what was measured
        total[2] += events + extra
        total[3] += usd + extra * mean_usd
        total[4] += ref_events
    # The share estimate: the trailing window's busy-seconds events over the reference's.
    by_venue: dict[tuple[str, str], list[tuple[int, float, float]]] = {}
    for (hour, market, exchange), total in hours.items():
        by_venue.setdefault((market, exchange), []).append((hour, total[2], total[4]))
    share: dict[tuple[int, str, str], float] = {}
    for (market, exchange), series in by_venue.items():
        series.sort()
        start = 0
        estimated_sum = reference_sum = 0.0
        for at, busy_estimate, reference_events in series:
            estimated_sum += busy_estimate
            reference_sum += reference_events
            while series[start][0] <= at - SHARE_WINDOW_MS:
                estimated_sum -= series[start][1]
                reference_sum -= series[start][2]
                start += 1
            if reference_sum > 0:
                share[(at, market, exchange)] = estimated_sum / reference_sum
    out: dict[tuple[int, str, str], Factor] = {}
    for key, (shown, shown_usd, busy_count, busy_usd, overlap) in hours.items():
        count = busy_count
        ratio = share.get(key)
        if ratio is not None and overlap > 0:
            weight = BUSY_SECONDS_WEIGHT
            count = weight * busy_count + (1 - weight) * ratio * overlap
        count = max(count, shown)
        scaled_usd = busy_usd * count / busy_count if busy_count > 0 else shown_usd
        usd_factor = max(1.0, scaled_usd / shown_usd) if shown_usd > 0 else count / shown
        out[key] = Factor(count / shown, usd_factor)
    return out
