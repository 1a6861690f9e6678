"""What throttled feeds hid: the estimate behind aggregates' ``est_count`` and ``est_size_usd``.

A ``snapshot`` venue (Binance) sends at most one liquidation per symbol per second, so the
seconds that carried one of its events are a lower bound on how many it had. How many each
such second hid is read off a ``complete`` venue (Bybit) liquidating the same market in the
same hour, under one model:

    In an hour, a market is *busy* in ``S`` seconds (the cascade's, the spike's). In each busy
    second, a venue's liquidations of it arrive as a Poisson count with a mean ``λ_v`` of its
    own (its share of the market's flow).

A venue then shows ``B_v = S (1 - e^-λ_v)`` seconds with events and ``C_v = S λ_v`` events.
For the complete venue both are measured: ``C_c / B_c = λ_c / (1 - e^-λ_c)`` gives ``λ_c``,
and ``S = C_c / λ_c``. For the snapshot venue only ``B_s`` is seen; ``λ_s = -ln(1 - B_s / S)``
and its true count is estimated as ``S λ_s``, i.e. ``B_s`` times ``λ_s / (1 - e^-λ_s)``, the
events per busy second at its intensity. When ``B_s / S`` reaches :data:`MAX_BUSY_SHARE` (the
snapshot venue is busy in about every second the complete venue suggests, so the model can no
longer tell intensities apart) it is held there. Its volume is scaled like its count: the
throttle keeps one event per second whatever its size, so the sample's mean size stands for
the hidden ones'.

Without a complete venue on the market in that hour (no overlap, or the complete venue saw
nothing), the events per busy second fall back to :data:`PRIOR_EVENTS_PER_SECOND`, calibrated
on the simulator (bench/coverage_estimate.py, tuning seeds only; results in BENCHMARKS.md).
``complete`` and ``sampled`` events are taken as measured: a ``sampled`` feed's misses are
accounts we do not watch, which no second-count reveals.

The estimate never lowers a figure: a cell's estimate is at least what was measured. Pure and
deterministic: cells in, extras out; the stores gather the cells from their rollups.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import NamedTuple

from purpleflea.model import Coverage

#: The highest share of busy seconds the model trusts for a snapshot venue (see module doc).
MAX_BUSY_SHARE = 0.99
#: Events per busy second of a snapshot venue when no complete venue overlaps it.
PRIOR_EVENTS_PER_SECOND = 2.0
HOUR_MS = 3_600_000


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
    size_usd)`` (the minute rollup's sums over sides). The hours' rows must be whole (every
    exchange of the market): the calibrating venue is chosen per hour.

    Per minute, the hidden events are :func:`snapshot_ratio`'s, calibrated on the hour's
    complete venue's events and seconds in that minute (a minute where it saw nothing was
    quiet: nothing hidden; an hour where it saw nothing takes the prior). A hidden event is
    priced at the minute's mean event size over the snapshot venue's shown events and the
    complete venue's: both sample the same liquidations, and the larger sample is steadier."""
    rows = cells if isinstance(cells, list) else list(cells)
    coverage: dict[str, Coverage] = {}
    for row in rows:
        if row[2] not in coverage:
            coverage[row[2]] = coverage_of(row[2])
    # The calibrating venue of a market and hour: its complete venue with the most events.
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
    sums: dict[tuple[int, str, str], list[float]] = {}
    for minute, market, exchange, events, seconds, usd in rows:
        if coverage[exchange] != "snapshot" or events <= 0:
            continue
        hour = minute // HOUR_MS * HOUR_MS
        key = (hour, market, exchange)
        total = sums.get(key)
        if total is None:
            total = sums[key] = [0.0, 0.0, 0.0, 0.0]
        total[0] += events
        total[1] += usd
        busy = min(seconds, events) if seconds > 0 else events
        if (hour, market) in reference:
            ref_events, ref_seconds, ref_usd = ref_minute.get((minute, market), (0, 0, 0.0))
            if ref_events <= 0:
                continue  # the complete venue was quiet that minute: nothing hidden
            estimated = busy * snapshot_ratio(busy, ref_events, ref_seconds)
            mean_usd = (usd + ref_usd) / (events + ref_events)
        else:
            estimated = busy * PRIOR_EVENTS_PER_SECOND
            mean_usd = usd / events
        extra = estimated - events
        if extra > 0:  # never below what was measured
            total[2] += extra
            total[3] += extra * mean_usd
    return {
        key: Factor(1.0 + extra / events, 1.0 + (extra_usd / usd if usd > 0 else extra / events))
        for key, (events, usd, extra, extra_usd) in sums.items()
    }
