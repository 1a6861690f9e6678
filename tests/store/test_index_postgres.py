"""The late indexes (big events; market, side, seq), added to PostgreSQL stores that already
hold events, are built beside the appends: a plain CREATE INDEX in the schema step held every
node's appends for 0.49 s per million events."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from purpleflea.store import index_postgres
from purpleflea.store.base import Query
from purpleflea.store.postgres import PostgresStore
from purpleflea.store.replay import walk
from tests.events import stored_event
from tests.store.test_store import _empty_postgres


async def _store_without_index(events: int) -> str:
    """A store of ``events`` events whose index of big events is missing (an older release's)."""
    dsn = await _empty_postgres()
    store = await PostgresStore.connect(dsn)
    await store.append([stored_event(seq) for seq in range(1, events + 1)])
    await store.close()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
        for name in index_postgres.INDEXES:
            await connection.execute(f"DROP INDEX IF EXISTS {name}")
    return dsn


async def _snapshot_held(dsn: str) -> psycopg.AsyncConnection[tuple[object, ...]]:
    """A reader's open snapshot (roll it back to end it): a concurrent build waits for it,
    a plain one would not."""
    reader = await psycopg.AsyncConnection.connect(dsn)
    await reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    await reader.execute("SELECT count(*) FROM liquidations")
    return reader


async def _valid(dsn: str) -> bool:
    """Every late index (big events; market, side, seq) exists and is valid."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
        return all([await index_postgres.valid(connection, n) for n in index_postgres.INDEXES])


async def test_a_small_store_gets_the_index_at_once() -> None:
    dsn = await _store_without_index(20)
    store = await PostgresStore.connect(dsn)
    try:
        assert await _valid(dsn)
    finally:
        await store.close()


async def test_a_store_with_events_builds_it_beside_the_appends_and_other_nodes_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(index_postgres, "INLINE_ROWS", 10)
    dsn = await _store_without_index(40)
    reader = await _snapshot_held(dsn)
    first = await asyncio.wait_for(PostgresStore.connect(dsn), timeout=5.0)  # builds it
    # A node starting during the build: its schema step took the table's SHARE lock, which
    # waited for the build, which waited for it: PostgreSQL failed the start (deadlock).
    second = await asyncio.wait_for(PostgresStore.connect(dsn), timeout=5.0)
    try:
        await asyncio.sleep(0.3)
        assert not await _valid(dsn), "the index was built inline, holding the writers"
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as probe:
            locks = await probe.execute(
                "SELECT mode FROM pg_locks WHERE relation = 'liquidations'::regclass "
                "AND granted AND pid <> pg_backend_pid()"
            )
            modes = {mode for (mode,) in await locks.fetchall()}
        assert "ShareLock" not in modes, modes
        # Both nodes append while the build waits: not held.
        for node, seq in ((first, 41), (second, 42)):
            appended = await asyncio.wait_for(node.append([stored_event(seq)]), timeout=2.0)
            assert [event.seq for event in appended] == [seq]
        await reader.rollback()
        await asyncio.wait_for(first.index_built(), timeout=10.0)
        await asyncio.wait_for(second.index_built(), timeout=10.0)
        assert await _valid(dsn)
    finally:
        await reader.close()
        await second.close()
        await first.close()


async def test_a_build_cut_short_is_dropped_and_built_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(index_postgres, "INLINE_ROWS", 10)
    dsn = await _store_without_index(40)
    reader = await _snapshot_held(dsn)
    store = await PostgresStore.connect(dsn)
    await asyncio.sleep(0.3)
    await store.close()  # a node stopped mid-build: the index is left invalid
    await reader.rollback()
    await reader.close()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
        found = await connection.execute(
            "SELECT count(*) FROM pg_class WHERE relname = 'liquidations_big'"
        )
        assert await found.fetchone() == (1,)
    assert not await _valid(dsn)
    again = await PostgresStore.connect(dsn)
    try:
        await asyncio.wait_for(again.index_built(), timeout=10.0)
        assert await _valid(dsn)
    finally:
        await again.close()


async def test_one_side_of_a_few_markets_is_walked_on_the_market_side_index() -> None:
    """SQLite walks (market, side, seq); PostgreSQL had no such index and walked both sides of
    each market (bench/replay_filtered.py: 193 pages where SQLite read 88)."""
    dsn = await _store_without_index(20)
    store = await PostgresStore.connect(dsn)
    try:
        assert await _valid(dsn)
        query = Query(markets=("BTC-PERP", "ETH-PERP"), sides=("short",))
        sql, params, _ = walk(query, "postgres", 0, 1_000)
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
            await connection.execute("SET enable_seqscan = off")  # a tiny table: else a scan
            rows = await (await connection.execute(f"EXPLAIN {sql}", params)).fetchall()
        plan = "\n".join(str(row[0]) for row in rows)
        assert plan.count("liquidations_market_side_seq") == 2, plan  # one seek per market
    finally:
        await store.close()
