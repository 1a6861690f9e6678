"""Aggregates for both SQL stores: which table answers, the two queries, and the buckets.

An aggregate reads the per-minute (or, hour-aligned, per-hour) rollups unless it needs what
they do not hold (sizes, times inside a minute, seqs); then it reads the events. A second query
over the same source gathers the cells of :mod:`purpleflea.engine.coverage` (per bucket, group,
hour or minute, market and exchange, with the seconds that carried events), from which each
bucket's ``est_count`` and ``est_size_usd`` are computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from purpleflea.engine.coverage import Cell, hidden
from purpleflea.store.base import INTERVAL_MS, Bucket, GroupBy, Interval, Query
from purpleflea.store.sql import Dialect, where
from purpleflea.venues.registry import coverage_of

_GROUPS = frozenset({"market", "exchange", "side"})
_HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class AggregateSql:
    """The measured buckets' query and the estimate's cells' query, sharing ``params``."""

    measured: str
    cells: str
    params: list[Any]


def aggregate_sql(
    interval: Interval, group_by: GroupBy, query: Query, dialect: Dialect, *, hourly: bool
) -> AggregateSql:
    """The queries answering an aggregate; ``hourly``: the store keeps an hourly rollup."""
    if interval not in INTERVAL_MS:
        raise ValueError(f"aggregate interval must be one of {sorted(INTERVAL_MS)}: {interval!r}")
    if group_by not in _GROUPS:
        raise ValueError(f"aggregate group_by must be one of {sorted(_GROUPS)}: {group_by!r}")
    width = INTERVAL_MS[interval]
    minute_aligned = all(b is None or b % 60_000 == 0 for b in (query.start_ms, query.end_ms))
    hour_aligned = all(b is None or b % _HOUR_MS == 0 for b in (query.start_ms, query.end_ms))
    if query.min_usd > 0 or query.before_seq is not None or not minute_aligned:
        # Rollups know neither event sizes nor times inside a minute: read the events.
        source, time, count = "liquidations", "ts", "COUNT(*)"
        seconds = "COUNT(DISTINCT ts / 1000)"
        found = where(query, dialect)
    else:
        if hourly and width >= _HOUR_MS and hour_aligned:
            # Hour-aligned hourly/daily buckets: a year of one market is ~9k rows, not ~500k.
            source, time = "rollup_1h", "hour"
        else:
            source, time = "rollup_1m", "minute"
        count, seconds = "SUM(count)", "SUM(seconds)"
        found = where(query, dialect, with_size=False, time_column=time, events=False)
    bucket = f"({time} / {width}) * {width}"
    # The estimate calibrates per hour; minute buckets keep their minutes.
    fine = (
        f"({time} / 60000) * 60000" if width < _HOUR_MS else f"({time} / {_HOUR_MS}) * {_HOUR_MS}"
    )
    measured = (
        f"SELECT {bucket} AS bucket, {group_by}, {count}, SUM(size_usd), "
        "SUM(CASE WHEN side = 'long' THEN size_usd ELSE 0 END), "
        "SUM(CASE WHEN side = 'short' THEN size_usd ELSE 0 END) "
        f"FROM {source}{found.sql} GROUP BY bucket, {group_by} ORDER BY bucket, {group_by}"
    )
    cells = (
        f"SELECT {bucket} AS bucket, {group_by}, {fine} AS fine, market, exchange, {count}, "
        f"{seconds}, SUM(size_usd) FROM {source}{found.sql} "
        f"GROUP BY bucket, {group_by}, fine, market, exchange"
    )
    return AggregateSql(measured, cells, found.params)


def buckets(measured: Sequence[tuple[Any, ...]], cells: Sequence[tuple[Any, ...]]) -> list[Bucket]:
    """The aggregate's buckets from the rows of :func:`aggregate_sql`'s two queries."""
    extras = hidden(
        Cell(
            bucket=int(bucket),
            group=str(group),
            start_ms=int(fine),
            market=str(market),
            exchange=str(exchange),
            coverage=_coverage(str(exchange)),
            events=int(count),
            seconds=int(seconds),
            size_usd=float(usd),
        )
        for bucket, group, fine, market, exchange, count, seconds, usd in cells
    )
    out: list[Bucket] = []
    for bucket, group, count, total, longs, shorts in measured:
        extra = extras.get((int(bucket), str(group)))
        out.append(
            Bucket(
                start_ms=int(bucket),
                group=str(group),
                count=int(count),
                size_usd=float(total),
                long_usd=float(longs),
                short_usd=float(shorts),
                est_count=int(count) + (round(extra.events) if extra else 0),
                est_size_usd=float(total) + (extra.size_usd if extra else 0.0),
            )
        )
    return out


def _coverage(exchange: str) -> Any:
    """The exchange's coverage; one no venue knows any more is taken as measured (no
    estimate is added to it)."""
    try:
        return coverage_of(exchange)
    except KeyError:
        return "complete"
