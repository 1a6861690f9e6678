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


class Cell(NamedTuple):
    """Measured liquidations of one exchange on one market in one slice of an aggregate bucket.

    ``bucket`` and ``group`` name the aggregate row the cell adds to; ``start_ms`` is the
    cell's time (minute or hour), which picks its calibration hour. ``seconds`` counts the
    seconds that carried at least one of its events (the rollups' ``seconds`` column).
    """

    bucket: int
    group: str
    start_ms: int
    market: str
    exchange: str
    events: int
    seconds: int
    size_usd: float


class Extra(NamedTuple):
    """What an aggregate row gains from the estimate: hidden events and their USD."""

    events: float
    size_usd: float


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


def hidden(
    cells: Iterable[tuple[int, str, int, str, str, int, int, float]],
    coverage_of: Callable[[str], Coverage],
    *,
    window_ms: int = HOUR_MS,
) -> dict[tuple[int, str], Extra]:
    """The estimated hidden events and USD of each aggregate row ``(bucket, group)`` (rows
    without any are left out), from :class:`Cell` rows (or plain tuples in its field order:
    the stores pass their rows as read); ``coverage_of`` names each exchange's coverage.
    Each snapshot exchange's cells of one market and hour share one ratio, estimated from the
    hour's totals. Written for speed: a year of hourly cells is ~100k rows per market."""
    cells = cells if isinstance(cells, list) else list(cells)
    coverage: dict[str, Coverage] = {}
    for cell in cells:
        if cell[4] not in coverage:
            coverage[cell[4]] = coverage_of(cell[4])
    snapshot = {e for e, c in coverage.items() if c == "snapshot"}
    complete = {e for e, c in coverage.items() if c == "complete"}
    if not snapshot:
        return {}
    totals: dict[tuple[int, str, str], list[int]] = {}
    for _, _, start_ms, market, exchange, events, seconds, _ in cells:
        if exchange in snapshot or exchange in complete:
            key = (start_ms // window_ms, market, exchange)
            found = totals.get(key)
            if found is None:
                totals[key] = [events, seconds]
            else:
                found[0] += events
                found[1] += seconds
    # The calibrating venue of a market and hour: its complete venue with the most events.
    reference: dict[tuple[int, str], tuple[int, int]] = {}
    for (hour, market, exchange), (count, seconds) in totals.items():
        if exchange in complete and count > reference.get((hour, market), (0, 0))[0]:
            reference[(hour, market)] = (count, seconds)
    ratio: dict[tuple[int, str, str], float] = {}
    for key, (count, seconds) in totals.items():
        if key[2] not in snapshot or count <= 0:
            continue
        ref_count, ref_seconds = reference.get((key[0], key[1]), (0, 0))
        estimated = seconds * snapshot_ratio(seconds, ref_count, ref_seconds)
        # Never below what was measured (a feed that sent more than one event a second).
        if estimated > count:
            ratio[key] = estimated / count
    extras: dict[tuple[int, str], list[float]] = {}
    for bucket, group, start_ms, market, exchange, events, _, usd in cells:
        if exchange not in snapshot:
            continue
        scale = ratio.get((start_ms // window_ms, market, exchange))
        if scale is not None:
            extra = extras.get((bucket, group))
            if extra is None:
                extra = extras[(bucket, group)] = [0.0, 0.0]
            extra[0] += events * (scale - 1.0)
            extra[1] += usd * (scale - 1.0)
    return {key: Extra(count, usd) for key, (count, usd) in extras.items()}
