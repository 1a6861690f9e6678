"""A node starting on a PostgreSQL store that is up to date takes no lock that waits for, or
holds, the other nodes' reads and appends: its schema step reads the catalog and runs only
what would make something (``CREATE INDEX IF NOT EXISTS`` took its table's SHARE lock and
``ALTER TABLE ... ADD COLUMN IF NOT EXISTS`` its ACCESS EXCLUSIVE lock at every start)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from purpleflea.server.keys_postgres import PostgresKeyStore
from purpleflea.store import postgres as postgres_module
from purpleflea.store import schema_postgres
from purpleflea.store.base import SCHEMA_VERSION, OpenInterest, StoreTooNew
from purpleflea.store.postgres import PostgresStore
from purpleflea.store.webhooks import open_webhook_store
from tests.events import T0, stored_event
from tests.store.test_store import _empty_postgres

# Every lock a start may take on a table that exists: reading it (ACCESS SHARE) and writing
# rows (ROW EXCLUSIVE, which conflicts with no read nor append).
_HARMLESS = {"AccessShareLock", "RowExclusiveLock"}


def test_missing_keeps_only_what_makes_something() -> None:
    schema = schema_postgres.statements(
        """
        CREATE TABLE IF NOT EXISTS t (a int);
        CREATE INDEX IF NOT EXISTS t_a ON t (a);
        -- a comment above a statement does not hide it (the webhooks' host column had one)
        ALTER TABLE t ADD COLUMN IF NOT EXISTS a int;
        CREATE UNIQUE INDEX IF NOT EXISTS t_b ON t (b);
        ALTER TABLE t ADD COLUMN IF NOT EXISTS b int;
        ALTER TABLE t ADD COLUMN IF NOT EXISTS c int;
        INSERT INTO t (a) VALUES (1);
        """
    )
    catalog = [("t", "a"), ("t", "b"), ("t_a", "a")]
    assert schema_postgres.missing(schema, catalog) == [
        "CREATE UNIQUE INDEX IF NOT EXISTS t_b ON t (b)",
        "ALTER TABLE t ADD COLUMN IF NOT EXISTS c int",
        "INSERT INTO t (a) VALUES (1)",
    ]


async def _stored() -> str:
    """A store with events, open interest and the small stores' tables, made by a start."""
    dsn = await _empty_postgres()
    store = await PostgresStore.connect(dsn)
    await store.append([stored_event(seq) for seq in range(1, 21)])
    await store.append_open_interest(
        [OpenInterest(ts=T0, market="BTC-PERP", open_interest_usd=1e9)]
    )
    await store.close()
    webhooks = open_webhook_store(dsn)
    await webhooks.webhooks()  # connects: makes its tables
    await webhooks.close()
    PostgresKeyStore(dsn).close()
    return dsn


@pytest.fixture
async def busy() -> AsyncIterator[tuple[str, psycopg.AsyncConnection[Any]]]:
    """A store, and another node's transaction holding a long read of every table a start
    makes and an append in flight (rows written, not committed) to each table appends write."""
    dsn = await _stored()
    other = await psycopg.AsyncConnection.connect(dsn)
    for table in ("liquidations", "cascades", "rollup_1m", "open_interest"):
        await other.execute(f"SELECT count(*) FROM {table}")  # type: ignore[arg-type]
    await other.execute("INSERT INTO rollup_1h SELECT 0, 'X-PERP', 'x', 'long', 1, 1.0, 1")
    await other.execute(
        "INSERT INTO webhooks VALUES ('w', 'a', 'http://h', 's', '', 0, 0, 0);"
        "INSERT INTO coverage_factor_method VALUES (0);"
        "INSERT INTO api_keys VALUES ('k', 'h', 'a', 'n', 0, NULL)"
    )
    yield dsn, other
    await other.rollback()
    await other.close()


async def test_a_node_starts_beside_a_long_read_and_an_append_in_flight(
    busy: tuple[str, psycopg.AsyncConnection[Any]],
) -> None:
    dsn, _ = busy
    store = await asyncio.wait_for(PostgresStore.connect(dsn), timeout=5.0)
    try:
        appended = await asyncio.wait_for(store.append([stored_event(21)]), timeout=5.0)
        assert [event.seq for event in appended] == [21]
    finally:
        await store.close()
    webhooks = open_webhook_store(dsn)
    try:
        assert await asyncio.wait_for(webhooks.webhooks(), timeout=5.0) == []
    finally:
        await webhooks.close()
    keys = await asyncio.wait_for(asyncio.to_thread(PostgresKeyStore, dsn), timeout=5.0)
    keys.close()


async def test_a_start_on_a_store_up_to_date_takes_no_lock_that_holds_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dsn = await _stored()
    held: list[tuple[str, str]] = []
    ensure_hourly = postgres_module.ensure_hourly

    async def then_read_locks(writer: psycopg.AsyncConnection[Any]) -> bool:
        made = await ensure_hourly(writer)
        # The last step of the schema's transaction: every lock it took is still held.
        locks = await writer.execute(
            "SELECT relation::regclass::text, mode FROM pg_locks "
            "WHERE pid = pg_backend_pid() AND locktype = 'relation'"
        )
        held.extend(await locks.fetchall())
        return made

    monkeypatch.setattr(postgres_module, "ensure_hourly", then_read_locks)
    store = await PostgresStore.connect(dsn)
    await store.close()
    assert held, "the schema step was not observed"
    assert {(table, mode) for table, mode in held if mode not in _HARMLESS} == set()


async def test_an_older_store_gains_the_mark_price_column() -> None:
    dsn = await _stored()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
        await connection.execute("ALTER TABLE open_interest DROP COLUMN mark_price")
    store = await PostgresStore.connect(dsn)
    try:
        rows = await store.open_interest(T0, T0 + 60_000)
        assert [(row.market, row.mark_price) for row in rows] == [("BTC-PERP", 0.0)]
    finally:
        await store.close()


async def test_a_store_a_newer_release_wrote_is_refused() -> None:
    dsn = await _stored()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
        stamped = await (
            await connection.execute("SELECT version FROM purpleflea_schema")
        ).fetchall()
        assert stamped == [(SCHEMA_VERSION,)]
        await connection.execute("UPDATE purpleflea_schema SET version = version + 1")
    try:
        with pytest.raises(StoreTooNew, match=f"store schema {SCHEMA_VERSION + 1}; this release"):
            await PostgresStore.connect(dsn)
    finally:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
            await connection.execute("DROP TABLE purpleflea_schema")  # an unstamped store
    store = await PostgresStore.connect(dsn)  # stamps it again
    await store.close()
