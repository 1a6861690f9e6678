"""PostgreSQL's hourly rollup (store/hourly_postgres.py): the minute rollups summed per hour,
whoever changes them. A store an older release wrote is filled once a node of this version
opens it, a chunk at a time beside the appends (which wait for one chunk, not the whole fill),
shared by the nodes that have it open and resumed by the next after a stop; the appends of
nodes still running the older code (which write minute rollups only, late events in old hours
too) keep it whole meanwhile, and until it is whole aggregates read the minute rollups.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import psycopg
import pytest

from purpleflea.model import Liquidation
from purpleflea.store import aggregate as aggregates
from purpleflea.store import hourly_postgres, postgres
from purpleflea.store.base import Interval, Query
from purpleflea.store.hourly_postgres import PENDING, TRIGGERS
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
    await _sql(
        dsn,
        "DROP TABLE rollup_1h, rollup_1h_pending; DROP FUNCTION purpleflea_rollup_1h() CASCADE; "
        "DROP FUNCTION purpleflea_rollup_1h_fill",
    )


async def _older_history(events: int) -> str:
    """A store an older release wrote: ``events`` events 61 s apart (~59 an hour)."""
    dsn = await _empty_postgres()
    store = await PostgresStore.connect(dsn)
    for start in range(1, events + 1, 5_000):
        await store.append([_event(seq) for seq in range(start, min(start + 5_000, events + 1))])
    await store.close()
    await _as_an_older_release_left_it(dsn)
    return dsn


def _older_batch(seq: int) -> list[Liquidation]:
    """An older node's batch from ``seq``: 40 new events and 10 late ones in the history's
    hours."""
    batch = [_event(s) for s in range(seq, seq + 40)]
    return batch + [_event(s, T0 + (s % 997) * 19_997) for s in range(seq + 40, seq + 50)]


async def _older_node_appends(
    connection: psycopg.AsyncConnection[tuple[Any, ...]], events: Sequence[Liquidation]
) -> None:
    """An append by a node of an older release: its one statement writes the events and the
    minute rollups, and knows nothing of the hourly rollup."""
    assert "rollup_1h" not in postgres._APPEND
    await connection.execute(postgres._APPEND, postgres.append_params(events))


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
            await store.hourly_filled()
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


async def test_nodes_starting_together_fill_each_hour_once_while_an_older_node_appends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dsn = await _older_history(20_000)
    monkeypatch.setattr(hourly_postgres, "CHUNK_S", 0.0)  # an hour a chunk: ~340 of them
    installs: list[bool] = []
    pending: list[tuple[int, int]] = []  # what the install left pending
    chunks: list[int] = []  # each node's
    ensure, fill = postgres.ensure_hourly, postgres.fill_hourly

    async def counted(writer: psycopg.AsyncConnection[tuple[Any, ...]]) -> bool:
        installs.append(await ensure(writer))
        if installs[-1]:
            pending.extend(await (await writer.execute(PENDING)).fetchall())
        return installs[-1]

    async def counted_fill(connection: psycopg.AsyncConnection[tuple[Any, ...]]) -> int:
        chunks.append(await fill(connection))
        return chunks[-1]

    monkeypatch.setattr(postgres, "ensure_hourly", counted)
    monkeypatch.setattr(postgres, "fill_hourly", counted_fill)
    stop = asyncio.Event()
    appended: list[int] = []  # batches, by how many nodes were open when each was stored

    async def older_node() -> None:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
            seq = 20_001
            while not stop.is_set():
                await _older_node_appends(connection, _older_batch(seq))
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
        await asyncio.gather(*(store.hourly_filled() for store in opened))
        while appended[-1] < 4 or appended.count(4) < 5:
            await asyncio.sleep(0.01)
        stop.set()
        await writer
        assert len(installs) == 4
        assert installs.count(True) == 1
        assert appended[0] == 0  # the older node appended before the upgrade, and after
        await _whole(dsn)
        # Every pending hour was filled by exactly one chunk of one node, and nothing is left.
        [(low, high)] = pending
        assert len(chunks) == 4
        assert sum(chunks) == (high - low) // HOUR > 300
        assert await _sql(dsn, PENDING) == []
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


async def test_appends_wait_for_one_chunk_of_the_fill_not_for_all_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dsn = await _older_history(20_000)
    monkeypatch.setattr(hourly_postgres, "CHUNK_S", 0.0)  # an hour a chunk: ~340 of them
    walls: list[tuple[float, float]] = []  # each append's start and wall time
    stop = asyncio.Event()

    async def older_node() -> None:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
            seq = 20_001
            while not stop.is_set():
                started = time.perf_counter()
                await _older_node_appends(connection, _older_batch(seq))
                walls.append((started, time.perf_counter() - started))
                seq += 50
                await asyncio.sleep(0.005)

    writer = asyncio.create_task(older_node())
    try:
        while len(walls) < 3:
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        store = await PostgresStore.connect(dsn)
        try:
            await store.hourly_filled()
            filled = time.perf_counter() - started
            stop.set()
            await writer
            # Every append the fill overlapped, one it held back from its start included.
            during = [w for at, w in walls if at + w >= started and at <= started + filled]
            assert len(during) >= 10, (len(during), filled)
            assert max(during) < filled / 4, (max(during), filled)
            await _whole(dsn)
            await _same_as_minutes(store, T0, T0 + 21_000 * STEP_MS)
        finally:
            await store.close()
    finally:
        stop.set()
        await asyncio.gather(writer, return_exceptions=True)


async def test_a_node_stopped_mid_fill_leaves_the_rest_to_the_next_which_resumes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dsn = await _older_history(20_000)
    monkeypatch.setattr(hourly_postgres, "CHUNK_S", 0.0)  # an hour a chunk
    chunks: list[int] = []
    fill = postgres.fill_hourly

    async def counted_fill(connection: psycopg.AsyncConnection[tuple[Any, ...]]) -> int:
        chunks.append(await fill(connection))
        return chunks[-1]

    monkeypatch.setattr(postgres, "fill_hourly", counted_fill)
    first = await PostgresStore.connect(dsn)
    [(low, high)] = await _sql(dsn, PENDING)
    try:
        while (await _sql(dsn, PENDING))[0][1] > high - 20 * HOUR:
            await asyncio.sleep(0.005)
    finally:
        await first.close()  # mid-fill: the chunk under way rolls back
    [(low_left, high_left)] = await _sql(dsn, PENDING)
    assert low_left == low
    assert low < high_left < high
    assert chunks == []  # the stopped fill returned no count
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as older:
        await _older_node_appends(older, _older_batch(20_001))  # late events on both sides
    second = await PostgresStore.connect(dsn)
    try:
        await second.hourly_filled()
        assert chunks == [(high_left - low) // HOUR]  # only what the first left
        assert await _sql(dsn, PENDING) == []
        await _whole(dsn)
    finally:
        await second.close()


async def test_aggregates_read_the_minutes_until_the_hourly_rollup_is_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dsn = await _older_history(3_000)
    held = asyncio.Event()

    async def held_fill(connection: psycopg.AsyncConnection[tuple[Any, ...]]) -> int:
        await held.wait()  # this node never fills
        return 0

    monkeypatch.setattr(postgres, "fill_hourly", held_fill)
    reading = await PostgresStore.connect(dsn)
    try:
        # Nothing filled yet: rollup_1h holds nothing, and the answers are the minutes'.
        assert await _sql(dsn, "SELECT count(*) FROM rollup_1h") == [(0,)]
        await _same_as_minutes(reading, T0, T0 + 3_100 * STEP_MS)
        monkeypatch.undo()
        filling = await PostgresStore.connect(dsn)  # another node fills it
        await filling.hourly_filled()
        await filling.close()
        # Now the first node reads the hourly rollup: a change made to it alone shows.
        await _same_as_minutes(reading, T0, T0 + 3_100 * STEP_MS)
        hour = T0 // HOUR * HOUR + HOUR  # a whole hour of the history
        query = Query(start_ms=hour, end_ms=hour + HOUR)
        before = sum(b.count for b in await reading.aggregate("1h", "market", query))
        [(rows,)] = await _sql(dsn, "SELECT count(*) FROM rollup_1h WHERE hour = %s", [hour])
        await _sql(dsn, "UPDATE rollup_1h SET count = count + 1000 WHERE hour = %s", [hour])
        after = sum(b.count for b in await reading.aggregate("1h", "market", query))
        assert rows > 0
        assert after == before + 1000 * rows
    finally:
        held.set()
        await reading.close()


async def test_a_fill_waiting_for_the_lock_gives_way_to_the_writers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dsn = await _older_history(3_000)
    held = asyncio.Event()

    async def held_fill(connection: psycopg.AsyncConnection[tuple[Any, ...]]) -> int:
        await held.wait()
        return 0

    monkeypatch.setattr(postgres, "fill_hourly", held_fill)
    installed = await PostgresStore.connect(dsn)  # the triggers, every hour pending
    held.set()
    await installed.close()
    async with (
        await psycopg.AsyncConnection.connect(dsn) as blocker,
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as filler,
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as older,
    ):
        # A writer's transaction left open holds rollup_1m's ROW EXCLUSIVE lock (and no row
        # the next writer needs, which would hold that one up whatever the fill does).
        await blocker.execute("LOCK TABLE rollup_1m IN ROW EXCLUSIVE MODE")
        filling = asyncio.create_task(hourly_postgres.fill_hourly(filler))
        try:
            await asyncio.sleep(0.2)  # the fill's first chunk now waits for the lock
            started = time.perf_counter()
            await asyncio.wait_for(_older_node_appends(older, _older_batch(3_051)), 3.0)
            waited = time.perf_counter() - started
            # It did not queue behind the chunk for as long as the blocker stays open.
            assert waited < 1.0, waited
            assert await _sql(dsn, PENDING) != []
            await blocker.commit()
            assert await asyncio.wait_for(filling, 30.0) > 0
        finally:
            filling.cancel()
            await asyncio.gather(filling, return_exceptions=True)
    await _whole(dsn)
