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
from purpleflea.store.sql import BIG_USD, MAX_MERGED_MARKETS, order_by, where
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
        # The page merges the arms in seq order, no sort of their rows together; each arm is
        # the one-market query, stopping at the page's limit.
        top = [line.strip() for line in plan.splitlines()[:2]]
        assert top[0].startswith("Limit"), plan
        assert top[1].startswith("->  Merge Append"), plan
        assert plan.count("Limit  (") == 1 + len(set(query.markets)), plan
    finally:
        await store.close()
