"""Aggregates for both SQL stores: which table answers, the queries, and the buckets.

An aggregate reads the per-minute (or, hour-aligned, per-hour) rollups unless it needs what
they do not hold (sizes, times inside a minute, seqs); then it reads the events. Its
``est_count`` and ``est_size_usd`` come from each snapshot exchange's :class:`~purpleflea.
engine.coverage.Factor` of the market and hour, kept in the ``coverage_factor`` table once the
hour is over, so the aggregate stays one grouped read joined to that table (a closed hour's
factors never change unless events land in it, and an append that does deletes them: see
:data:`INVALIDATE_SQL`). Rows no stored factor covers (the open hour, hours not estimated
yet) are estimated from the minute rollups of their hours, and a closed hour's factors are
stored then, only if its rollup still holds the events they were computed from.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from purpleflea.clock import now_ms
from purpleflea.engine.coverage import Factor, factors
from purpleflea.model import Coverage
from purpleflea.store.base import INTERVAL_MS, Bucket, GroupBy, Interval, Query
from purpleflea.store.sql import Dialect, Where, where
from purpleflea.venues.registry import EXCHANGE_IDS, coverage_of

_GROUPS = frozenset({"market", "exchange", "side"})
HOUR_MS = 3_600_000

#: The cache of closed hours' factors. Its columns are prefixed so that the filters' column
#: names (market, exchange, ...) stay unambiguous in the join.
FACTOR_TABLE_SQL = {
    "sqlite": (
        "CREATE TABLE IF NOT EXISTS coverage_factor (f_market TEXT NOT NULL, "
        "f_hour INTEGER NOT NULL, f_exchange TEXT NOT NULL, f_count REAL NOT NULL, "
        "f_usd REAL NOT NULL, PRIMARY KEY (f_market, f_hour, f_exchange)) WITHOUT ROWID"
    ),
    "postgres": (
        "CREATE TABLE IF NOT EXISTS coverage_factor (f_market text NOT NULL, "
        "f_hour bigint NOT NULL, f_exchange text NOT NULL, f_count float8 NOT NULL, "
        "f_usd float8 NOT NULL, PRIMARY KEY (f_market, f_hour, f_exchange))"
    ),
}
#: An append deletes the factors of every (market, hour) it adds events to (SQLite's; the
#: PostgreSQL store does it inside its one append statement).
INVALIDATE_SQL = "DELETE FROM coverage_factor WHERE f_market = ? AND f_hour = ?"

#: The factor row, stored only while the hour's minute rollup still counts the events the
#: factor was computed from (an append in between changed it: the next aggregate recomputes).
_SAVE_SQL = (
    "INSERT INTO coverage_factor (f_market, f_hour, f_exchange, f_count, f_usd) "
    "SELECT {m}{text}, {m}{int}, {m}{text}, {m}{real}, {m}{real} "
    "WHERE (SELECT COALESCE(SUM(count), 0) FROM rollup_1m "
    "WHERE market = {m} AND minute >= {m} AND minute < {m}) = {m} "
    "ON CONFLICT (f_market, f_hour, f_exchange) DO UPDATE SET f_count = excluded.f_count, "
    "f_usd = excluded.f_usd"
)
#: An hour is cached this long after it ended (late events of a live feed land before).
CLOSE_AFTER_MS = 60_000

Read = Callable[[str, Sequence[Any]], Awaitable[list[tuple[Any, ...]]]]
Save = Callable[[str, list[tuple[Any, ...]]], Awaitable[None]]


def save_sql(dialect: Dialect) -> str:
    """The statement storing one factor row (see :func:`aggregate`'s ``save``)."""
    if dialect == "sqlite":
        return _SAVE_SQL.format(m="?", text="", int="", real="")
    return _SAVE_SQL.format(m="%s", text="::text", int="::bigint", real="::float8")


@dataclass(frozen=True, slots=True)
class _Source:
    """Where an aggregate reads: the table, its time column and its count per row."""

    table: str
    time: str
    count: str  # one row's events: 1 for an event, ``count`` for a rollup row
    events: bool


def _source(interval: Interval, query: Query, *, hourly: bool) -> _Source:
    width = INTERVAL_MS[interval]
    minute_aligned = all(b is None or b % 60_000 == 0 for b in (query.start_ms, query.end_ms))
    hour_aligned = all(b is None or b % HOUR_MS == 0 for b in (query.start_ms, query.end_ms))
    if query.min_usd > 0 or query.before_seq is not None or not minute_aligned:
        # Rollups know neither event sizes nor times inside a minute: read the events.
        return _Source("liquidations", "ts", "1", events=True)
    if hourly and width >= HOUR_MS and hour_aligned:
        # Hour-aligned hourly/daily buckets: a year of one market is ~9k rows, not ~500k.
        return _Source("rollup_1h", "hour", "count", events=False)
    return _Source("rollup_1m", "minute", "count", events=False)


def _validate(interval: Interval, group_by: GroupBy) -> None:
    if interval not in INTERVAL_MS:
        raise ValueError(f"aggregate interval must be one of {sorted(INTERVAL_MS)}: {interval!r}")
    if group_by not in _GROUPS:
        raise ValueError(f"aggregate group_by must be one of {sorted(_GROUPS)}: {group_by!r}")


def _snapshot_in(dialect: Dialect) -> tuple[str, list[Any]]:
    """``exchange`` is a snapshot feed, as SQL and its parameters."""
    snapshot = [e for e in EXCHANGE_IDS if coverage_of(e) == "snapshot"]
    if dialect == "postgres":
        return "exchange = ANY(%s)", [snapshot]
    return f"exchange IN ({', '.join('?' for _ in snapshot)})", snapshot


async def aggregate(
    read: Read,
    save: Save | None,
    interval: Interval,
    group_by: GroupBy,
    query: Query,
    dialect: Dialect,
    *,
    hourly: bool,
    cached: bool = True,
) -> list[Bucket]:
    """The aggregate's buckets, in (start, group) order. ``read`` runs a query; ``save`` runs
    :func:`save_sql` over rows (None: a read-only store, which stores no factor); ``hourly``:
    the store keeps an hourly rollup; ``cached``: it has the ``coverage_factor`` table (a
    read-only file written before it has not: every hour is then estimated afresh)."""
    _validate(interval, group_by)
    source = _source(interval, query, hourly=hourly)
    width = INTERVAL_MS[interval]
    bucket = f"({source.time} / {width}) * {width}"
    usd = "size_usd"
    sums = (
        f"SUM({source.count}), SUM({usd}), "
        f"SUM(CASE WHEN side = 'long' THEN {usd} ELSE 0 END), "
        f"SUM(CASE WHEN side = 'short' THEN {usd} ELSE 0 END)"
    )
    if dialect == "postgres":  # its SUM of bigint is numeric: Decimal, not int
        sums = sums.replace(f"SUM({source.count})", f"SUM({source.count})::bigint", 1)
    if not _may_hide(query):
        # No snapshot feed selected: nothing to estimate, nothing to join.
        found = _where(query, dialect, source)
        sql = (
            f"SELECT {bucket} AS bucket, {group_by} AS grp, {sums} "
            f"FROM {source.table}{found.sql} GROUP BY bucket, grp"
        )
        rows = await read(sql, found.params)
        return _buckets([(*row, row[2], row[3], 0) for row in rows], {})
    hour = f"({source.time} / {HOUR_MS}) * {HOUR_MS}"
    snapshot_sql, snapshot_params = _snapshot_in(dialect)
    if cached:
        join = (
            f" LEFT JOIN coverage_factor ON f_market = market AND f_hour = {hour} "
            "AND f_exchange = exchange"
        )
        estimate = (
            f"SUM({source.count} * COALESCE(f_count, 1.0)), SUM({usd} * COALESCE(f_usd, 1.0))"
        )
        uncovered_sql = f"f_hour IS NULL AND {snapshot_sql}"
    else:
        join, estimate, uncovered_sql = "", f"SUM({source.count}), SUM({usd})", snapshot_sql
    found = _where(query, dialect, source)
    sql = (
        f"SELECT {bucket} AS bucket, {group_by} AS grp, {sums}, {estimate}, "
        f"SUM(CASE WHEN {uncovered_sql} THEN 1 ELSE 0 END) "
        f"FROM {source.table}{join}{found.sql} GROUP BY bucket, grp"
    )
    rows = await read(sql, [*snapshot_params, *found.params])
    uncovered = [int(row[0]) for row in rows if row[8]]
    if not uncovered:
        return _buckets(rows, {})
    # The rows no stored factor covers, per cell, within the buckets that have them.
    narrowed = Query(
        markets=query.markets,
        exchanges=query.exchanges,
        sides=query.sides,
        coverages=query.coverages,
        min_usd=query.min_usd,
        start_ms=max(min(uncovered), query.start_ms or 0),
        end_ms=min(max(uncovered) + width, query.end_ms or max(uncovered) + width),
        before_seq=query.before_seq,
    )
    found = _where(narrowed, dialect, source)
    missing_sql = f" AND {uncovered_sql}"
    cells = await read(
        f"SELECT {bucket} AS bucket, {group_by} AS grp, {hour} AS h, market, exchange, "
        f"SUM({source.count}), SUM({usd}) FROM {source.table}{join}"
        f"{found.sql or ' WHERE 1 = 1'}{missing_sql} GROUP BY bucket, grp, h, market, exchange",
        [*found.params, *snapshot_params],
    )
    hours = {(int(c[2]), str(c[3])) for c in cells}
    estimated = await _estimate(read, save if cached else None, dialect, hours)
    extras: dict[tuple[int, str], list[float]] = {}
    for key_bucket, group, h, market, exchange, count, total in cells:
        factor = estimated.get((int(h), market, exchange))
        if factor is None:
            continue
        extra = extras.setdefault((int(key_bucket), str(group)), [0.0, 0.0])
        extra[0] += float(count) * (factor.events - 1.0)
        extra[1] += float(total) * (factor.usd - 1.0)
    return _buckets(rows, extras)


def _where(query: Query, dialect: Dialect, source: _Source) -> Where:
    if source.events:
        return where(query, dialect)
    return where(query, dialect, with_size=False, time_column=source.time, events=False)


async def _estimate(
    read: Read, save: Save | None, dialect: Dialect, hours: set[tuple[int, str]]
) -> dict[tuple[int, str, str], Factor]:
    """The factors of ``hours`` (hour, market), from their whole minute rollups; a closed
    hour's are stored."""
    if not hours:
        return {}
    mark = "?" if dialect == "sqlite" else "%s"
    markets = sorted({market for _, market in hours})
    low = min(h for h, _ in hours)
    high = max(h for h, _ in hours) + HOUR_MS
    market_params: list[Any]
    if dialect == "postgres":
        market_sql, market_params = "market = ANY(%s)", [markets]
    else:
        market_sql, market_params = f"market IN ({', '.join('?' for _ in markets)})", [*markets]
    seconds = "SUM(seconds)::bigint" if dialect == "postgres" else "SUM(seconds)"
    count = "SUM(count)::bigint" if dialect == "postgres" else "SUM(count)"
    rows = await read(
        f"SELECT minute, market, exchange, {count}, {seconds}, SUM(size_usd) FROM rollup_1m "
        f"WHERE {market_sql} AND minute >= {mark} AND minute < {mark} "
        "GROUP BY minute, market, exchange",
        [*market_params, low, high],
    )
    wanted = [
        (int(m), str(mk), str(e), int(c), int(s), float(u))
        for m, mk, e, c, s, u in rows
        if (int(m) // HOUR_MS * HOUR_MS, mk) in hours
    ]
    found = factors(wanted, _coverage)
    if save is not None:
        closed_before = now_ms() - CLOSE_AFTER_MS
        totals: dict[tuple[int, str], int] = {}
        for minute, market, _, events, _, _ in wanted:
            key = (minute // HOUR_MS * HOUR_MS, market)
            totals[key] = totals.get(key, 0) + events
        keep = [
            (market, h, exchange, f.events, f.usd, market, h, h + HOUR_MS, totals[(h, market)])
            for (h, market, exchange), f in found.items()
            if h + HOUR_MS <= closed_before
        ]
        if keep:
            await save(save_sql(dialect), keep)
    return found


def _may_hide(query: Query) -> bool:
    """Whether the query may select events of a ``snapshot`` feed (which the estimate adds to)."""
    if query.coverages and "snapshot" not in query.coverages:
        return False
    return not query.exchanges or any(_coverage(e) == "snapshot" for e in query.exchanges)


def _buckets(
    rows: Sequence[tuple[Any, ...]], extras: dict[tuple[int, str], list[float]]
) -> list[Bucket]:
    """Buckets from rows ``(bucket, group, count, usd, longs, shorts, est_count, est_usd,
    _)`` plus the ``extras`` (events, USD) estimated for the rows no stored factor covered."""
    out: list[Bucket] = []
    for row in sorted(rows, key=lambda r: (int(r[0]), str(r[1]))):
        start, group, count, total, longs, shorts, est_count, est_usd = row[:8]
        extra = extras.get((int(start), str(group)), (0.0, 0.0))
        out.append(
            Bucket(
                start_ms=int(start),
                group=str(group),
                count=int(count),
                size_usd=float(total),
                long_usd=float(longs),
                short_usd=float(shorts),
                est_count=max(int(count), round(float(est_count) + extra[0])),
                est_size_usd=max(float(total), float(est_usd) + extra[1]),
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
