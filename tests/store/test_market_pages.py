"""History pages of several markets in the default (seq) order, against SQLite and
PostgreSQL: the same pages as the one ``market IN (...)`` query they replaced, and read along
the markets' indexes, never by sorting every event of the markets (bench/history_by_time.py:
BTC + ETH, half of 1M events, 158.7 ms a page that way)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from purpleflea.model import Liquidation
from purpleflea.store import Query, Store, postgres
from purpleflea.store.base import row_to_event
from purpleflea.store.factory import open_store
from purpleflea.store.postgres import PostgresStore
from purpleflea.store.sql import (
    BIG_USD,
    MAX_MERGED_MARKETS,
    WALK_PAGES,
    history_page,
    order_by,
    where,
)
from purpleflea.store.sqlite import SQLiteStore
from tests.events import T0
from tests.store.test_replay import EXCHANGES, MARKETS, _events
from tests.store.test_store import _empty_postgres


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    url = f"sqlite://{tmp_path / 'h.sqlite'}" if request.param == "sqlite" else None
    backend = await open_store(url or await _empty_postgres())
    yield backend
    await backend.close()


def _markets(rng: random.Random) -> tuple[str, ...]:
    """Two markets or more, sometimes one repeated or one with no event."""
    chosen = rng.sample(MARKETS, rng.randint(2, len(MARKETS)))
    if rng.random() < 0.2:
        chosen.append(chosen[0])
    if rng.random() < 0.2:
        chosen.append("NONE-PERP")
    return tuple(chosen)


def _query(rng: random.Random, last_seq: int) -> Query:
    start = rng.choice((None, None, T0 + rng.randrange(600)))
    return Query(
        markets=_markets(rng),
        exchanges=tuple(e for e in EXCHANGES if rng.random() < 0.3),
        sides=rng.choice(((), (), ("long",), ("short",), ("long", "short"))),
        min_usd=rng.choice((0.0, 0.0, 1_000.0, float(BIG_USD), 250_000.0)),
        start_ms=start,
        end_ms=rng.choice((None, None, (start or T0) + rng.randrange(1, 600))),
        before_seq=rng.choice((None, None, rng.randrange(1, last_seq + 2))),
        limit=rng.choice((1, 2, 5, 20, 100, 1000)),
    )


async def _old_page(store: Store, query: Query) -> list[Liquidation]:
    """The page as the one ``market IN (...)`` statement reads it (before the merge)."""
    if isinstance(store, SQLiteStore):
        dialect, select, mark = "sqlite", store._select, "?"
    else:
        dialect, select, mark = "postgres", postgres._SELECT, "%s"
    found = where(query, dialect)  # type: ignore[arg-type]
    rows = await store._read(  # type: ignore[attr-defined]
        f"{select}{found.sql}{order_by(query)} LIMIT {mark}", [*found.params, query.limit]
    )
    return [row_to_event(row) for row in rows]


def _wanted(query: Query, events: list[Liquidation]) -> list[Liquidation]:
    """The whole answer, from the events themselves: newest seq first."""
    return [
        e
        for e in reversed(events)
        if e.market in query.markets
        and (not query.exchanges or e.exchange in query.exchanges)
        and (not query.sides or e.side in query.sides)
        and e.size_usd >= query.min_usd
        and (query.start_ms is None or e.ts >= query.start_ms)
        and (query.end_ms is None or e.ts < query.end_ms)
        and (query.before_seq is None or e.seq < query.before_seq)
    ]


@pytest.mark.parametrize("seed", [1, 2])
async def test_pages_of_several_markets_are_the_old_querys_pages(store: Store, seed: int) -> None:
    rng = random.Random(seed)
    events = _events(rng, 800)
    await store.append(events)
    for _ in range(60):
        query = _query(rng, events[-1].seq)
        page = await store.query(query)
        assert page.events == await _old_page(store, query), query
        # Paged to the end, the pages are every matching event once, newest first.
        got = list(page.events)
        while page.next_cursor is not None:
            assert isinstance(page.next_cursor, int)
            page = await store.query(msgspec.structs.replace(query, before_seq=page.next_cursor))
            got.extend(page.events)
        assert got == _wanted(query, events), query


SHARES = (50, 20, 30)


def _skewed(count: int) -> list[Liquidation]:
    """Half the events on BTC-PERP, a fifth on ETH-PERP, the rest over 60 coins."""
    rng = random.Random(7)
    coins = [f"C{i}-PERP" for i in range(60)]
    return [
        Liquidation(
            id=f"k:{seq}",
            seq=seq,
            exchange=rng.choice(EXCHANGES),
            symbol="X",
            market=rng.choices(("BTC-PERP", "ETH-PERP", rng.choice(coins)), SHARES)[0],
            side=rng.choice(("long", "short")),
            price=1.0,
            quantity=1.0,
            size_usd=rng.uniform(10, 300_000),
            ts=T0 + seq * 30,
            received_at=T0 + seq * 30,
            cascade_score=0,
            coverage="complete",
        )
        for seq in range(1, count + 1)
    ]


PLANNED = [
    Query(markets=("BTC-PERP", "ETH-PERP")),
    Query(markets=("BTC-PERP", "ETH-PERP"), before_seq=10_000),
    Query(markets=("BTC-PERP", "C3-PERP", "C9-PERP")),
    Query(markets=("BTC-PERP", "ETH-PERP"), sides=("short",)),
    Query(markets=("BTC-PERP", "ETH-PERP"), min_usd=250_000),
    Query(markets=("BTC-PERP", "ETH-PERP"), exchanges=("bybit",)),
    Query(markets=tuple(f"C{i}-PERP" for i in range(MAX_MERGED_MARKETS))),
]


@pytest.mark.parametrize("query", PLANNED)
async def test_a_sqlite_page_of_several_markets_merges_index_walks(
    query: Query, tmp_path: Path
) -> None:
    store = SQLiteStore(tmp_path / "plan.sqlite")
    try:
        await store.append(_skewed(20_000))
        store._writer.execute("ANALYZE")
        statements: list[tuple[str, Sequence[Any]]] = []
        read = store._read

        async def recorded(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
            statements.append((sql, params))
            return await read(sql, params)

        store._read = recorded  # type: ignore[method-assign]
        await store.query(query)
        (sql, params) = statements[-1]
        plan = [row[3] for row in store._writer.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
        assert not any("TEMP B-TREE" in step for step in plan), plan
        reads = [step for step in plan if "liquidations" in step]
        assert len(reads) == len(set(query.markets)), plan  # one walk a market
        assert all(step.startswith("SEARCH liquidations USING") for step in reads), plan
    finally:
        await store.close()


@pytest.mark.parametrize("query", PLANNED)
async def test_a_postgres_page_of_several_markets_merges_index_walks(query: Query) -> None:
    store = await PostgresStore.connect(await _empty_postgres())
    try:
        await store.append(_skewed(20_000))
        connection = await psycopg.AsyncConnection.connect(store.url, autocommit=True)
        async with connection:
            await connection.execute("ANALYZE liquidations")
        plan = await store.explain(query)
        # One arm per market, each stopping at the page's limit, and the page's limit on
        # their merge; no arm walks the primary key (or the table) and filters.
        assert plan.splitlines()[0].startswith("Limit"), plan
        assert plan.count("Limit  (") == 1 + len(set(query.markets)), plan
        assert "liquidations_pkey" not in plan, plan
        assert "Seq Scan" not in plan, plan
    finally:
        await store.close()


def _late_events(rng: random.Random, count: int) -> list[Liquidation]:
    """:func:`_events` with times out of seq order (late events), so a page ordered or cut by
    time instead of seq differs from the right one."""
    return [
        msgspec.structs.replace(e, ts=T0 + rng.randrange(count), received_at=T0 + count)
        for e in _events(rng, count)
    ]


def _any_query(rng: random.Random, last_seq: int, count: int) -> Query:
    """A page in seq order with none, one or several markets (then exchanges or sides drive
    PostgreSQL's page), any other filter, a window, a cursor."""
    markets = rng.choice(((), (rng.choice(MARKETS),), ("NONE-PERP",), _markets(rng)))
    start = rng.choice((None, None, T0 + rng.randrange(count)))
    return Query(
        markets=markets,
        exchanges=rng.choice(((), (), tuple(e for e in EXCHANGES if rng.random() < 0.5))),
        sides=rng.choice(((), (), ("long",), ("short",), ("long", "short"))),
        min_usd=rng.choice((0.0, 0.0, 1_000.0, float(BIG_USD), 250_000.0)),
        start_ms=start,
        end_ms=rng.choice((None, None, (start or T0) + rng.randrange(1, count))),
        before_seq=rng.choice((None, None, rng.randrange(1, last_seq + 2))),
        limit=rng.choice((1, 2, 5, 20, 100, 1000)),
    )


def _matching(query: Query, events: list[Liquidation]) -> list[Liquidation]:
    """Every event ``query`` matches (any markets when it names none), newest seq first."""
    return _wanted(msgspec.structs.replace(query, markets=query.markets or MARKETS), events)


@pytest.mark.parametrize("seed", [3, 4])
async def test_pages_of_one_market_or_none_are_the_old_querys_pages(
    store: Store, seed: int
) -> None:
    # PostgreSQL reads a market's (an exchange's, a side's) page in an order only that
    # column's index gives (store/sql.py _postgres_arm): same pages, same cursors.
    rng = random.Random(seed)
    events = _late_events(rng, 900)
    await store.append(events)
    for _ in range(60):
        query = _any_query(rng, events[-1].seq, len(events))
        page = await store.query(query)
        assert page.events == await _old_page(store, query), query
        got = list(page.events)
        while page.next_cursor is not None:
            assert isinstance(page.next_cursor, int)
            page = await store.query(msgspec.structs.replace(query, before_seq=page.next_cursor))
            got.extend(page.events)
        assert got == _matching(query, events), query


TAIL = 10_000
#: Pages whose old plan walked the primary key back through the newest events (all BTC-PERP
#: longs on bybit), filtering each: a common market (alone, with another, one side, a window
#: before the newest events), an exchange, a side the newest events are not.
MISPLANNED = [
    Query(markets=("ETH-PERP",)),
    Query(markets=("ETH-PERP", "C3-PERP")),
    Query(markets=("ETH-PERP",), sides=("short",)),
    Query(markets=("ETH-PERP",), start_ms=T0 + 30 * 14_000, end_ms=T0 + 30 * 20_000),
    Query(markets=("ETH-PERP", "C3-PERP"), start_ms=T0 + 30 * 14_000, end_ms=T0 + 30 * 20_000),
    Query(exchanges=("hyperliquid",)),
    Query(sides=("short",)),
]


def _rows_read(plan: dict[str, Any]) -> int:
    """Table rows the plan's scans produced or filtered out, over all loops (a bitmap's index
    entries are not counted: the rows they point at are, in its heap scan)."""
    loops = int(plan.get("Actual Loops", 1))
    read = 0
    if "Relation Name" in plan:
        read = (int(plan["Actual Rows"]) + int(plan.get("Rows Removed by Filter", 0))) * loops
    return read + sum(_rows_read(child) for child in plan.get("Plans", []))


async def _tailed_store_and_plan(query: Query) -> tuple[PostgresStore, dict[str, Any]]:
    """A PostgreSQL store of :func:`_skewed` events with the TAIL (BTC-PERP longs on bybit)
    after them, analyzed, and the executed plan of ``query``'s history page on it."""
    store = await PostgresStore.connect(await _empty_postgres())
    try:
        return store, await _plan_on(store, query)
    except BaseException:
        await store.close()
        raise


async def _plan_on(store: PostgresStore, query: Query) -> dict[str, Any]:
    tail = [
        msgspec.structs.replace(
            e, market="BTC-PERP", side="long", exchange="bybit", coverage="complete"
        )
        for e in _skewed(20_000 + TAIL)[20_000:]
    ]
    await store.append(_skewed(20_000) + tail)
    connection = await psycopg.AsyncConnection.connect(store.url, autocommit=True)
    async with connection:
        await connection.execute("ANALYZE liquidations")
        page = history_page(postgres._SELECT, query, "postgres")
        cursor = await connection.execute(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {page.sql}".encode(), page.params
        )
        row = await cursor.fetchone()
    assert row is not None
    plan: dict[str, Any] = row[0][0]["Plan"]
    return plan


@pytest.mark.parametrize("query", MISPLANNED)
async def test_a_postgres_page_does_not_walk_back_through_the_newest_events(query: Query) -> None:
    store, plan = await _tailed_store_and_plan(query)
    try:
        # The page (101 rows an arm) and what its filters drop; the old plan read the
        # 10,000 newest events first.
        assert _rows_read(plan) < 3_000, plan
        assert (await store.query(query)).events == await _old_page(store, query)
    finally:
        await store.close()


async def test_a_postgres_page_of_a_market_with_a_big_min_usd_walks_its_big_events() -> None:
    # As on SQLite (liquidations_big_market): the market's big events in seq order, sizes in
    # the index, where the market's own index read every row of it to check its size.
    store = await PostgresStore.connect(await _empty_postgres())
    try:
        await store.append(_skewed(20_000))
        connection = await psycopg.AsyncConnection.connect(store.url, autocommit=True)
        async with connection:
            await connection.execute("ANALYZE liquidations")
        plan = await store.explain(Query(markets=("ETH-PERP",), min_usd=250_000))
        assert "liquidations_big_market" in plan, plan
    finally:
        await store.close()


#: A window far behind the newest events: 4,000 events' time of the :func:`_skewed` store,
#: with 14,000 of them and the TAIL (BTC-PERP longs on bybit) after it.
FAR_START, FAR_END = T0 + 30 * 2_000, T0 + 30 * 6_000
#: Pages whose arm walked every newer event of its market (exchange, side) back to the window.
FAR_BACK = [
    Query(markets=("BTC-PERP",), start_ms=FAR_START, end_ms=FAR_END),
    Query(markets=("BTC-PERP",), sides=("long",), start_ms=FAR_START, end_ms=FAR_END),
    Query(markets=("BTC-PERP", "ETH-PERP"), start_ms=FAR_START, end_ms=FAR_END),
    Query(exchanges=("bybit",), start_ms=FAR_START, end_ms=FAR_END),
    Query(sides=("long",), start_ms=FAR_START, end_ms=FAR_END),
]


@pytest.mark.parametrize("query", FAR_BACK)
async def test_a_postgres_page_of_a_window_far_back_reads_the_window(query: Query) -> None:
    # The arm walks its column back at most WALK_PAGES pages' worth of rows, then reads the
    # window by time (this one holds more events than that, or it would be read whole): what
    # it reads is bounded by the window, not by the events after it (the walk back read
    # 14,000-17,000 rows an arm here).
    store, plan = await _tailed_store_and_plan(query)
    try:
        arms = len(query.markets) or 1
        budget = WALK_PAGES * (query.limit + 1)
        # The window's size counted up to the budget; each arm: the walk (twice: its page and
        # the gates' count) and the window's 4,000.
        assert _rows_read(plan) < budget + arms * (2 * budget + 4_500), plan
        assert (await store.query(query)).events == await _old_page(store, query)
    finally:
        await store.close()


def _far_back_query(rng: random.Random, last_seq: int) -> Query:
    """A page of a window among the first 900 events' times (with an end, a start or both),
    small limits so a walk's budget is spent before the window, any other filter, a cursor."""
    start = T0 + rng.randrange(900)
    end = start + rng.randrange(1, 300)
    start_ms, end_ms = rng.choice(((start, end), (start, None), (None, end)))
    return Query(
        markets=rng.choice(((), ("BTC-PERP",), (rng.choice(MARKETS),), _markets(rng))),
        exchanges=rng.choice(((), (), tuple(e for e in EXCHANGES if rng.random() < 0.5))),
        sides=rng.choice(((), (), ("long",), ("short",))),
        min_usd=rng.choice((0.0, 0.0, 1_000.0, 250_000.0)),
        start_ms=start_ms,
        end_ms=end_ms,
        before_seq=rng.choice((None, None, rng.randrange(1, last_seq + 2))),
        limit=rng.choice((1, 2, 5, 20)),
    )


@pytest.mark.parametrize("seed", [5, 6])
async def test_pages_of_windows_far_back_are_every_matching_event_once(
    store: Store, seed: int
) -> None:
    # 900 events with times out of seq order, then 600 BTC-PERP longs on bybit after every
    # window, a tenth of them late (times back among the windows): PostgreSQL's walk spends
    # its budget before the window and reads the rest by time. Both stores give the same
    # pages: every matching event once, newest seq first.
    rng = random.Random(seed)
    events = _late_events(rng, 900)
    after = events[-1].seq
    tail = [
        Liquidation(
            id=f"tail:{i}",
            seq=after + i,
            exchange="bybit",
            symbol="X",
            market="BTC-PERP",
            side="long",
            price=1.0,
            quantity=1.0,
            size_usd=rng.choice((500.0, 300_000.0)),
            ts=T0 + (rng.randrange(900) if i % 10 == 0 else 1_000 + i),
            received_at=T0 + 1_000 + i,
            cascade_score=0,
            coverage="complete",
        )
        for i in range(1, 601)
    ]
    events += tail
    await store.append(events)
    for _ in range(40):
        query = _far_back_query(rng, events[-1].seq)
        page = await store.query(query)
        assert page.events == await _old_page(store, query), query
        got = list(page.events)
        while page.next_cursor is not None:
            assert isinstance(page.next_cursor, int)
            page = await store.query(msgspec.structs.replace(query, before_seq=page.next_cursor))
            got.extend(page.events)
        assert got == _matching(query, events), query


async def test_a_postgres_page_of_a_window_is_planned_for_its_own_values() -> None:
    # psycopg prepares a statement run 5 times and PostgreSQL may then keep one generic plan
    # for every value: for a window's page it planned without the market or the window
    # (BitmapAnd of the market's and the window's indexes: 1.09 s for BTC's 30 days at
    # 3.76M events, 0.50 s planned for the values). Each page of a window is planned anew.
    store = await PostgresStore.connect(await _empty_postgres(), readers=1)
    try:
        await store.append(_skewed(2_000))
        query = Query(markets=("BTC-PERP",), start_ms=T0 + 30 * 200, end_ms=T0 + 30 * 600)
        for _ in range(8):
            await store.query(query)
        prepared = await store._read("SELECT statement FROM pg_prepared_statements", ())
        assert not [row for row in prepared if "ts >= " in row[0]], prepared
    finally:
        await store.close()
