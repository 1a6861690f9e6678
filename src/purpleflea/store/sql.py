"""The one SQL query builder of both history stores: a :class:`~purpleflea.store.base.Query`
as a ``WHERE`` clause and its parameters, in SQLite's or PostgreSQL's dialect.

The filters mean the same in both; what differs is spelling (``?`` or ``%s``, ``IN (...)`` or
``= ANY(...)``) and the index hints each planner needs, which are kept here beside the clause
they shape so a new filter is added once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from purpleflea.store.base import Query
from purpleflea.venues.registry import exchanges_covered

Dialect = Literal["sqlite", "postgres"]

#: SQLite indexes events at least this big on their own (``liquidations_big``).
BIG_USD = 100_000
#: SQLite pages history by time along the ts index unless the markets asked hold fewer than
#: this many events (a walk back reads about limit x stored / matching rows); those are found
#: by the market index and sorted (at most this many rows).
TS_WALK_MATCHES = 10_000
#: A page of at most this many markets merges one index walk per market (:func:`history_page`).
MAX_MERGED_MARKETS = 16


@dataclass(frozen=True, slots=True)
class Where:
    """A ``WHERE`` clause (empty when nothing filters) and its parameters, in order.
    ``custom_plan``: a statement whose best plan depends on the values (PostgreSQL: plan it
    for each, never a prepared statement's generic plan)."""

    sql: str
    params: list[Any]
    custom_plan: bool = False


def where(
    query: Query,
    dialect: Dialect,
    *,
    with_size: bool = True,
    time_column: str = "ts",
    events: bool = True,
    walk_ts: bool = False,
) -> Where:
    """``query``'s filters as a clause over the events table (``events``) or a rollup, whose
    time column is ``time_column``. Rollups hold no sizes (``with_size=False``) nor coverage:
    there a coverage filter is the exchanges of that coverage (coverage is the exchange's).

    ``walk_ts`` (SQLite, ``order="ts"``): keep SQLite from the list filters' indexes, so it
    walks the ts index back and filters each row, reading about limit / (the filters' share
    of events) rows; a market's index instead made it sort every event of the market (BTC,
    30 % of 1M events: 189 ms, against 0.1 ms walking ts). For a market with few events the
    walk would read most of the table (0.28 s per million events when it has none), so the
    store walks ts only when the markets asked hold many (:data:`TS_WALK_MATCHES`).
    """
    mark = "?" if dialect == "sqlite" else "%s"
    clauses: list[str] = []
    params: list[Any] = []
    exchanges = query.exchanges
    coverages = query.coverages
    if coverages and not events:
        covered = exchanges_covered(coverages)
        exchanges = tuple(e for e in exchanges if e in covered) if exchanges else covered
        coverages = ()
        if not exchanges:
            return Where(" WHERE 1 = 0", [])
    for column, values in _hinted(query, dialect, exchanges, coverages, walk_ts):
        if dialect == "postgres" and len(values) == 1:
            # PostgreSQL walks the (column, seq) index backwards for `=`, not for ANY().
            clauses.append(f"{column} = %s")
            params.append(values[0])
        elif dialect == "postgres":
            clauses.append(f"{column} = ANY(%s)")
            params.append(list(values))
        else:
            clauses.append(f"{column} IN ({', '.join('?' for _ in values)})")
            params.extend(values)
    if with_size and query.min_usd > 0:
        clauses.append(f"size_usd >= {mark}")
        params.append(query.min_usd)
        if dialect == "sqlite" and query.min_usd >= BIG_USD:
            # The literal lets SQLite prove the partial index of big events applies: a
            # selective size filter then walks those few rows instead of the whole table.
            clauses.append(f"size_usd >= {BIG_USD}")
    for clause, value in (
        (f"{time_column} >= {mark}", query.start_ms),
        (f"{time_column} < {mark}", query.end_ms),
        (f"seq < {mark}", query.before_seq),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    if query.before_key is not None:
        # A row value: both stores walk their ts index back from the pair (SQLite's ts index
        # holds the seq, its rowid; PostgreSQL sorts the events of one ts among themselves).
        clauses.append(f"(ts, seq) < ({mark}, {mark})")
        params.extend(query.before_key)
    return Where((" WHERE " + " AND ".join(clauses)) if clauses else "", params)


def order_by(query: Query) -> str:
    """A history page's ``ORDER BY``, newest first in ``query.order``."""
    return " ORDER BY ts DESC, seq DESC" if query.order == "ts" else " ORDER BY seq DESC"


def history_page(select: str, query: Query, dialect: Dialect, *, walk_ts: bool = False) -> Where:
    """The statement of one history page (``limit + 1`` rows: the last says more follow):
    ``select`` (the store's ``SELECT <columns> FROM liquidations``) with ``query``'s filter
    (:func:`where`, ``walk_ts`` as there), order and limit.

    Several markets in seq order are one ``UNION ALL`` arm per market, each the one-market
    query, merged by seq: each arm walks its market's index back in seq order and the merge
    stops at the limit (SQLite's ``MERGE (UNION ALL)``; on PostgreSQL see
    :func:`_postgres_arm`). One ``market IN (...)`` instead made SQLite read every event of
    the markets and sort them (BTC + ETH, half of 1M events: 158.7 ms a page,
    bench/history_by_time.py), and PostgreSQL walk the whole table back for rare ones. Past
    :data:`MAX_MERGED_MARKETS` the one statement stays: a list that long is most of the
    markets, and SQLite refuses more than 500 arms.
    """
    mark = "?" if dialect == "sqlite" else "%s"
    page = query.limit + 1
    if dialect == "postgres" and query.order == "seq":
        driving = _postgres_driving(query)
        if driving is not None:
            column, values = driving
            if query.start_ms is not None or query.end_ms is not None:
                return _postgres_window_page(select, query, column, values, page)
            arms = [_postgres_arm(select, query, column, value, page) for value in values]
            if len(arms) == 1:
                return arms[0]
            return Where(
                " UNION ALL ".join(f"({arm.sql})" for arm in arms) + f"{order_by(query)} LIMIT %s",
                [*(param for arm in arms for param in arm.params), page],
            )
    markets = sorted(set(query.markets))
    if dialect == "sqlite" and query.order == "seq" and 1 < len(markets) <= MAX_MERGED_MARKETS:
        arms_sql: list[str] = []
        params: list[Any] = []
        for market in markets:
            # The compound's ORDER BY is each arm's: SQLite walks each in seq order.
            arm = where(msgspec.structs.replace(query, markets=(market,)), dialect)
            arms_sql.append(f"{select}{arm.sql}")
            params += arm.params
        sql = " UNION ALL ".join(arms_sql)
    else:
        found = where(query, dialect, walk_ts=walk_ts)
        sql, params = f"{select}{found.sql}", found.params
    return Where(f"{sql}{order_by(query)} LIMIT {mark}", [*params, page])


def _postgres_driving(query: Query) -> tuple[str, list[str]] | None:
    """The list filter whose index a PostgreSQL page in seq order walks, one arm per value
    (:func:`_postgres_arm`): the markets, else the exchanges, else the sides, at most
    :data:`MAX_MERGED_MARKETS` values; None when no list filters or one is longer (then the
    planner chooses). Without markets, a big ``min_usd`` drives (the planner walks the index of
    big events in seq order, which an exchange's or side's ordered walk would forgo)."""
    for column, values in (
        ("market", query.markets),
        ("exchange", query.exchanges),
        ("side", query.sides),
    ):
        if column != "market" and query.min_usd >= BIG_USD:
            return None
        if values:
            distinct = sorted(set(values))
            return (column, distinct) if len(distinct) <= MAX_MERGED_MARKETS else None
    return None


def _postgres_arm(select: str, query: Query, column: str, value: str, page: int) -> Where:
    """One value's page on PostgreSQL (``page`` rows), in an order only its (column, seq)
    index gives: ``column`` bounded to ``value`` on both sides instead of ``= value``, and
    ``ORDER BY column DESC, seq DESC``.

    With ``column = value`` the planner knows the column is constant, so the order is just
    ``seq DESC``, which the primary key also gives: it then chose between walking the
    value's index and walking the primary key back with a filter, costing the walk as if
    the value's events were spread evenly over seq. Where the newest events hold none of
    them (a store whose newest 764k events are all BTC longs, bench/history.py), that walk
    read all of those first: an ETH page 157 ms at 10M events, BTC + ETH 103 ms, and a day's
    window of BTC walked back to the day (1.1 s at 3.8M). Bounded by a range, the column is
    a sort key the primary key does not give: the planner walks the (column, seq) index (a
    cursor's seq bound is in the index condition) or, when a time window is narrower, reads
    the window by ts and sorts it; never the primary key. A big ``min_usd`` adds its literal
    bound so the partial index of big events by market (``liquidations_big_market``) may
    be proven to apply.
    """
    plural = {"market": "markets", "exchange": "exchanges", "side": "sides"}[column]
    rest = where(msgspec.structs.replace(query, **{plural: ()}), "postgres")
    clauses = [f"{column} >= %s AND {column} <= %s"]
    params: list[Any] = [value, value]
    if column == "market" and query.min_usd >= BIG_USD:
        clauses.append(f"size_usd >= {BIG_USD}")
    if rest.sql:
        clauses.append(rest.sql.removeprefix(" WHERE "))
    return Where(
        f"{select} WHERE {' AND '.join(clauses)} ORDER BY {column} DESC, seq DESC LIMIT %s",
        [*params, *rest.params, page],
    )


#: A PostgreSQL page with a time window first walks at most this many pages' worth of each
#: arm's rows in seq order (1,010 rows for the default 100-event page), then reads the window
#: by time instead (:func:`_postgres_window_page`).
WALK_PAGES = 10


def _postgres_window_page(
    select: str, query: Query, column: str, values: list[str], page: int
) -> Where:
    """A PostgreSQL page in seq order with a time window, read in whichever of three ways
    applies, each gated so that only its own reads run:

    - ``whole``: a window of fewer events (of any market) than the walk's budget (``span``,
      counted along the ts index up to the budget) is read whole, no dearer than the walk
      could be, and its newest rows by seq taken;
    - for each value of ``column``, its arm (:func:`_postgres_arm`) without the window, cut
      at :data:`WALK_PAGES` pages of rows (``walk``), and the window's rows among them;
    - ``tail``: when those are fewer than the page and the walk was cut, the window's rows
      below the walk, read by time (once for all values: each below its own walk).

    The planner cannot know where in seq order a window lies: it costs the walk back to the
    window as if the window's rows were spread evenly over the arm's (seq is arrival order,
    and nothing ties it to ts: late and imported events come in any order), so a window far
    behind the newest events was read by walking every newer event of the market (BTC, 30
    days from day 100 at 3.76M events: 1.16M rows, 1.1 s). The walk here stops at its
    budget, where a window near the newest events has its page at once; ``whole`` and
    ``tail`` are planned without an order (fenced by ``OFFSET 0``), so the planner picks
    the cheapest way to read the whole window, which it estimates well (the ts index, or the
    column's own), and the page is its newest rows. The gates (``span``, the walk's count)
    are evaluated once, before the part each guards reads anything.

    Planned for its values (``custom_plan``): a generic plan, which psycopg's prepared
    statements get after a few runs, knows neither the column's value nor the window's
    width, and read BTC's 30 days as a BitmapAnd of the whole market's index and the
    window's (1.09 s at 3.76M events, 0.50 s planned for the values, at load 10).
    """
    budget = span = WALK_PAGES * page
    walks = msgspec.structs.replace(query, start_ms=None, end_ms=None)
    window = where(Query(start_ms=query.start_ms, end_ms=query.end_ms), "postgres")
    inside = window.sql.removeprefix(" WHERE ")
    # Ordered by ts so the count walks the ts index from the window's edge.
    ctes = [
        f"span AS MATERIALIZED (SELECT count(*) AS n FROM (SELECT 1 FROM liquidations "
        f"WHERE {inside} ORDER BY ts LIMIT %s) s)"
    ]
    everything = where(query, "postgres")
    parts = [f"(SELECT * FROM ({select}{everything.sql} OFFSET 0) whole WHERE {_SMALL})"]
    cte_params: list[Any] = [*window.params, span]
    params: list[Any] = [*everything.params, span]
    gates: list[str] = []
    gate_params: list[Any] = []
    below: list[str] = []
    below_params: list[Any] = []
    for i, value in enumerate(values):
        walk = _postgres_arm(select, walks, column, value, budget)
        ctes.append(f"walk{i} AS MATERIALIZED ({walk.sql})")
        cte_params += walk.params
        # The walk's window rows, in the walk's order (no sort; it stops at the page).
        parts.append(
            f"(SELECT * FROM ({walk.sql}) w WHERE {inside} AND NOT {_SMALL} "
            f"ORDER BY {column} DESC, seq DESC LIMIT %s)"
        )
        params += [*walk.params, *window.params, span, page]
        # This walk came short: fewer than a page in the window, and cut at the budget.
        gates.append(
            f"((SELECT count(*) FROM (SELECT 1 FROM walk{i} WHERE {inside} LIMIT %s) found) "
            f"< %s AND (SELECT count(*) FROM walk{i}) = %s)"
        )
        gate_params += [*window.params, page, page, budget]
        below.append(f"WHEN %s THEN (SELECT min(seq) FROM walk{i})")
        below_params.append(value)
    # The window's rows below each value's walk, read once for all values, when one came
    # short (below a walk that did not, its rows only add lower ones to the merge).
    parts.append(
        f"(SELECT * FROM ({select}{everything.sql} AND seq < CASE {column} {' '.join(below)} "
        f"END OFFSET 0) tail WHERE NOT {_SMALL} AND ({' OR '.join(gates)}))"
    )
    params += [*everything.params, *below_params, span, *gate_params]
    return Where(
        f"WITH {', '.join(ctes)} {' UNION ALL '.join(parts)}{order_by(query)} LIMIT %s",
        [*cte_params, *params, page],
        custom_plan=True,
    )


#: The window holds fewer events than ``span`` counts up to (a parameter).
_SMALL = "(SELECT n FROM span) < %s"


def _hinted(
    query: Query,
    dialect: Dialect,
    exchanges: tuple[str, ...],
    coverages: tuple[str, ...],
    walk_ts: bool,
) -> list[tuple[str, tuple[str, ...]]]:
    """The list filters that apply, as (column, values), with SQLite's index hints."""
    market, exchange, side = "market", "exchange", "side"
    if walk_ts:
        # The ts index drives (see where()): no list filter's index may be picked instead.
        market, exchange, side = "+market", "+exchange", "+side"
    elif dialect == "sqlite":
        # With a bounded time window the ts index finds the rows; an exchange matches a
        # twelfth of history, so walking its index back to the window is slower (the unary +
        # keeps SQLite from picking it: 3 s vs 10 ms for a day of one exchange at 10M events).
        # Likewise a side (half of history) or an exchange (a twelfth) is only worth its index
        # when nothing more selective narrows the query.
        windowed = query.start_ms is not None and query.end_ms is not None
        if query.markets or windowed:
            exchange = "+exchange"
        # market + side has an index of its own (liquidations_market_side_seq); but with a
        # big min_usd the index of big events (market, seq, size_usd, side) checks both in
        # the index, where market + side walked every event of the side and read each row's
        # size: 5-11 ms against 0.3 ms of CPU for a $250k page of one side at 10M events.
        if windowed or exchanges or (query.markets and query.min_usd >= BIG_USD):
            side = "+side"
    found = [
        (market, query.markets),
        (exchange, exchanges),
        (side, query.sides),
        # No index: coverage narrows less than an exchange does.
        ("coverage", coverages),
    ]
    return [(column, values) for column, values in found if values]


#: A filtered replay walks at most this many index ranges at once (one per value of the
#: filter's driving list); a longer list walks the events in seq order instead.
MAX_REPLAY_RANGES = 16


def replay_ranges(query: Query, dialect: Dialect) -> list[Where]:
    """The index ranges a filtered replay page walks for ``query``'s candidate events: each a
    condition that one index serves in seq order (``(market, seq)``, ``(exchange, seq)``, ...),
    without the seq bound. One empty condition: the events' own seq order (nothing narrows
    by an index). A candidate still has to pass the whole filter (:func:`where`).

    The narrowest filter drives: markets (with one side, the (market, side, seq) index; with a
    big ``min_usd``, SQLite's narrower index of both), then a big ``min_usd`` (the partial
    index of big events, in seq order), then exchanges, then one side.
    """
    mark = "?" if dialect == "sqlite" else "%s"
    big = query.min_usd >= BIG_USD
    one_side = query.sides[0] if len(set(query.sides)) == 1 else None
    ranges: list[Where] = []
    if query.markets:
        for market in sorted(set(query.markets)):
            if big and dialect == "sqlite":
                # liquidations_big_market (market, seq, size_usd, side): the literal proves
                # the partial index applies, the size is checked in the index itself.
                ranges.append(
                    Where(
                        f"market = ? AND size_usd >= {BIG_USD} AND size_usd >= ?",
                        [market, query.min_usd],
                    )
                )
            elif one_side is not None:
                # (market, side, seq): both stores have it (PostgreSQL's may still be building
                # beside the appends, store/index_postgres.py: then it reads more, same rows).
                ranges.append(Where(f"market = {mark} AND side = {mark}", [market, one_side]))
            else:
                ranges.append(Where(f"market = {mark}", [market]))
    elif big:
        # The partial index of big events (seq order), which the literal lets the planner use.
        ranges.append(Where(f"size_usd >= {BIG_USD} AND size_usd >= {mark}", [query.min_usd]))
    elif query.exchanges:
        ranges = [Where(f"exchange = {mark}", [e]) for e in sorted(set(query.exchanges))]
    elif one_side is not None:
        ranges.append(Where(f"side = {mark}", [one_side]))
    if not ranges or len(ranges) > MAX_REPLAY_RANGES:
        return [Where("", [])]
    return ranges
