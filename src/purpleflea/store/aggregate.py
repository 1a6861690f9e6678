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

from purpleflea.engine.coverage import hidden
from purpleflea.model import Coverage
from purpleflea.store.base import INTERVAL_MS, Bucket, GroupBy, Interval, Query
from purpleflea.store.sql import Dialect, where
from purpleflea.venues.registry import coverage_of

_GROUPS = frozenset({"market", "exchange", "side"})
_HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class AggregateSql:
    """The one query answering an aggregate, and its parameters."""

    sql: str
    params: list[Any]


def aggregate_sql(
    interval: Interval, group_by: GroupBy, query: Query, dialect: Dialect, *, hourly: bool
) -> AggregateSql:
    """The query answering an aggregate; ``hourly``: the store keeps an hourly rollup.

    Its rows are the estimate's cells (bucket, group, hour or minute, market, exchange, count,
    seconds with events, USD) with the long and short USD after them: :func:`buckets` sums
    them into the measured buckets and estimates from them, so the rollup is read once.
    """
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
        if dialect == "postgres":  # its SUM of bigint is numeric: Decimal, not int
            count, seconds = "SUM(count)::bigint", "SUM(seconds)::bigint"
        found = where(query, dialect, with_size=False, time_column=time, events=False)
    bucket = f"({time} / {width}) * {width}"
    # The estimate calibrates per hour; minute buckets keep their minutes.
    fine_ms = 60_000 if width < _HOUR_MS else _HOUR_MS
    fine = f"({time} / {fine_ms}) * {fine_ms}"
    if _may_hide(query):
        cell = f"{fine} AS fine, market, exchange"
        keys = "bucket, grp, fine, market, exchange"
    else:
        # No snapshot feed selected: nothing to estimate, so no per-exchange rows to read
        # (about ten times fewer; '' is no exchange, taken as measured).
        cell, keys = "0 AS fine, '' AS market, '' AS exchange", "bucket, grp"
    sql = (
        f"SELECT {bucket} AS bucket, {group_by} AS grp, {cell}, {count}, {seconds}, "
        "SUM(size_usd), SUM(CASE WHEN side = 'long' THEN size_usd ELSE 0 END), "
        "SUM(CASE WHEN side = 'short' THEN size_usd ELSE 0 END) "
        f"FROM {source}{found.sql} GROUP BY {keys}"
    )
    return AggregateSql(sql, found.params)


def _may_hide(query: Query) -> bool:
    """Whether the query may select events of a ``snapshot`` feed (which the estimate adds to)."""
    if query.coverages and "snapshot" not in query.coverages:
        return False
    return not query.exchanges or any(_coverage(e) == "snapshot" for e in query.exchanges)


def buckets(rows: Sequence[tuple[Any, ...]]) -> list[Bucket]:
    """The aggregate's buckets, in (start, group) order, from :func:`aggregate_sql`'s rows."""
    measured: dict[tuple[int, str], list[float]] = {}
    for bucket, group, _, _, _, count, _, usd, longs, shorts in rows:
        cell = measured.get((bucket, group))
        if cell is None:
            measured[(bucket, group)] = [count, usd, longs, shorts]
        else:
            cell[0] += count
            cell[1] += usd
            cell[2] += longs
            cell[3] += shorts
    extras = hidden([row[:8] for row in rows], _coverage)
    out: list[Bucket] = []
    for key in sorted(measured):
        count, total, longs, shorts = measured[key]
        extra = extras.get(key)
        out.append(
            Bucket(
                start_ms=int(key[0]),
                group=str(key[1]),
                count=int(count),
                size_usd=float(total),
                long_usd=float(longs),
                short_usd=float(shorts),
                est_count=int(count) + (round(extra.events) if extra else 0),
                est_size_usd=float(total) + (extra.size_usd if extra else 0.0),
            )
        )
    return out


def _coverage(exchange: str) -> Coverage:
    """The exchange's coverage; one no venue knows any more is taken as measured (no
    estimate is added to it)."""
    try:
        return coverage_of(exchange)
    except KeyError:
        return "complete"
