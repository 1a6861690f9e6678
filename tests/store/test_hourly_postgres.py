"""PostgreSQL's hourly rollup (store/hourly_postgres.py): always the minute rollups summed per
hour, whoever changes them, from the moment a node of this version opens the store: a store an
older release wrote is backfilled then, once however many nodes start together, and the
appends of nodes still running the older code (which write minute rollups only) keep it whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import psycopg
import pytest

from purpleflea.model import Liquidation
from purpleflea.store import aggregate as aggregates
from purpleflea.store import postgres
from purpleflea.store.base import COLUMNS, Interval, Query
from purpleflea.store.hourly_postgres import TRIGGERS
from purpleflea.store.postgres import PostgresStore
from tests.events import T0, stored_event
from tests.store.test_store import _empty_postgres

HOUR = 3_600_000
#: Events 61 s apart: ~59 an hour, each minute's first one in a new minute row.
STEP_MS = 61_000

# Where the hourly rollup and the minute rollups summed per hour differ (nothing, when whole).
_DISAGREE = """
SELECT hour, market, exchange, side, m.count, h.count, m.usd, h.size_usd
FROM (
    SELECT (minute / 3600000) * 3600000 AS hour, market, exchange, side, sum(count) AS count,
        sum(size_usd) AS usd, sum(seconds) AS seconds
    FROM rollup_1m GROUP BY 1, 2, 3, 4
) AS m FULL JOIN rollup_1h AS h USING (hour, market, exchange, side)
WHERE m.count IS DISTINCT FROM h.count OR m.seconds IS DISTINCT FROM h.seconds
    OR m.usd IS NULL OR h.size_usd IS NULL OR abs(m.usd - h.size_usd) > 1e-9 * abs(m.usd)
"""


def _event(seq: int, ts: int | None = None) -> Liquidation:
    return stored_event(seq, prefix="hourly", ts=T0 + seq * STEP_MS if ts is None else ts)


async def _sql(dsn: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
        cursor = await connection.execute(sql.encode(), params)
        return await cursor.fetchall() if cursor.description else []


async def _whole(dsn: str) -> None:
    """The hourly rollup is the minute rollups summed per hour, and holds something."""
    assert await _sql(dsn, _DISAGREE) == []
    assert (await _sql(dsn, "SELECT count(*) FROM rollup_1h"))[0][0] > 0


async def _as_an_older_release_left_it(dsn: str) -> None:
    """The store as a release before the hourly rollup wrote it: no table, no triggers."""
    await _sql(dsn, "DROP TABLE rollup_1h; DROP FUNCTION purpleflea_rollup_1h() CASCADE")


async def _older_node_appends(
    connection: psycopg.AsyncConnection[tuple[Any, ...]], events: Sequence[Liquidation]
) -> None:
    """An append by a node of an older release: its one statement writes the events and the
    minute rollups, and knows nothing of the hourly rollup."""
    assert "rollup_1h" not in postgres._APPEND
    columns = [[getattr(e, c) for e in events] for c in COLUMNS]
    await connection.execute(postgres._APPEND, columns)


async def _same_as_minutes(store: PostgresStore, start: int, end: int) -> None:
    """Hourly and daily aggregates (read from the hourly rollup) answer as the minute reads."""
    intervals: tuple[Interval, ...] = ("1h", "1d")
    for interval in intervals:
        query = Query(start_ms=start, end_ms=end)
        got = await store.aggregate(interval, "market", query)
        want = await aggregates.aggregate(
            store._read, None, interval, "market", query, "postgres", hourly=False, cached=False
        )
        assert [(b.start_ms, b.group, b.count) for b in got] == [
            (b.start_ms, b.group, b.count) for b in want
        ]
        assert [b.size_usd for b in got] == pytest.approx([b.size_usd for b in want], rel=1e-9)
        assert got, "the window holds events"


async def test_every_change_to_the_minute_rollups_reaches_the_hourly_rollup() -> None:
    dsn = await _empty_postgres()
    store = await PostgresStore.connect(dsn)
    try:
        # Batches that share minutes: the second adds to minute rows the first made (the
        # upsert's UPDATE side), and an id stored already adds nothing.
        events = [_event(seq, T0 + seq * 7_000) for seq in range(1, 2_001)]
        await store.append(events[:900])
        await store.append(events[850:])
        await _whole(dsn)
        # What a migration does (the seconds from the counts), and deletes of minute rows:
        # a whole hour's (its hourly rows go) and part of another's.
        await _sql(dsn, "UPDATE rollup_1m SET seconds = count WHERE market = 'ETH-PERP'")
        await _sql(dsn, "DELETE FROM rollup_1m WHERE minute >= %s AND minute < %s", [T0, T0 + HOUR])
        await _sql(dsn, "DELETE FROM rollup_1m WHERE minute >= %s AND minute < %s",
                   [T0 + 2 * HOUR, T0 + 2 * HOUR + 600_000])  # fmt: skip
        await _whole(dsn)
        assert await _sql(dsn, "SELECT 1 FROM rollup_1h WHERE hour = %s", [T0]) == []
        await _sql(dsn, "TRUNCATE rollup_1m")
        assert await _sql(dsn, "SELECT count(*) FROM rollup_1h") == [(0,)]
    finally:
        await store.close()


async def test_a_store_an_older_release_wrote_is_backfilled_and_older_nodes_keep_it_whole() -> None:
    dsn = await _empty_postgres()
    store = await PostgresStore.connect(dsn)
    for start in range(1, 3_001, 1_000):
        await store.append([_event(seq) for seq in range(start, start + 1_000)])
    await store.close()
    await _as_an_older_release_left_it(dsn)
    older = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    async with older:
        # Appended while no node kept an hourly rollup.
        await _older_node_appends(older, [_event(seq) for seq in range(3_001, 3_500)])
        store = await PostgresStore.connect(dsn)
        try:
            await _whole(dsn)
            # The rolling upgrade goes on: the older node appends new events and late ones
            # into hours long closed, which the hourly rollup counts all the same.
            await _older_node_appends(older, [_event(seq) for seq in range(3_500, 4_000)])
            late = [_event(seq, T0 + (seq - 4_000) * 3_333_331) for seq in range(4_000, 4_040)]
            await _older_node_appends(older, late)
            await _whole(dsn)
            await _same_as_minutes(store, T0 + 1_234, T0 + 4_100 * STEP_MS)
        finally:
            await store.close()


async def test_nodes_starting_together_backfill_once_while_an_older_node_appends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dsn = await _empty_postgres()
    store = await PostgresStore.connect(dsn)
    for start in range(1, 20_001, 5_000):
        await store.append([_event(seq) for seq in range(start, start + 5_000)])
    await store.close()
    await _as_an_older_release_left_it(dsn)
    backfills: list[bool] = []
    ensure = postgres.ensure_hourly

    async def counted(writer: psycopg.AsyncConnection[tuple[Any, ...]]) -> bool:
        backfills.append(await ensure(writer))
        return backfills[-1]

    monkeypatch.setattr(postgres, "ensure_hourly", counted)
    stop = asyncio.Event()
    appended: list[int] = []  # batches, by how many nodes were open when each was stored

    async def older_node() -> None:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
            seq = 20_001
            while not stop.is_set():
                # Each batch: new events, and late ones into the history's hours.
                batch = [_event(s) for s in range(seq, seq + 40)]
                batch += [_event(s, T0 + (s % 997) * 19_997) for s in range(seq + 40, seq + 50)]
                await _older_node_appends(connection, batch)
                appended.append(len(opened))
                seq += 50

    opened: list[PostgresStore] = []

    async def node() -> None:
        opened.append(await PostgresStore.connect(dsn))

    writer = asyncio.create_task(older_node())
    try:
        while not appended:
            await asyncio.sleep(0.01)
        await asyncio.gather(*(node() for _ in range(4)))
        while appended[-1] < 4 or appended.count(4) < 5:
            await asyncio.sleep(0.01)
        stop.set()
        await writer
        assert len(backfills) == 4
        assert backfills.count(True) == 1
        assert appended[0] == 0  # the older node appended before the upgrade, and after
        await _whole(dsn)
        triggers = await _sql(
            dsn,
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'rollup_1m'::regclass "
            "AND NOT tgisinternal ORDER BY tgname",
        )
        assert [name for (name,) in triggers] == sorted(TRIGGERS)
        await _same_as_minutes(opened[0], T0, T0 + 21_000 * STEP_MS)
    finally:
        stop.set()
        await asyncio.gather(writer, return_exceptions=True)
        for store in opened:
            await store.close()
