"""Aggregates for both SQL stores: which table answers, the queries, and the buckets.

An aggregate reads the per-minute rollups unless it needs what they do not hold (sizes, times
inside a minute, seqs); then it reads the events. Hourly and daily buckets read the whole hours
inside their window from the per-hour rollups, and only the partial hours at its edges from the
minutes or the events (:func:`_parts`).

Its ``est_count`` and ``est_size_usd`` come from each snapshot exchange's :class:`~purpleflea.
engine.coverage.Factor` of the market and hour, kept in the ``coverage_factor`` table once the
hour is over, so the aggregate stays one grouped read joined to that table (a closed hour's
factors never change unless events land in it, and an append that does deletes them: see
:data:`INVALIDATE_SQL`). Rows no stored factor covers (the open hour, hours not estimated
yet) are estimated from the minute rollups of their hours, and a closed hour's factors are
stored then, only if its rollup still holds the events they were computed from; an open
hour's are kept in memory for a few seconds instead (:mod:`purpleflea.store.open_hours`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from purpleflea.clock import now_ms
from purpleflea.cputime import on_thread
from purpleflea.engine.coverage import METHOD_VERSION, SHARE_WINDOW_MS, Factor, factors
from purpleflea.model import Coverage
from purpleflea.store.base import INTERVAL_MS, Bucket, GroupBy, Interval, Query
from purpleflea.store.open_hours import MarketHour, OpenHours
from purpleflea.store.sql import Dialect, Where, where
from purpleflea.venues.registry import EXCHANGE_IDS, coverage_of

_GROUPS = frozenset({"market", "exchange", "side"})
HOUR_MS = 3_600_000
#: A bucket's ``est_calibration`` (:func:`calibration`); the MCP tools' ``estimate.calibration``
#: uses the same words.
CALIBRATION_NONE = "none"
CALIBRATED = "complete_venues"
PRIOR_ONLY = "prior_only"
MIXED = "mixed"

#: The cache of closed hours' factors, one row per rollup row of a snapshot feed: the factor
#: (for minute and event reads) and what it adds to that row (an hourly aggregate sums these
#: beside the rollup's own sums, no join); plus one row per market-hour (exchange and side
#: '') adding up its rows, which an unfiltered aggregate by market reads alone. ``covers``:
#: how many snapshot rollup rows a row stands for. Named like the rollups' columns, so the
#: aggregate's filters apply to it as they are. ``shown_events`` and ``prior_events``: the
#: row's snapshot events, and those of them in a market-hour no complete venue had events in
#: (0 or all), so a grouped aggregate's ``est_calibration`` is summed beside its additions
#: (:func:`calibration`); NULL in a row an older node stored (then read from the rollups).
FACTOR_TABLE_SQL = {
    "sqlite": (
        "CREATE TABLE IF NOT EXISTS coverage_factor (market TEXT NOT NULL, "
        "hour INTEGER NOT NULL, exchange TEXT NOT NULL, side TEXT NOT NULL, "
        "f_events REAL NOT NULL, f_usd REAL NOT NULL, extra_events REAL NOT NULL, "
        "extra_usd REAL NOT NULL, covers INTEGER NOT NULL, shown_events INTEGER, "
        "prior_events INTEGER, PRIMARY KEY (market, hour, exchange, side)) WITHOUT ROWID"
    ),
    "postgres": (
        "CREATE TABLE IF NOT EXISTS coverage_factor (market text NOT NULL, "
        "hour bigint NOT NULL, exchange text NOT NULL, side text NOT NULL, "
        "f_events float8 NOT NULL, f_usd float8 NOT NULL, extra_events float8 NOT NULL, "
        "extra_usd float8 NOT NULL, covers bigint NOT NULL, shown_events bigint, "
        "prior_events bigint, PRIMARY KEY (market, hour, exchange, side))"
    ),
}
#: The columns a table made before they were kept lacks (added on open by a writable store).
CALIBRATION_COLUMNS = {
    "sqlite": ("shown_events INTEGER", "prior_events INTEGER"),
    "postgres": ("shown_events bigint", "prior_events bigint"),
}


def add_calibration_columns(dialect: Dialect, present: set[str]) -> list[str]:
    """The statements adding the :data:`CALIBRATION_COLUMNS` not in ``present`` (the table's
    column names)."""
    return [
        f"ALTER TABLE coverage_factor ADD COLUMN {column}"
        for column in CALIBRATION_COLUMNS[dialect]
        if column.split()[0] not in present
    ]


#: Which :data:`~purpleflea.engine.coverage.METHOD_VERSION` computed the stored factors (one
#: row). A store opened by code of another version empties the cache (:data:`RESET_FACTORS`).
METHOD_TABLE_SQL = "CREATE TABLE IF NOT EXISTS coverage_factor_method (version INTEGER NOT NULL)"
METHOD_SQL = "SELECT version FROM coverage_factor_method"
RESET_FACTORS = (
    "DELETE FROM coverage_factor",
    "DELETE FROM coverage_factor_method",
    f"INSERT INTO coverage_factor_method (version) VALUES ({METHOD_VERSION})",
)


def factors_current(found: tuple[object, ...] | None) -> bool:
    """Whether the stored factors (``found``: the row of :data:`METHOD_SQL`) are this method's."""
    return found is not None and found[0] == METHOD_VERSION


#: An append deletes the factors of every (market, hour) it adds events to and of the hours
#: whose share estimate's window holds that hour (SQLite's, with (market, hour, hour +
#: SHARE_WINDOW_MS); the PostgreSQL store does the same inside its one append statement).
INVALIDATE_SQL = "DELETE FROM coverage_factor WHERE market = ? AND hour >= ? AND hour < ?"

#: The factor row, stored only while the hour's minute rollup still counts the events the
#: factor was computed from (an append in between changed it: the next aggregate recomputes).
_SAVE_SQL = (
    "INSERT INTO coverage_factor (market, hour, exchange, side, f_events, f_usd, "
    "extra_events, extra_usd, covers, shown_events, prior_events) "
    "SELECT {m}{text}, {m}{int}, {m}{text}, {m}{text}, {m}{real}, {m}{real}, {m}{real}, "
    "{m}{real}, {m}{int}, {m}{int}, {m}{int} WHERE (SELECT COALESCE(SUM(count), 0) "
    "FROM rollup_1m WHERE market = {m} AND minute >= {m} AND minute < {m}) = {m} "
    "ON CONFLICT (market, hour, exchange, side) DO UPDATE SET f_events = excluded.f_events, "
    "f_usd = excluded.f_usd, extra_events = excluded.extra_events, "
    "extra_usd = excluded.extra_usd, covers = excluded.covers, "
    "shown_events = excluded.shown_events, prior_events = excluded.prior_events"
)
#: Estimates from more minute rows than this run in a worker thread.
_OFF_LOOP_ROWS = 20_000
#: An hour is cached this long after it ended (late events of a live feed land before).
CLOSE_AFTER_MS = 60_000

Read = Callable[[str, Sequence[Any]], Awaitable[list[tuple[Any, ...]]]]
Save = Callable[[str, list[tuple[Any, ...]]], Awaitable[None]]
#: A snapshot rollup row's key: (hour, market, exchange, side).
RowKey = tuple[int, str, str, str]


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
    estimate: bool = True,
    recent: OpenHours | None = None,
) -> list[Bucket]:
    """The aggregate's buckets, in (start, group) order. ``read`` runs a query; ``save`` runs
    :func:`save_sql` over rows (None: a read-only store, which stores no factor); ``hourly``:
    the store keeps an hourly rollup; ``cached``: it has the ``coverage_factor`` table (a
    read-only file written before it has not: every hour is then estimated afresh);
    ``estimate=False``: the measure alone, its ``est_`` fields repeating it (calibration
    ``none``), for a caller that reads only the measure; ``recent``: the open hours' factors
    fitted in the last few seconds, reused (:mod:`purpleflea.store.open_hours`).

    The window is read in :func:`_parts`, each from its own source; a bucket the parts share
    adds up their sums and their estimates' additions (rounded once, on the total)."""
    _validate(interval, group_by)
    measured: dict[tuple[int, str], list[Any]] = {}
    extras: dict[tuple[int, str], list[float]] = {}
    shown: dict[tuple[int, str], list[int]] = {}
    for part in _parts(interval, query, hourly=hourly):
        added: dict[tuple[int, str], list[float]] = {}
        priors: dict[tuple[int, str], tuple[int, int]] = {}
        if not estimate:
            rows = await _measure(read, interval, group_by, part, dialect, hourly)
        elif _calibration_carried(interval, group_by, part, hourly=hourly, cached=cached):
            # The measured read (whole hours by market) or the stored factors' (other groups)
            # give the calibration; the rollups are read for what they did not cover.
            rows, added, priors, pending = await _part(
                read, save, interval, group_by, part, dialect, hourly, cached, recent
            )
            if pending is not None:
                priors.update(
                    await _prior_counts(read, interval, group_by, pending, dialect, hourly=hourly)
                )
        else:
            (rows, added, _, _), priors = await asyncio.gather(
                _part(read, save, interval, group_by, part, dialect, hourly, cached, recent),
                _prior_counts(read, interval, group_by, part, dialect, hourly=hourly),
            )
        for row in rows:
            total = measured.setdefault((int(row[0]), str(row[1])), [0, 0.0, 0.0, 0.0])
            for i in range(4):
                total[i] += row[2 + i]
        for key, (events, usd) in added.items():
            extra = extras.setdefault(key, [0.0, 0.0])
            extra[0] += events
            extra[1] += usd
        for key, (events, prior) in priors.items():
            counts = shown.setdefault(key, [0, 0])
            counts[0] += events
            counts[1] += prior
    return _buckets([(*key, *values) for key, values in measured.items()], extras, shown)


#: The complete feeds: a market-hour where one had events calibrates the snapshot feeds'.
_COMPLETE = [e for e in EXCHANGE_IDS if coverage_of(e) == "complete"]


def _calibration_inline(
    interval: Interval, group_by: GroupBy, query: Query, *, hourly: bool
) -> bool:
    """Whether the part's measured read gives its buckets' calibration too: whole hours of
    every venue and side of its markets (the hourly rollup, no exchange, side or coverage
    filter), grouped by market, so each market-hour's complete venues are in its rows."""
    return (
        group_by == "market"
        and not (query.exchanges or query.sides or query.coverages)
        and _may_hide(query)
        and _source(interval, query, hourly=hourly).table == "rollup_1h"
    )


def _calibration_carried(
    interval: Interval, group_by: GroupBy, query: Query, *, hourly: bool, cached: bool
) -> bool:
    """Whether :func:`_part` gives the part's calibration (but for the buckets it leaves
    pending): whole hours by market read it with the measure (:func:`_calibration_inline`);
    other parts read from the hourly rollup sum it from the stored factors' rows."""
    if _calibration_inline(interval, group_by, query, hourly=hourly):
        return True
    return (
        cached and _may_hide(query) and _source(interval, query, hourly=hourly).table == "rollup_1h"
    )


def calibration(snapshot_events: int, prior_events: int) -> str:
    """A bucket's ``est_calibration``: of its ``snapshot_events``, ``prior_events`` are in
    market-hours where no complete venue had events, so what they hid is the flat prior
    (:data:`~purpleflea.engine.coverage.PRIOR_EVENTS_PER_SECOND` per shown second), not a
    ratio fitted on a reference. ``none``: no snapshot event, nothing estimated;
    ``complete_venues``: every one calibrated; ``prior_only``: none; ``mixed``: some."""
    if snapshot_events <= 0:
        return CALIBRATION_NONE
    if prior_events <= 0:
        return CALIBRATED
    return PRIOR_ONLY if prior_events >= snapshot_events else MIXED


async def _prior_counts(
    read: Read,
    interval: Interval,
    group_by: GroupBy,
    query: Query,
    dialect: Dialect,
    *,
    hourly: bool,
) -> dict[tuple[int, str], tuple[int, int]]:
    """Per bucket of ``query``: its snapshot events, and how many of them are in a
    market-hour no complete venue had events in (each market-hour of the bucket probes the
    rollup's key once; whole hours by market are read with the measure instead, in
    :func:`_part`). Filters do not change it: the calibration of an hour reads every venue
    of its market, as :func:`~purpleflea.engine.coverage.minute_estimates` does."""
    if not _may_hide(query):
        return {}
    source = _source(interval, query, hourly=hourly)
    width = INTERVAL_MS[interval]
    found = _where(query, dialect, source)
    snapshot_sql, snapshot_params = _snapshot_in(dialect)
    count = "::bigint" if dialect == "postgres" else ""
    # A seek per market-hour on the hourly rollup's key (a few rows: its complete venues'
    # sides), or on the minutes' while a PostgreSQL store still fills its hours.
    probe_sql, probe_params = _in(dialect, "c.exchange", _COMPLETE)
    within = "c.hour = s.h" if hourly else f"c.minute >= s.h AND c.minute < s.h + {HOUR_MS}"
    calibrated = (
        f"EXISTS (SELECT 1 FROM {'rollup_1h' if hourly else 'rollup_1m'} c WHERE "
        f"c.market = s.mk AND {within} AND {probe_sql} AND c.count > 0)"
    )
    # Grouped by hour and market first (in the time index's order: no sort), the bucket and
    # group taken from them where they determine it (hourly and daily buckets; by market).
    hour = f"({source.time} / {HOUR_MS}) * {HOUR_MS}"
    keys = [f"{hour} AS h", "market AS mk"]
    if width < HOUR_MS:
        keys.append(f"({source.time} / {width}) * {width} AS bucket")
    if group_by != "market":
        keys.append(f"{group_by} AS grp")
    bucket = "bucket" if width < HOUR_MS else f"(h / {width}) * {width}"
    rows = await read(
        f"SELECT {bucket} AS b, {'mk' if group_by == 'market' else 'grp'} AS g, SUM(n){count}, "
        f"SUM(CASE WHEN {calibrated} THEN 0 ELSE n END){count} FROM ("
        f"SELECT {', '.join(keys)}, "
        # The snapshot test in the sum, not the WHERE: there SQLite walked the exchange
        # index over the whole history instead of the window's time index.
        f"SUM(CASE WHEN {snapshot_sql} THEN {source.count} ELSE 0 END) AS n "
        f"FROM {source.table}{found.sql} "
        f"GROUP BY {', '.join(key.split(' AS ')[1] for key in keys)}) s WHERE n > 0 "
        "GROUP BY b, g",
        [*probe_params, *snapshot_params, *found.params],
    )
    return {(int(b), str(g)): (int(n), int(p)) for b, g, n, p in rows}


def _parts(interval: Interval, query: Query, *, hourly: bool) -> list[Query]:
    """``query``'s window in parts read from one source each: when the whole hours inside an
    unaligned window would be read from the hourly rollup (hourly or daily buckets, no size
    filter), those hours, and the partial hours at either edge (from the minute rollups, or
    the events when an edge is not on a minute). A year from ``now - 365 d`` is then ~9k hourly
    rows per market and two hours of minutes, not ~500k minute rows. Else the window whole."""
    start, end = query.start_ms, query.end_ms
    first = None if start is None else -(-start // HOUR_MS) * HOUR_MS
    last = None if end is None else end // HOUR_MS * HOUR_MS
    if first is not None and last is not None and first >= last:
        return [query]  # no whole hour inside
    middle = msgspec.structs.replace(query, start_ms=first, end_ms=last)
    if middle == query or _source(interval, middle, hourly=hourly).table != "rollup_1h":
        return [query]
    parts = [middle]
    if start != first:
        parts.insert(0, msgspec.structs.replace(query, end_ms=first))
    if end != last:
        parts.append(msgspec.structs.replace(query, start_ms=last))
    return parts


def _sums(source: _Source, dialect: Dialect) -> str:
    """The measured columns: count, USD, longs' USD, shorts' USD."""
    count = f"SUM({source.count})::bigint" if dialect == "postgres" else f"SUM({source.count})"
    return (
        f"{count}, SUM(size_usd), SUM(CASE WHEN side = 'long' THEN size_usd ELSE 0 END), "
        "SUM(CASE WHEN side = 'short' THEN size_usd ELSE 0 END)"
    )


async def _measure(
    read: Read, interval: Interval, group_by: GroupBy, query: Query, dialect: Dialect, hourly: bool
) -> Sequence[tuple[Any, ...]]:
    """One part's measured rows ``(bucket, group, count, usd, longs, shorts)``, one grouped
    read and no estimate."""
    source = _source(interval, query, hourly=hourly)
    width = INTERVAL_MS[interval]
    found = _where(query, dialect, source)
    return await read(
        f"SELECT ({source.time} / {width}) * {width} AS bucket, {group_by} AS grp, "
        f"{_sums(source, dialect)} FROM {source.table}{found.sql} GROUP BY bucket, grp",
        found.params,
    )


async def _part(
    read: Read,
    save: Save | None,
    interval: Interval,
    group_by: GroupBy,
    query: Query,
    dialect: Dialect,
    hourly: bool,
    cached: bool,
    recent: OpenHours | None = None,
) -> tuple[
    Sequence[tuple[Any, ...]],
    dict[tuple[int, str], list[float]],
    dict[tuple[int, str], tuple[int, int]],
    Query | None,
]:
    """One part's measured rows ``(bucket, group, count, usd, longs, shorts, ...)``, what
    the estimate adds to their buckets, their snapshot and prior events where the read gave
    them (whole hours by market; else the stored factors' rows of the hourly rollup's
    buckets), and the query whose calibration :func:`_prior_counts` is to read (None: no
    bucket left)."""
    source = _source(interval, query, hourly=hourly)
    width = INTERVAL_MS[interval]
    bucket = f"({source.time} / {width}) * {width}"
    hour = f"({source.time} / {HOUR_MS}) * {HOUR_MS}"
    sums = _sums(source, dialect)
    found = _where(query, dialect, source)
    if not _may_hide(query):
        # No snapshot feed selected: nothing to estimate.
        return await _measure(read, interval, group_by, query, dialect, hourly), {}, {}, None
    snapshot_sql, snapshot_params = _snapshot_in(dialect)
    if source.table != "rollup_1h":
        # Minute and event reads: per cell, each snapshot row scaled by its hour's factor.
        cells = await read(
            f"SELECT {bucket} AS bucket, {group_by} AS grp, {hour} AS h, market, exchange, "
            f"side, {sums} FROM {source.table}{found.sql} "
            "GROUP BY bucket, grp, h, market, exchange, side",
            found.params,
        )
        measured: dict[tuple[int, str], list[float]] = {}
        for row in cells:
            total = measured.setdefault((int(row[0]), str(row[1])), [0, 0.0, 0.0, 0.0])
            for i in range(4):
                total[i] += row[6 + i]
        rows: Sequence[tuple[Any, ...]] = [(*key, *values) for key, values in measured.items()]
        snapshot = {e for e in EXCHANGE_IDS if coverage_of(e) == "snapshot"}
        wanted = [row for row in cells if row[4] in snapshot]
        known = await _stored(read, dialect, wanted) if cached else {}
        estimated = await _extras(read, save if cached else None, dialect, wanted, known, recent)
        return rows, estimated, {}, query
    # Hourly rollup: its sums and the stored factors' additions, two grouped reads, no join,
    # run side by side (the store's readers are separate connections).
    inline = _calibration_inline(interval, group_by, query, hourly=hourly)
    big = "::bigint" if dialect == "postgres" else ""
    if inline:
        # By market-hour first (the time index's order), then by bucket: the measure, and
        # each bucket's snapshot events and those of hours no complete venue had events in.
        complete_sql, complete_params = _in(dialect, "exchange", _COMPLETE)
        measured_read = read(
            f"SELECT (h / {width}) * {width} AS bucket, mk AS grp, SUM(c){big}, SUM(u), "
            f"SUM(lo), SUM(sh), SUM(r){big}, SUM(n){big}, "
            f"SUM(CASE WHEN k > 0 THEN 0 ELSE n END){big} FROM ("
            f"SELECT hour AS h, market AS mk, SUM(count){big} AS c, SUM(size_usd) AS u, "
            "SUM(CASE WHEN side = 'long' THEN size_usd ELSE 0 END) AS lo, "
            "SUM(CASE WHEN side = 'short' THEN size_usd ELSE 0 END) AS sh, "
            f"SUM(CASE WHEN {snapshot_sql} THEN 1 ELSE 0 END) AS r, "
            f"SUM(CASE WHEN {snapshot_sql} THEN count ELSE 0 END) AS n, "
            f"SUM(CASE WHEN {complete_sql} THEN count ELSE 0 END) AS k "
            f"FROM {source.table}{found.sql} GROUP BY h, mk) s GROUP BY bucket, grp",
            [*snapshot_params, *snapshot_params, *complete_params, *found.params],
        )
    else:
        measured_read = read(
            f"SELECT {bucket} AS bucket, {group_by} AS grp, {sums}, "
            f"SUM(CASE WHEN {snapshot_sql} THEN 1 ELSE 0 END) "
            f"FROM {source.table}{found.sql} GROUP BY bucket, grp",
            [*snapshot_params, *found.params],
        )
    if cached:
        # Unfiltered by market: the market-hour rows alone (about a tenth as many).
        whole = group_by == "market" and not (query.exchanges or query.sides or query.coverages)
        rows, stored = await asyncio.gather(
            measured_read,
            read(
                f"SELECT {bucket} AS bucket, {group_by} AS grp, SUM(extra_events), "
                f"SUM(extra_usd), SUM(covers), SUM(shown_events){big}, "
                f"SUM(prior_events){big}, SUM(CASE WHEN prior_events IS NULL THEN 1 ELSE 0 END) "
                f"FROM coverage_factor{found.sql or ' WHERE 1 = 1'} "
                f"AND exchange {'=' if whole else '<>'} '' GROUP BY bucket, grp",
                found.params,
            ),
        )
    else:
        rows, stored = await measured_read, []
    added = {(int(r[0]), str(r[1])): r[2:] for r in stored}
    extras: dict[tuple[int, str], list[float]] = {}
    priors: dict[tuple[int, str], tuple[int, int]] = {}
    uncovered: list[int] = []
    unlabelled: list[int] = []  # buckets whose calibration the stored rows do not give
    for row in rows:
        key = (int(row[0]), str(row[1]))
        events, usd, covered, shown, prior, unknown = added.get(key, (0.0, 0.0, 0, 0, 0, 0))
        if covered == row[6]:  # every snapshot row of the bucket has its stored factor
            extras[key] = [float(events), float(usd)]
            if unknown:  # rows an older node stored, without the calibration
                unlabelled.append(key[0])
            elif shown:
                priors[key] = (int(shown), int(prior))
        else:
            uncovered.append(key[0])
            unlabelled.append(key[0])
    if uncovered:
        # Buckets with hours not estimated yet (the open hour, new history): per cell.
        narrowed = _narrowed(query, min(uncovered), max(uncovered) + width)
        part = _where(narrowed, dialect, source)
        cells = await read(
            f"SELECT {bucket} AS bucket, {group_by} AS grp, {hour} AS h, market, exchange, "
            f"side, {sums} FROM {source.table}{part.sql or ' WHERE 1 = 1'} AND {snapshot_sql} "
            "GROUP BY bucket, grp, h, market, exchange, side",
            [*part.params, *snapshot_params],
        )
        missing = set(uncovered)
        cells = [row for row in cells if int(row[0]) in missing]
        extras.update(await _extras(read, save if cached else None, dialect, cells, {}, recent))
    if inline:
        priors = {(int(r[0]), str(r[1])): (int(r[7]), int(r[8])) for r in rows if r[7]}
        return rows, extras, priors, None
    pending = _narrowed(query, min(unlabelled), max(unlabelled) + width) if unlabelled else None
    return rows, extras, priors, pending


def _narrowed(query: Query, start_ms: int, end_ms: int) -> Query:
    """``query`` within [start_ms, end_ms) (bucket bounds: the source stays the same)."""
    return Query(
        markets=query.markets,
        exchanges=query.exchanges,
        sides=query.sides,
        coverages=query.coverages,
        min_usd=query.min_usd,
        start_ms=max(start_ms, query.start_ms if query.start_ms is not None else start_ms),
        end_ms=min(end_ms, query.end_ms if query.end_ms is not None else end_ms),
        before_seq=query.before_seq,
    )


def _where(query: Query, dialect: Dialect, source: _Source) -> Where:
    if source.events:
        return where(query, dialect)
    return where(query, dialect, with_size=False, time_column=source.time, events=False)


async def _stored(
    read: Read, dialect: Dialect, cells: Sequence[tuple[Any, ...]]
) -> dict[RowKey, Factor]:
    """The stored factors of the cells' hours and markets."""
    if not cells:
        return {}
    hours = [int(row[2]) for row in cells]
    markets = sorted({str(row[3]) for row in cells})
    market_sql, market_params = _in(dialect, "market", markets)
    mark = "?" if dialect == "sqlite" else "%s"
    rows = await read(
        f"SELECT hour, market, exchange, side, f_events, f_usd FROM coverage_factor "
        f"WHERE {market_sql} AND hour >= {mark} AND hour <= {mark} AND exchange <> ''",
        [*market_params, min(hours), max(hours)],
    )
    return {(int(h), m, e, sd): Factor(float(fe), float(fu)) for h, m, e, sd, fe, fu in rows}


async def _extras(
    read: Read,
    save: Save | None,
    dialect: Dialect,
    cells: Sequence[tuple[Any, ...]],
    known: dict[RowKey, Factor],
    recent: OpenHours | None = None,
) -> dict[tuple[int, str], list[float]]:
    """What the snapshot ``cells`` (bucket, group, hour, market, exchange, side, count, usd,
    ...) add to their buckets: by their stored factors where ``known``, else by an open
    hour's fit kept in ``recent``, else estimated (an open hour's fit then kept there)."""
    wanted: dict[MarketHour, set[RowKey]] = {}
    for row in cells:
        key = (int(row[2]), str(row[3]), str(row[4]), str(row[5]))
        if key not in known:
            wanted.setdefault((key[0], key[1]), set()).add(key)
    found = dict(known)
    if wanted and recent is not None:
        found.update(recent.take(wanted))
    missing = {hour for hour, rows in wanted.items() if not rows <= found.keys()}
    if missing:
        fitted = await _estimate(read, save, dialect, missing)
        found.update(fitted)
        if recent is not None:  # the hours not stored (closed ones are, by _estimate)
            closed_before = now_ms() - CLOSE_AFTER_MS
            recent.keep({h for h in missing if h[0] + HOUR_MS > closed_before}, fitted)
    extras: dict[tuple[int, str], list[float]] = {}
    for key_bucket, group, h, market, exchange, side, events, usd, *_ in cells:
        factor = found.get((int(h), str(market), str(exchange), str(side)))
        if factor is None:
            continue
        extra = extras.setdefault((int(key_bucket), str(group)), [0.0, 0.0])
        extra[0] += float(events) * (factor.events - 1.0)
        extra[1] += float(usd) * (factor.usd - 1.0)
    return extras


def _in(dialect: Dialect, column: str, values: Sequence[str]) -> tuple[str, list[Any]]:
    if dialect == "postgres":
        return f"{column} = ANY(%s)", [list(values)]
    return f"{column} IN ({', '.join('?' for _ in values)})", list(values)


async def _estimate(
    read: Read, save: Save | None, dialect: Dialect, hours: set[tuple[int, str]]
) -> dict[RowKey, Factor]:
    """The factors of ``hours`` (hour, market), per snapshot row, from the minute rollups of
    those hours and of the share estimate's trailing window before them; a closed hour's
    are stored."""
    mark = "?" if dialect == "sqlite" else "%s"
    markets = sorted({market for _, market in hours})
    market_sql, market_params = _in(dialect, "market", markets)
    seconds = "SUM(seconds)::bigint" if dialect == "postgres" else "SUM(seconds)"
    count = "SUM(count)::bigint" if dialect == "postgres" else "SUM(count)"
    rows = await read(
        f"SELECT minute, market, exchange, side, {count}, {seconds}, SUM(size_usd) "
        f"FROM rollup_1m WHERE {market_sql} AND minute >= {mark} AND minute < {mark} "
        "GROUP BY minute, market, exchange, side",
        [
            *market_params,
            min(h for h, _ in hours) - SHARE_WINDOW_MS + HOUR_MS,
            max(h for h, _ in hours) + HOUR_MS,
        ],
    )
    cells: dict[tuple[int, str, str], list[float]] = {}
    per_side: dict[RowKey, list[float]] = {}
    for minute, market, exchange, side, events, busy, usd in rows:
        cell = cells.setdefault((int(minute), market, exchange), [0, 0, 0.0])
        cell[0] += events
        cell[1] += busy
        cell[2] += usd
        h = int(minute) // HOUR_MS * HOUR_MS
        if (h, market) not in hours:
            continue  # read for the share estimate's window only
        total = per_side.setdefault((h, market, exchange, side), [0, 0.0])
        total[0] += events
        total[1] += usd
    minute_rows = [(m, mk, e, int(c), int(b), float(u)) for (m, mk, e), (c, b, u) in cells.items()]
    # A year of minutes takes seconds: off the event loop, which serves the stream meanwhile.
    per_hour = (
        await asyncio.to_thread(on_thread(factors, minute_rows, _coverage))
        if len(minute_rows) > _OFF_LOOP_ROWS
        else factors(minute_rows, _coverage)
    )
    found = {key: per_hour[key[:3]] for key in per_side if key[:3] in per_hour}
    if save is not None:
        closed_before = now_ms() - CLOSE_AFTER_MS
        totals: dict[tuple[int, str], int] = {}
        calibrated: set[tuple[int, str]] = set()  # market-hours a complete venue had events in
        for (h, market, exchange, _), (events, _) in per_side.items():
            totals[(h, market)] = totals.get((h, market), 0) + int(events)
            if events > 0 and exchange in _COMPLETE:  # as _prior_counts' probe
                calibrated.add((h, market))
        keep: list[tuple[Any, ...]] = []
        whole: dict[tuple[int, str], list[float]] = {}
        for (h, market, exchange, side), f in found.items():
            if h + HOUR_MS > closed_before:
                continue
            events, usd = per_side[(h, market, exchange, side)]
            extra = (events * (f.events - 1.0), usd * (f.usd - 1.0))
            shown = int(events)
            prior = 0 if (h, market) in calibrated else shown
            keep.append((market, h, exchange, side, f.events, f.usd, *extra, 1, shown, prior))
            total = whole.setdefault((h, market), [0.0, 0.0, 0, 0, 0])
            for i, value in enumerate((*extra, 1, shown, prior)):
                total[i] += value
        for (h, market), sums in whole.items():
            counts = (int(sums[2]), int(sums[3]), int(sums[4]))  # covers, shown, prior
            keep.append((market, h, "", "", 1.0, 1.0, sums[0], sums[1], *counts))
        keep = [(*row, row[0], row[1], row[1] + HOUR_MS, totals[(row[1], row[0])]) for row in keep]
        if keep:
            await save(save_sql(dialect), keep)
    return found


def _may_hide(query: Query) -> bool:
    """Whether the query may select events of a ``snapshot`` feed (which the estimate adds to)."""
    if query.coverages and "snapshot" not in query.coverages:
        return False
    return not query.exchanges or any(_coverage(e) == "snapshot" for e in query.exchanges)


def _buckets(
    rows: Sequence[tuple[Any, ...]],
    extras: dict[tuple[int, str], list[float]],
    shown: dict[tuple[int, str], list[int]],
) -> list[Bucket]:
    """Buckets from measured rows ``(bucket, group, count, usd, longs, shorts, ...)`` plus the
    ``extras`` (events, USD) estimated for their snapshot feeds, labelled by ``shown`` (their
    snapshot events, and those the prior estimated: :func:`calibration`)."""
    out: list[Bucket] = []
    for row in sorted(rows, key=lambda r: (int(r[0]), str(r[1]))):
        start, group, count, total, longs, shorts = row[:6]
        extra = extras.get((int(start), str(group)), (0.0, 0.0))
        snapshot, prior = shown.get((int(start), str(group)), (0, 0))
        out.append(
            Bucket(
                start_ms=int(start),
                group=str(group),
                count=int(count),
                size_usd=float(total),
                long_usd=float(longs),
                short_usd=float(shorts),
                est_count=int(count) + max(0, round(extra[0])),
                est_size_usd=float(total) + max(0.0, extra[1]),
                est_calibration=calibration(snapshot, prior),
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
