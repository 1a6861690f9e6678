"""The storage contract, run against every backend: SQLite and PostgreSQL."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from purpleflea.clock import now_ms
from purpleflea.engine.coverage import METHOD_VERSION
from purpleflea.model import CascadeAlert, Liquidation
from purpleflea.store import OpenInterest, Query, Store
from purpleflea.store.base import StoreUnavailable, time_cursor
from purpleflea.store.factory import open_store
from purpleflea.store.postgres import PostgresStore
from purpleflea.store.sqlite import SQLiteStore
from tests.events import T0, stored_alert, stored_event
from tests.services import drop_connections, ensure_postgres


def _event(seq: int, **overrides: object) -> Liquidation:
    return stored_event(seq, prefix="test", **overrides)


async def _empty_postgres() -> str:
    """The session's database with no tables: every test starts from an empty store."""
    dsn = ensure_postgres()
    connection = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    async with connection:
        await connection.execute(
            "DROP TABLE IF EXISTS liquidations, rollup_1m, rollup_1h, rollup_1h_pending, cascades, "
            "open_interest, "
            "coverage_factor, coverage_factor_method, engine_state, engine_journal"
        )
    return dsn


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        backend: Store = await open_store(f"sqlite://{tmp_path / 'history.sqlite'}")
        assert isinstance(backend, SQLiteStore)
    else:
        backend = await open_store(await _empty_postgres())
        assert isinstance(backend, PostgresStore)
    yield backend
    await backend.close()


async def test_append_is_idempotent_by_id(store: Store) -> None:
    events = [_event(i) for i in range(1, 11)]
    assert await store.append(events) == events
    assert await store.append(events[:5]) == []
    assert await store.last_seq() == 10
    assert await store.since(0) == events


async def test_a_batch_partly_stored_adds_only_its_new_events(store: Store) -> None:
    events = [_event(i) for i in range(1, 11)]
    assert await store.append(events[2:5]) == events[2:5]
    assert await store.append(events) == events[:2] + events[5:]
    assert await store.since(0) == events
    # An id repeated in one batch: the first is stored, the repeat is not.
    first, repeat = _event(12, id="test:twice"), _event(13, id="test:twice")
    assert await store.append([_event(11), first, repeat]) == [_event(11), first]
    assert [e.seq for e in await store.since(10)] == [11, 12]


async def test_a_taken_seq_fails_the_batch_loudly(store: Store) -> None:
    # Two sequencers on one store (a misconfiguration) must not silently drop events.
    await store.append([_event(1)])
    with pytest.raises(Exception, match=r"(?i)unique|constraint"):
        await store.append([_event(2), _event(1, id="other-node:1")])
    assert await store.since(0) == [_event(1)]  # the failed batch left nothing behind
    assert await store.append([_event(2)]) == [_event(2)]


async def test_since_resumes_after_a_seq_in_order(store: Store) -> None:
    events = [_event(i) for i in range(1, 101)]
    await store.append(events)
    assert await store.since(42, limit=5) == events[42:47]
    assert await store.since(100) == []


async def test_query_filters_combine_and_pages_walk_back(store: Store) -> None:
    events = [_event(i) for i in range(1, 201)]
    await store.append(events)
    query = Query(markets=("BTC-PERP",), sides=("long",), min_usd=100_000, limit=20)
    expected = [
        e
        for e in reversed(events)
        if e.market == "BTC-PERP" and e.side == "long" and e.size_usd >= 100_000
    ]
    seen: list[Liquidation] = []
    cursor: int | None = None
    while True:
        page = await store.query(msgspec.structs.replace(query, before_seq=cursor))
        seen.extend(page.events)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == expected


async def test_query_time_range_and_exchange(store: Store) -> None:
    await store.append([_event(i) for i in range(1, 61)])
    page = await store.query(
        Query(exchanges=("bybit",), start_ms=T0 + 10_000, end_ms=T0 + 20_000, limit=100)
    )
    assert [e.seq for e in page.events] == [18, 16, 14, 12, 10]


def _out_of_time_order(count: int) -> list[Liquidation]:
    """``count`` events whose ts is not their storage order: a shuffled recording, with runs
    of equal ts (three events per second)."""
    shuffled = [(seq * 7_919) % count for seq in range(1, count + 1)]
    return [_event(seq, ts=T0 + (k // 3) * 1_000) for seq, k in enumerate(shuffled, start=1)]


async def _pages_by_time(store: Store, query: Query) -> list[list[Liquidation]]:
    pages: list[list[Liquidation]] = []
    cursor = query.before_key
    while True:
        page = await store.query(msgspec.structs.replace(query, order="ts", before_key=cursor))
        pages.append(page.events)
        if page.next_cursor is None:
            return pages
        assert isinstance(page.next_cursor, str)
        cursor = time_cursor(page.next_cursor)


async def test_history_by_time_is_the_latest_ts_first_ties_by_seq_paged(store: Store) -> None:
    events = _out_of_time_order(120)
    await store.append(events)
    by_time = sorted(events, key=lambda e: (-e.ts, -e.seq))
    pages = await _pages_by_time(store, Query(limit=7))
    assert [e for page in pages for e in page] == by_time
    assert [len(page) for page in pages] == [7] * 17 + [1]
    # Filters and a window combine with the order, as with the default one.
    query = Query(markets=("BTC-PERP",), start_ms=T0 + 5_000, end_ms=T0 + 30_000, limit=4)
    wanted = [e for e in by_time if e.market == "BTC-PERP" and T0 + 5_000 <= e.ts < T0 + 30_000]
    assert [e for page in await _pages_by_time(store, query) for e in page] == wanted
    # The default order is unchanged: the last stored first.
    page = await store.query(Query(limit=5))
    assert [e.seq for e in page.events] == [120, 119, 118, 117, 116]
    assert page.next_cursor == 116


async def test_a_time_cursor_holds_its_place_while_events_arrive(store: Store) -> None:
    """Pages after a cursor are those of its (ts, seq): an event stored meanwhile with a later
    time is not repeated nor does it shift them, and one of an earlier time (an import going
    on) is found in its place."""
    events = _out_of_time_order(30)
    await store.append(events)
    first = await store.query(Query(order="ts", limit=10))
    assert isinstance(first.next_cursor, str)
    newer = _event(31, ts=T0 + 60_000)
    older = _event(32, ts=T0 + 1_000)  # ties with three events at T0 + 1 s, stored last
    await store.append([newer, older])
    rest = await _pages_by_time(store, Query(limit=10, before_key=time_cursor(first.next_cursor)))
    after = [e for page in await _pages_by_time(store, Query(limit=10)) for e in page]
    assert first.events + [e for page in rest for e in page] == [e for e in after if e != newer]
    # The tie: the later stored (higher seq) of the same ts comes first.
    tied = [e.seq for e in after if e.ts == T0 + 1_000]
    assert tied == sorted(tied, reverse=True)
    assert tied[0] == 32


async def test_sqlite_history_by_time_walked_along_ts_or_sorted_is_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite reads a page by time along the ts index, or, for markets with few events, by
    the market index and a sort (store/sql.py, TS_WALK_MATCHES): the same pages either way."""
    store = SQLiteStore(tmp_path / "history.sqlite")
    try:
        await store.append(_out_of_time_order(150))
        queries = [
            Query(markets=("BTC-PERP",), limit=6),
            Query(markets=("ETH-PERP", "BTC-PERP"), sides=("short",), limit=4),
            Query(markets=("ETH-PERP",), start_ms=T0 + 8_000, end_ms=T0 + 40_000, limit=5),
            Query(markets=("NOPE-PERP",), limit=5),
            Query(exchanges=("bybit",), min_usd=300_000, limit=7),
        ]
        read = {}
        for threshold in (1, 1_000_000):
            monkeypatch.setattr("purpleflea.store.sqlite.TS_WALK_MATCHES", threshold)
            read[threshold] = [await _pages_by_time(store, q) for q in queries]
        assert read[1] == read[1_000_000]
        assert sum(len(page) for pages in read[1] for page in pages) > 100
    finally:
        await store.close()


async def test_event_times_are_the_earliest_and_latest_ts_whatever_the_seq(store: Store) -> None:
    assert await store.event_times() is None
    # Stored out of time order (older history imported after newer): by ts, not by seq.
    await store.append([_event(1, ts=T0 + 5_000), _event(2, ts=T0), _event(3, ts=T0 + 9_000)])
    assert await store.event_times() == (T0, T0 + 9_000)


async def test_injection_shaped_filters_are_just_values(store: Store) -> None:
    await store.append([_event(1)])
    page = await store.query(Query(markets=("BTC-PERP' OR '1'='1",), limit=10))
    assert page.events == []
    assert await store.last_seq() == 1


async def test_aggregates_from_rollups_match_the_events(store: Store) -> None:
    events = [_event(i) for i in range(1, 301)]
    await store.append(events)
    buckets = await store.aggregate("1m", "market", Query(start_ms=T0, end_ms=T0 + 600_000))
    total = sum(b.size_usd for b in buckets)
    assert total == pytest.approx(sum(e.size_usd for e in events))
    assert sum(b.count for b in buckets) == 300
    for bucket in buckets:
        inside = [
            e
            for e in events
            if e.market == bucket.group and bucket.start_ms <= e.ts < bucket.start_ms + 60_000
        ]
        assert bucket.count == len(inside)
        assert bucket.long_usd == pytest.approx(sum(e.size_usd for e in inside if e.side == "long"))
        assert bucket.short_usd == pytest.approx(
            sum(e.size_usd for e in inside if e.side == "short")
        )


async def test_aggregate_with_size_filter_reads_events(store: Store) -> None:
    events = [_event(i) for i in range(1, 121)]
    await store.append(events)
    [bucket] = await store.aggregate("1h", "side", Query(sides=("long",), min_usd=500_000))
    assert bucket.count == len([e for e in events if e.side == "long" and e.size_usd >= 500_000])


_WRITER = """
import asyncio, sys
from purpleflea.model import Liquidation
from purpleflea.store.sqlite import SQLiteStore
store = SQLiteStore(sys.argv[1])
seq = 0
async def main():
    global seq
    while True:
        seq += 1
        ts = 1700000000000 + seq
        store.append_now([Liquidation(id=f"k:{seq}", seq=seq, exchange="sim", symbol="X",
            market="X-PERP", side="long", price=1.0, quantity=1.0, size_usd=1.0, ts=ts,
            received_at=ts, coverage="complete")])
        print(seq, flush=True)
asyncio.run(main())
"""


async def test_every_acknowledged_append_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite"
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    acknowledged = 0
    for line in writer.stdout:
        acknowledged = int(line)
        if acknowledged >= 300:
            break
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    reopened = SQLiteStore(path)
    try:
        assert await reopened.last_seq() >= acknowledged
        assert [e.seq for e in await reopened.since(0, limit=acknowledged)] == list(
            range(1, acknowledged + 1)
        )
    finally:
        await reopened.close()


def _alert(seq: int, cascade: str, status: str, market: str = "BTC-PERP") -> CascadeAlert:
    """Alert ``seq`` of cascade ``cascade``: its totals and update time grow with ``seq``."""
    return stored_alert(
        seq,
        id=cascade,
        status=status,
        market=market,
        total_usd=5_000_000.0 + seq,
        events=40 + seq,
        updated_at=T0 + seq * 1_000,
        duration_s=float(seq),
        exchanges=("binance_usdm", "bybit"),
        message=f"{market} long cascade {status}",
    )


async def test_cascades_share_the_seq_space_and_resume_in_order(store: Store) -> None:
    await store.append([_event(1), _event(2), _event(4)])
    alerts = [_alert(3, "c1", "started"), _alert(5, "c1", "updated")]
    await store.append_cascades(alerts)
    await store.append_cascades(alerts[:1])  # a replayed alert is stored once
    assert await store.last_seq() == 5
    assert await store.cascades_since(0) == alerts
    assert await store.cascades_since(3) == alerts[1:]
    assert await store.cascades_since(5) == []
    assert [e.seq for e in await store.since(2)] == [4]


async def test_cascades_list_the_latest_state_of_each_filtered(store: Store) -> None:
    await store.append_cascades(
        [
            _alert(1, "btc", "started"),
            _alert(2, "eth", "started", market="ETH-PERP"),
            _alert(3, "btc", "updated"),
            _alert(4, "eth", "exhausted", market="ETH-PERP"),
            _alert(5, "sol", "started", market="SOL-PERP"),
        ]
    )
    latest = await store.cascades()
    assert [(a.id, a.status, a.seq) for a in latest] == [
        ("sol", "started", 5),
        ("eth", "exhausted", 4),
        ("btc", "updated", 3),
    ]
    assert [a.id for a in await store.cascades(active=True)] == ["sol", "btc"]
    assert [a.id for a in await store.cascades(active=False)] == ["eth"]
    assert [a.id for a in await store.cascades(markets=("BTC-PERP", "ETH-PERP"))] == ["eth", "btc"]
    assert [a.id for a in await store.cascades(limit=1)] == ["sol"]
    assert latest[2] == _alert(3, "btc", "updated")


def _oi(ts: int, market: str = "BTC-PERP", usd: float = 1e9, mark: float = 0.0) -> OpenInterest:
    return OpenInterest(ts=ts, market=market, open_interest_usd=usd, mark_price=mark)


async def test_open_interest_keeps_the_latest_row_per_market_and_minute(store: Store) -> None:
    eth = "ETH-PERP"
    await store.append_open_interest(
        [_oi(T0 + 1_000, usd=1.0), _oi(T0 + 30_000, usd=2.0), _oi(T0 + 5_000, eth, usd=3.0)]
    )
    # A later batch: a later row of the same minute replaces, an earlier one does not.
    await store.append_open_interest([_oi(T0 + 50_000, usd=4.0), _oi(T0 + 2_000, eth, usd=5.0)])
    await store.append_open_interest([_oi(T0 + 60_000, usd=6.0), _oi(T0 + 59_999, eth, 0.0)])
    assert await store.open_interest(0, T0 + 120_000) == [
        _oi(T0 + 50_000, usd=4.0),
        _oi(T0 + 59_999, eth, usd=0.0),  # 0 is kept: it tells the engine to forget
        _oi(T0 + 60_000, usd=6.0),  # the next minute is a row of its own
    ]
    await store.append_open_interest([])


async def test_open_interest_keeps_the_mark_of_the_row_that_stays(store: Store) -> None:
    await store.append_open_interest([_oi(T0 + 1_000, mark=100.0), _oi(T0 + 2_000, mark=0.0)])
    await store.append_open_interest([_oi(T0 + 40_000, mark=101.5), _oi(T0 + 30_000, mark=99.0)])
    assert await store.open_interest(0, 2**62) == [_oi(T0 + 40_000, mark=101.5)]


async def test_sqlite_written_before_marks_were_kept_reads_them_as_zero(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    writer = SQLiteStore(path)
    # The table of an older release: no mark column.
    writer._writer.executescript(
        "DROP TABLE open_interest; CREATE TABLE open_interest (minute INTEGER NOT NULL, "
        "market TEXT NOT NULL, ts INTEGER NOT NULL, open_interest_usd REAL NOT NULL, "
        "PRIMARY KEY (minute, market)) WITHOUT ROWID;"
    )
    writer._writer.execute(
        "INSERT INTO open_interest VALUES (?, ?, ?, ?)", (T0, "BTC-PERP", T0 + 5, 1e9)
    )
    await writer.close()
    reader = SQLiteStore(path, read_only=True)  # may not add the column: reads 0
    try:
        assert await reader.open_interest(0, 2**62) == [_oi(T0 + 5)]
    finally:
        await reader.close()
    upgraded = SQLiteStore(path)  # adds it
    try:
        await upgraded.append_open_interest([_oi(T0 + 60_000, mark=100.0)])
        assert await upgraded.open_interest(0, 2**62) == [_oi(T0 + 5), _oi(T0 + 60_000, mark=100.0)]
    finally:
        await upgraded.close()


async def test_postgres_written_before_marks_were_kept_gains_the_column() -> None:
    dsn = await _empty_postgres()
    connection = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    async with connection:
        await connection.execute(
            "CREATE TABLE open_interest (minute bigint NOT NULL, market text NOT NULL, "
            "ts bigint NOT NULL, open_interest_usd float8 NOT NULL, PRIMARY KEY (minute, market))"
        )
        await connection.execute(
            "INSERT INTO open_interest VALUES (%s, %s, %s, %s)", (T0, "BTC-PERP", T0 + 5, 1e9)
        )
    store = await open_store(dsn)
    try:
        await store.append_open_interest([_oi(T0 + 60_000, mark=100.0)])
        assert await store.open_interest(0, 2**62) == [_oi(T0 + 5), _oi(T0 + 60_000, mark=100.0)]
    finally:
        await store.close()


async def test_open_interest_reads_a_time_range_in_time_order_in_pages(store: Store) -> None:
    markets = ["SOL-PERP", "BTC-PERP", "ETH-PERP"]
    rows = [
        _oi(T0 + minute * 60_000 + offset, market, usd=float(minute * 10 + k))
        for minute in range(6)
        for k, (market, offset) in enumerate(zip(markets, (7_000, 7_000, 3_000), strict=True))
    ]
    await store.append_open_interest(rows[::-1])  # stored order is not read order
    ordered = sorted(rows, key=lambda row: (row.ts, row.market))
    assert ordered != rows  # the order is the store's doing, not the input's
    assert await store.open_interest(0, 2**62) == ordered
    # Bounds are on ts, not on the minute: [start, end) cuts inside minutes.
    start, end = T0 + 60_000 + 5_000, T0 + 4 * 60_000 + 7_000
    inside = [row for row in ordered if start <= row.ts < end]
    assert inside[0].ts == T0 + 60_000 + 7_000
    assert inside[-1].ts == T0 + 4 * 60_000 + 3_000
    pages: list[list[OpenInterest]] = []
    after = None
    while page := await store.open_interest(start, end, after=after, limit=2):
        pages.append(page)
        after = page[-1]
    # Pages of 2 split the two markets sharing a ts: the cursor is (ts, market), not ts.
    assert [row for page in pages for row in page] == inside
    assert all(len(page) == 2 for page in pages[:-1])
    assert await store.open_interest(end, end) == []


async def test_read_only_sqlite_reads_open_interest_and_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    writer = SQLiteStore(path)
    await writer.append_open_interest([_oi(T0), _oi(T0 + 60_000)])
    reader = SQLiteStore(path, read_only=True)
    try:
        assert await reader.open_interest(0, 2**62) == [_oi(T0), _oi(T0 + 60_000)]
        with pytest.raises(PermissionError, match="opened read-only: cannot append"):
            await reader.append_open_interest([_oi(T0 + 120_000)])
    finally:
        await reader.close()
        await writer.close()


async def test_read_only_sqlite_written_before_open_interest_has_none(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    writer = SQLiteStore(path)
    await writer.append([_event(1)])
    writer._writer.execute("DROP TABLE open_interest")  # the schema of an older release
    await writer.close()
    reader = SQLiteStore(path, read_only=True)
    try:
        assert await reader.open_interest(0, 2**62) == []
        assert await reader.since(0) == [_event(1)]
    finally:
        await reader.close()


async def test_open_store_reads_the_url_scheme(tmp_path: Path) -> None:
    for url in (f"sqlite://{tmp_path / 'a.sqlite'}", f"sqlite:{tmp_path / 'b.sqlite'}"):
        backend = await open_store(url)
        assert isinstance(backend, SQLiteStore)
        assert Path(backend.path).parent == tmp_path
        await backend.close()
    plain = await open_store(str(tmp_path / "c.sqlite"))
    assert isinstance(plain, SQLiteStore)
    await plain.close()
    assert (tmp_path / "c.sqlite").exists()
    with pytest.raises(ValueError, match="unknown scheme 'mysql'"):
        await open_store("mysql://localhost/db")


# -- PostgreSQL specifics -----------------------------------------------------------------------


async def test_postgres_market_query_uses_an_index() -> None:
    store = await PostgresStore.connect(await _empty_postgres())
    try:
        # Enough rows, with the market rare, that a table scan would be the wrong plan.
        markets = [f"M{i}-PERP" for i in range(100)]
        await store.append(
            [_event(i, id=f"bulk:{i}", market=markets[i % 100]) for i in range(1, 20_001)]
        )
        connection = await psycopg.AsyncConnection.connect(store.url, autocommit=True)
        async with connection:
            await connection.execute("ANALYZE liquidations")
        plan = await store.explain(Query(markets=("M7-PERP",), limit=50))
        assert "liquidations_market_seq" in plan, plan
        page = await store.query(Query(markets=("M7-PERP",), limit=50))
        assert len(page.events) == 50
        assert all(e.market == "M7-PERP" for e in page.events)
        assert page.events[0].seq == 19_907
    finally:
        await store.close()


async def test_postgres_history_by_time_walks_the_ts_index() -> None:
    """order=ts walks the ts index backwards, from the cursor's ts, sorting only the events
    of one ts among themselves (an incremental sort), never every matching row."""
    store = await PostgresStore.connect(await _empty_postgres())
    try:
        await store.append([_event(i, id=f"bulk:{i}") for i in range(1, 20_001)])
        connection = await psycopg.AsyncConnection.connect(store.url, autocommit=True)
        async with connection:
            await connection.execute("ANALYZE liquidations")
        for query in (
            Query(order="ts", limit=20),
            Query(order="ts", limit=20, before_key=(T0 + 5_000_000, 5_000)),
        ):
            plan = await store.explain(query)
            assert "Index Scan Backward using liquidations_ts" in plan, plan
            assert re.search(r"(?<!Incremental )Sort  \(", plan) is None, plan
    finally:
        await store.close()


async def test_postgres_second_sequencer_fails_loudly_on_a_taken_seq() -> None:
    store = await PostgresStore.connect(await _empty_postgres())
    try:
        await store.append([_event(1)])
        with pytest.raises(psycopg.errors.UniqueViolation):
            await store.append([_event(1, id="other-node:1")])
        assert await store.since(0) == [_event(1)]  # the failed batch left nothing behind
        assert await store.append([_event(2)]) == [_event(2)]  # and the store still works
    finally:
        await store.close()


async def test_postgres_nodes_see_each_others_writes() -> None:
    dsn = await _empty_postgres()
    ingest, api = await PostgresStore.connect(dsn), await PostgresStore.connect(dsn)
    try:
        assert await api.last_seq() == 0
        await ingest.append([_event(1), _event(2)])
        await ingest.append_cascades([_alert(3, "c", "started")])
        assert await api.last_seq() == 3
        assert [e.seq for e in await api.since(0)] == [1, 2]
    finally:
        await ingest.close()
        await api.close()


_PG_WRITER = """
import asyncio, sys
from purpleflea.model import Liquidation
from purpleflea.store.postgres import PostgresStore
async def main():
    store = await PostgresStore.connect(sys.argv[1])
    seq = 0
    while True:
        seq += 1
        ts = 1700000000000 + seq
        await store.append([Liquidation(id=f"k:{seq}", seq=seq, exchange="sim", symbol="X",
            market="X-PERP", side="long", price=1.0, quantity=1.0, size_usd=1.0, ts=ts,
            received_at=ts, coverage="complete")])
        print(seq, flush=True)
asyncio.run(main())
"""


async def test_postgres_every_acknowledged_append_survives_kill_9() -> None:
    dsn = await _empty_postgres()
    writer = subprocess.Popen(
        [sys.executable, "-c", _PG_WRITER, dsn], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    acknowledged = 0
    for line in writer.stdout:
        acknowledged = int(line)
        if acknowledged >= 200:
            break
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    reopened = await PostgresStore.connect(dsn)
    try:
        assert await reopened.last_seq() >= acknowledged
        assert [e.seq for e in await reopened.since(0, limit=acknowledged)] == list(
            range(1, acknowledged + 1)
        )
    finally:
        await reopened.close()


async def test_postgres_store_survives_the_server_dropping_its_connections() -> None:
    dsn = await _empty_postgres()
    store = await PostgresStore.connect(dsn, readers=1)
    try:
        await store.append([_event(1)])
        await drop_connections(dsn, "purpleflea")
        assert await store.append([_event(2)]) == [_event(2)]
        assert [e.seq for e in await store.since(0)] == [1, 2]
    finally:
        await store.close()


async def test_postgres_reads_recover_after_the_server_was_away_for_a_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An outage longer than one read: the reader's connection dies and reconnecting fails
    too for a while. Reads fail meanwhile, and work again once the server is back (an API
    node's history and backfill had been failing for good: the pool lost its reader)."""
    dsn = await _empty_postgres()
    store = await PostgresStore.connect(dsn, readers=1)
    try:
        await store.append([_event(1)])
        await drop_connections(dsn, "purpleflea")
        reconnect = store._new_connection

        async def refused(*, autocommit: bool) -> psycopg.AsyncConnection[Any]:
            raise StoreUnavailable(f"PostgreSQL store {dsn!r}: cannot connect: refused")

        monkeypatch.setattr(store, "_new_connection", refused)
        for _ in range(3):  # the server stays away across several reads
            with pytest.raises(StoreUnavailable, match="cannot connect"):
                await store.since(0)
        monkeypatch.setattr(store, "_new_connection", reconnect)
        assert [e.seq for e in await store.since(0)] == [1]
        assert await store.last_seq() == 1
    finally:
        await store.close()


def test_sqlite_selective_filters_walk_an_index_not_the_table(tmp_path: Path) -> None:
    # At 10M events a full backwards scan costs ~1 s (bench/history.py): a big-size filter
    # must use the partial index of big events, an exchange filter its own index.
    from purpleflea.store.sql import where as _build

    backend = SQLiteStore(tmp_path / "plan.sqlite")
    try:
        for query, index in [
            (Query(min_usd=50e6), "liquidations_big"),
            (Query(exchanges=("bybit",)), "liquidations_exchange_seq"),
            (Query(exchanges=("bybit",), start_ms=T0, end_ms=T0 + 86_400_000), "liquidations_ts"),
            (Query(markets=("BTC-PERP",), min_usd=250e3), "liquidations_big_market"),
            (Query(markets=("BTC-PERP",)), "liquidations_market_seq"),
            (Query(sides=("short",)), "liquidations_side_seq"),
            (Query(markets=("C200-PERP",), sides=("short",)), "liquidations_market_side_seq"),
        ]:
            found = _build(query, "sqlite")
            where, params = found.sql, found.params
            plan = backend._writer.execute(
                f"EXPLAIN QUERY PLAN SELECT seq FROM liquidations{where} ORDER BY seq DESC",
                params,
            ).fetchall()
            assert index in str(plan), (query, plan)
    finally:
        backend._writer.close()


def test_sqlite_a_big_min_usd_on_a_market_and_side_walks_the_big_events(tmp_path: Path) -> None:
    # The (market, side, seq) index made SQLite walk every event of the market's side and
    # check each row's size in the table: 5-11 ms of CPU a page at 10M events (a $250k page of
    # one side, bench/history.py), where the index of big events holds the side: 0.3 ms.
    from purpleflea.store.sql import history_page

    backend = SQLiteStore(tmp_path / "plan.sqlite")
    try:
        query = Query(markets=("BTC-PERP",), sides=("short",), min_usd=250e3)
        page = history_page(backend._select, query, "sqlite")
        plan = backend._writer.execute(f"EXPLAIN QUERY PLAN {page.sql}", page.params).fetchall()
        assert "liquidations_big_market" in str(plan), plan
    finally:
        backend._writer.close()


async def test_hourly_aggregates_read_the_hourly_rollup_and_match_the_events(
    tmp_path: Path,
) -> None:
    backend = SQLiteStore(tmp_path / "hourly.sqlite")
    try:
        hour = 3_600_000
        start = T0 - T0 % hour
        events = [_event(i, ts=start + i * 97_000, size_usd=1_000.0 + i) for i in range(1, 200)]
        await backend.append(events)
        query = Query(markets=("BTC-PERP",), start_ms=start, end_ms=start + 6 * hour)
        from_rollup = await backend.aggregate("1h", "side", query)
        # The same question answered from the events themselves (a size filter forces it).
        from_events = await backend.aggregate(
            "1h", "side", msgspec.structs.replace(query, min_usd=1e-9)
        )
        assert from_rollup == from_events
        assert sum(b.count for b in from_rollup) == sum(
            1 for e in events if e.market == "BTC-PERP" and e.ts < start + 6 * hour
        )
        # A store written before the hourly rollup existed is backfilled on open.
        backend._writer.execute("DELETE FROM rollup_1h")
        assert await backend.aggregate("1h", "side", query) == []  # it reads rollup_1h
        reopened = SQLiteStore(tmp_path / "hourly.sqlite")
        assert await reopened.aggregate("1h", "side", query) == from_rollup
        await reopened.close()
    finally:
        await backend.close()


def _sqlite_indexes(store: SQLiteStore) -> set[str]:
    rows = store._writer.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'liquidations'"
    )
    return {row[0] for row in rows}


async def test_sqlite_bulk_load_into_an_empty_store_builds_its_indexes_at_the_end(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "bulk.sqlite")
    try:
        every = _sqlite_indexes(store)
        assert "liquidations_market_seq" in every
        with store.deferred_indexes() as deferred:
            assert deferred
            # The id's uniqueness (the dedupe) and the indexes appended at their ends are kept
            # while loading; the per-market ones are built at the end.
            assert _sqlite_indexes(store) == every - {
                "liquidations_market_seq",
                "liquidations_market_side_seq",
            }
            await store.append([_event(seq) for seq in range(1, 101)])
            assert await store.append([_event(7)]) == []  # still deduplicated by id
        assert _sqlite_indexes(store) == every
        page = await store.query(Query(markets=("ETH-PERP",), limit=500))
        assert [e.seq for e in page.events] == [s for s in range(100, 0, -1) if s % 3 == 0]
        # A store that holds events keeps its indexes: rebuilding them costs more than it saves.
        with store.deferred_indexes() as deferred:
            assert not deferred
            assert _sqlite_indexes(store) == every
    finally:
        await store.close()


async def test_sqlite_bulk_load_that_fails_still_leaves_the_indexes(tmp_path: Path) -> None:
    path = tmp_path / "bulk.sqlite"
    store = SQLiteStore(path)
    every = _sqlite_indexes(store)
    try:

        async def broken_loader() -> None:
            with store.deferred_indexes():
                await store.append([_event(1)])
                raise RuntimeError("loader broke")

        with pytest.raises(RuntimeError, match="loader broke"):
            await broken_loader()
        assert _sqlite_indexes(store) == every
        # A loader killed mid-load leaves indexes dropped: the next open creates them.
        store._writer.execute("DROP INDEX liquidations_ts")
    finally:
        await store.close()
    reopened = SQLiteStore(path)
    try:
        assert _sqlite_indexes(reopened) == every
    finally:
        await reopened.close()


_OLD_SCHEMA = """
CREATE TABLE liquidations (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
    exchange TEXT NOT NULL, symbol TEXT NOT NULL, market TEXT NOT NULL, side TEXT NOT NULL,
    price REAL NOT NULL, quantity REAL NOT NULL, size_usd REAL NOT NULL, ts INTEGER NOT NULL,
    received_at INTEGER NOT NULL, cascade_score INTEGER NOT NULL);
CREATE TABLE rollup_1m (minute INTEGER NOT NULL, market TEXT NOT NULL, exchange TEXT NOT NULL,
    side TEXT NOT NULL, count INTEGER NOT NULL, size_usd REAL NOT NULL,
    PRIMARY KEY (market, minute, exchange, side)) WITHOUT ROWID;
CREATE TABLE cascades (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, status TEXT NOT NULL,
    market TEXT NOT NULL, side TEXT NOT NULL, updated_at INTEGER NOT NULL, body BLOB NOT NULL);
INSERT INTO liquidations VALUES (1, 'a', 'binance_usdm', 'BTCUSDT', 'BTC-PERP', 'long', 1.0,
    1.0, 10.0, 1700000040000, 1700000040000, 0);
INSERT INTO liquidations VALUES (2, 'b', 'bybit', 'BTCUSDT', 'BTC-PERP', 'long', 1.0, 1.0,
    20.0, 1700000040000, 1700000040000, 0);
INSERT INTO rollup_1m VALUES (1700000040000, 'BTC-PERP', 'binance_usdm', 'long', 1, 10.0);
INSERT INTO rollup_1m VALUES (1700000040000, 'BTC-PERP', 'bybit', 'long', 1, 20.0);
"""


async def test_a_store_written_before_coverage_reads_each_events_exchange_coverage(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite"
    connection = sqlite3.connect(path)
    connection.executescript(_OLD_SCHEMA)
    connection.close()
    # Read-only (export of an old file): derived from the exchange, the file untouched.
    reader = SQLiteStore(path, read_only=True)
    assert [(e.exchange, e.coverage) for e in await reader.since(0)] == [
        ("binance_usdm", "snapshot"),
        ("bybit", "complete"),
    ]
    await reader.close()
    backend = SQLiteStore(path)
    try:
        events = await backend.since(0)
        assert [e.coverage for e in events] == ["snapshot", "complete"]
        page = await backend.query(Query(coverages=("complete",)))
        assert [e.id for e in page.events] == ["b"]
        buckets = await backend.aggregate("1h", "exchange", Query(coverages=("snapshot",)))
        assert [b.group for b in buckets] == ["binance_usdm"]
        assert buckets[0].est_size_usd >= buckets[0].size_usd == 10.0
    finally:
        await backend.close()


async def test_a_postgres_store_written_before_coverage_is_migrated() -> None:
    dsn = await _empty_postgres()
    connection = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    async with connection:
        old = _OLD_SCHEMA.replace("INTEGER", "bigint").replace("REAL", "float8")
        old = old.replace(" WITHOUT ROWID", "").replace("BLOB", "bytea")
        for statement in old.split(";"):
            if statement.strip():
                await connection.execute(statement)
    backend = await PostgresStore.connect(dsn)
    try:
        events = await backend.since(0)
        assert [e.coverage for e in events] == ["snapshot", "complete"]
        buckets = await backend.aggregate("1h", "exchange", Query(coverages=("complete",)))
        assert [(b.group, b.count, b.est_count) for b in buckets] == [("bybit", 1, 1)]
    finally:
        await backend.close()
    reopened = await PostgresStore.connect(dsn)  # and opens again, migrated
    await reopened.close()


async def test_aggregates_add_what_a_snapshot_feed_hid_and_only_that(store: Store) -> None:
    from purpleflea.engine.coverage import PRIOR_EVENTS_PER_SECOND

    hour = T0 - T0 % 3_600_000
    # Binance (snapshot) alone on ETH: five busy seconds, no complete venue -> the prior.
    # Bybit (complete) on BTC: nothing is added to it.
    binance = [
        _event(i, exchange="binance_usdm", market="ETH-PERP", ts=hour + i * 1_000, size_usd=100.0)
        for i in range(1, 6)
    ]
    bybit = [
        _event(i, exchange="bybit", market="BTC-PERP", ts=hour + 7_000, size_usd=50.0)
        for i in range(6, 9)
    ]
    await store.append([*binance, *bybit])
    window = Query(start_ms=hour, end_ms=hour + 3_600_000)
    rows = {b.group: b for b in await store.aggregate("1h", "market", window)}
    assert (rows["ETH-PERP"].count, rows["ETH-PERP"].size_usd) == (5, 500.0)
    assert rows["ETH-PERP"].est_count == round(5 * PRIOR_EVENTS_PER_SECOND)
    assert rows["ETH-PERP"].est_size_usd == pytest.approx(500.0 * PRIOR_EVENTS_PER_SECOND)
    assert (rows["BTC-PERP"].est_count, rows["BTC-PERP"].est_size_usd) == (3, 150.0)
    complete = Query(start_ms=hour, end_ms=hour + 3_600_000, coverages=("complete",))
    only = await store.aggregate("1h", "exchange", complete)
    assert [(b.group, b.count, b.est_count) for b in only] == [("bybit", 3, 3)]
    # The same through the events (min_usd reads them and counts their distinct seconds).
    big = Query(start_ms=hour, end_ms=hour + 3_600_000, min_usd=1.0)
    by_events = {b.group: b for b in await store.aggregate("1h", "market", big)}
    assert by_events["ETH-PERP"].est_size_usd == pytest.approx(rows["ETH-PERP"].est_size_usd)


async def test_each_bucket_says_whether_its_estimate_is_calibrated_or_the_prior(
    store: Store,
) -> None:
    """``est_*`` over a snapshot-only history is the flat 2x prior, and a bucket did not say
    so: a calibrated estimate and a guess looked alike (docs/coverage.md)."""
    day = T0 - T0 % 86_400_000
    first, second = day + 2 * 3_600_000, day + 3 * 3_600_000
    seq = iter(range(1, 1_000))

    def events(exchange: str, market: str, hour: int, n: int) -> list[Liquidation]:
        return [
            _event(next(seq), exchange=exchange, market=market, ts=hour + i * 1_000, size_usd=10.0)
            for i in range(n)
        ]

    await store.append(
        [
            *events("binance_usdm", "BTC-PERP", first, 4),  # a complete venue beside it
            *events("bybit", "BTC-PERP", first, 6),
            *events("binance_usdm", "ETH-PERP", first, 3),  # alone: the prior
            *events("bybit", "SOL-PERP", first, 5),  # complete only: nothing estimated
            *events("binance_usdm", "XRP-PERP", first, 2),  # calibrated in the first hour,
            *events("bybit", "XRP-PERP", first, 2),
            *events("binance_usdm", "XRP-PERP", second, 2),  # the prior in the second
        ]
    )
    window = Query(start_ms=day, end_ms=day + 86_400_000)
    hourly = {"BTC-PERP": "complete_venues", "ETH-PERP": "prior_only", "SOL-PERP": "none"}
    for _ in range(2):  # estimated, then from the stored factors
        by_hour = {
            (b.start_ms, b.group): b.est_calibration
            for b in await store.aggregate("1h", "market", window)
        }
        assert by_hour == {
            **{(first, market): label for market, label in hourly.items()},
            (first, "XRP-PERP"): "complete_venues",
            (second, "XRP-PERP"): "prior_only",
        }
        by_day = {b.group: b for b in await store.aggregate("1d", "market", window)}
        assert {m: b.est_calibration for m, b in by_day.items()} == {
            **hourly,
            "XRP-PERP": "mixed",
        }
        assert by_day["ETH-PERP"].est_count > by_day["ETH-PERP"].count  # the prior added
    # Minute rollups and events (min_usd) say the same; a filter does not change it (the
    # hour's calibration reads every venue of the market).
    minutes = await store.aggregate("1m", "market", Query(start_ms=first, end_ms=second))
    assert {b.group: b.est_calibration for b in minutes if b.start_ms == first} == hourly | {
        "XRP-PERP": "complete_venues"
    }
    sized = Query(start_ms=day, end_ms=day + 86_400_000, min_usd=1.0)
    assert {b.group: b.est_calibration for b in await store.aggregate("1d", "market", sized)} == {
        **hourly,
        "XRP-PERP": "mixed",
    }
    binance_btc = Query(
        start_ms=day, end_ms=day + 86_400_000, exchanges=("binance_usdm",), markets=("BTC-PERP",)
    )
    [alone] = await store.aggregate("1d", "exchange", binance_btc)
    assert (alone.group, alone.est_calibration) == ("binance_usdm", "complete_venues")
    by_exchange = {
        b.group: b.est_calibration for b in await store.aggregate("1d", "exchange", window)
    }
    assert by_exchange == {"binance_usdm": "mixed", "bybit": "none"}


async def test_grouped_calibration_is_read_from_the_stored_factors(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By exchange or side, every closed hour's ``est_calibration`` was read again from the
    rollups (a probe of each market-hour's complete venues: 2.3x the aggregate's CPU). The
    stored factors carry it now; rows stored without it (an older node) are read as before."""
    import purpleflea.store.aggregate as aggregates

    day = T0 - T0 % 86_400_000
    first, second = day + 2 * 3_600_000, day + 3 * 3_600_000
    seq = iter(range(1, 1_000))

    def events(exchange: str, market: str, hour: int, n: int, side: str) -> list[Liquidation]:
        return [
            _event(next(seq), exchange=exchange, market=market, ts=hour + i * 1_000, side=side)
            for i in range(n)
        ]

    await store.append(
        [
            *events("binance_usdm", "BTC-PERP", first, 4, "long"),  # calibrated by bybit
            *events("bybit", "BTC-PERP", first, 6, "short"),
            *events("binance_usdm", "ETH-PERP", first, 3, "short"),  # alone: the prior
            *events("binance_usdm", "XRP-PERP", second, 2, "long"),  # alone: the prior
        ]
    )
    window = Query(start_ms=day, end_ms=day + 86_400_000)
    reads: list[Query] = []
    counts = aggregates._prior_counts

    async def counted(*args: Any, **kwargs: Any) -> dict[tuple[int, str], tuple[int, int]]:
        reads.append(args[3])
        return await counts(*args, **kwargs)

    monkeypatch.setattr(aggregates, "_prior_counts", counted)
    want = {
        ("1d", "exchange"): {"binance_usdm": "mixed", "bybit": "none"},
        ("1d", "side"): {"long": "mixed", "short": "prior_only"},
        ("1h", "side"): {
            (first, "long"): "complete_venues",
            (first, "short"): "prior_only",
            (second, "long"): "prior_only",
        },
    }

    async def labels() -> dict[tuple[str, str], dict[Any, str]]:
        return {
            ("1d", "exchange"): {
                b.group: b.est_calibration for b in await store.aggregate("1d", "exchange", window)
            },
            ("1d", "side"): {
                b.group: b.est_calibration for b in await store.aggregate("1d", "side", window)
            },
            ("1h", "side"): {
                (b.start_ms, b.group): b.est_calibration
                for b in await store.aggregate("1h", "side", window)
                if b.est_calibration != "none"
            },
        }

    assert await labels() == want  # estimated (and the factors stored) on the way
    assert reads  # the first answers read the rollups: no factor was stored yet
    reads.clear()
    assert await labels() == want
    assert reads == []  # every hour's factors stored: their rows gave the calibration
    await _execute(store, "UPDATE coverage_factor SET shown_events = NULL, prior_events = NULL")
    assert await labels() == want
    assert reads  # rows without it: the rollups were read, as before


async def test_an_estimate_does_not_depend_on_how_the_events_were_batched(store: Store) -> None:
    # A live feed appends every ~50 ms, so one busy second of a complete venue arrives over
    # several batches: counted once per batch, the minute looked less bursty than it was and
    # the estimate hid less behind the throttle. The same burst on two markets, one appended
    # whole and one event by event, must get the same estimate.
    hour = T0 - T0 % 3_600_000

    def burst(market: str, first_seq: int) -> list[Liquidation]:
        # Bybit (complete): 12 events in 2 seconds; Binance (snapshot): 2 seconds shown.
        return [
            _event(
                first_seq + i,
                exchange="bybit" if i < 12 else "binance_usdm",
                market=market,
                ts=hour + 1_000 * (i % 2) + i,
                size_usd=100.0,
            )
            for i in range(14)
        ]

    await store.append(burst("BTC-PERP", 1))
    for event in burst("ETH-PERP", 101):
        await store.append([event])
    window = Query(start_ms=hour, end_ms=hour + 3_600_000)
    rows = {b.group: b for b in await store.aggregate("1h", "market", window)}
    assert rows["ETH-PERP"].count == rows["BTC-PERP"].count == 14
    assert rows["BTC-PERP"].est_size_usd > 1_400.0
    assert rows["ETH-PERP"].est_size_usd == pytest.approx(rows["BTC-PERP"].est_size_usd)
    assert rows["ETH-PERP"].est_count == rows["BTC-PERP"].est_count


async def _execute(store: Store, sql: str) -> list[tuple[object, ...]]:
    """Run ``sql`` on the store's database from outside the store (as another process would)."""
    if isinstance(store, SQLiteStore):
        connection = sqlite3.connect(store.path)
        try:
            rows = connection.execute(sql).fetchall()
            connection.commit()
            return rows
        finally:
            connection.close()
    assert isinstance(store, PostgresStore)
    async with await psycopg.AsyncConnection.connect(store.url, autocommit=True) as pg:
        cursor = await pg.execute(sql)  # type: ignore[arg-type]
        return await cursor.fetchall() if cursor.description else []


async def _tamper(store: Store) -> None:
    """Every stored factor of the burst below is made 3 (each Binance row adds 2 events)."""
    await _execute(
        store,
        "UPDATE coverage_factor SET f_usd = 3.0, f_events = 3.0, "
        "extra_usd = 2.0 * 100.0, extra_events = 2.0 WHERE exchange <> ''",
    )
    await _execute(
        store,
        "UPDATE coverage_factor SET extra_usd = 400.0, extra_events = 4.0 WHERE exchange = ''",
    )


async def test_a_closed_hours_coverage_factors_are_kept_until_events_land_in_it(
    store: Store,
) -> None:
    hour = T0 - T0 % 3_600_000  # long over
    # A burst: Bybit (complete) 6 events in 2 seconds, Binance (snapshot) 2 seconds shown.
    btc = {"market": "BTC-PERP", "size_usd": 100.0}
    events = [
        _event(i, exchange="bybit" if i < 7 else "binance_usdm", ts=hour + 1_000 * (i % 2), **btc)
        for i in range(1, 9)
    ]
    await store.append(events)
    window = Query(markets=("BTC-PERP",), start_ms=hour, end_ms=hour + 3_600_000)
    first = (await store.aggregate("1h", "market", window))[0]
    assert first.est_size_usd > first.size_usd == 800.0
    stored = await _execute(
        store, "SELECT exchange, side, f_usd, extra_usd, covers FROM coverage_factor"
    )
    # One row per snapshot rollup row (the two Binance events: one long, one short), and the
    # market-hour's sum of them.
    factor = 1 + (first.est_size_usd - 800.0) / 200.0
    extra = first.est_size_usd - 800.0
    assert sorted(stored) == [
        ("", "", 1.0, pytest.approx(extra), 2),
        ("binance_usdm", "long", pytest.approx(factor), pytest.approx(extra / 2), 1),
        ("binance_usdm", "short", pytest.approx(factor), pytest.approx(extra / 2), 1),
    ]
    # The aggregate answers from the stored factor: changed behind its back, it shows.
    await _tamper(store)
    cached = (await store.aggregate("1h", "market", window))[0]
    assert cached.est_size_usd == pytest.approx(600.0 + 200.0 * 3.0)
    assert cached.est_count == 6 + 2 * 3
    # ... filtered, from the per-row additions.
    longs = Query(markets=("BTC-PERP",), sides=("long",), start_ms=hour, end_ms=hour + 3_600_000)
    assert (await store.aggregate("1h", "market", longs))[0].est_size_usd == pytest.approx(
        500.0 + 100.0 * 3.0  # Bybit: 5 longs; Binance: 1
    )
    # Minute buckets and event reads use the hour's factor too.
    minutes = await store.aggregate("1m", "market", window)
    assert sum(b.est_size_usd for b in minutes) == pytest.approx(1_200.0)
    # Another market's events, or events a day or more before, leave it be; events in the
    # hours before it (its share estimate's window) drop it.
    await store.append([_event(20, exchange="bybit", market="ETH-PERP", ts=hour + 60_000)])
    await store.append([_event(21, exchange="bybit", ts=hour - 24 * 3_600_000, **btc)])
    assert len(await _execute(store, "SELECT exchange FROM coverage_factor")) == 3
    await store.append([_event(22, exchange="bybit", ts=hour - 3 * 3_600_000, **btc)])
    assert await _execute(store, "SELECT exchange FROM coverage_factor") == []
    await store.aggregate("1h", "market", window)
    await _tamper(store)
    # An event landing in that hour (an import, a repaired gap) drops the factor: recomputed.
    await store.append([_event(9, exchange="bybit", ts=hour + 30_000, **btc)])
    assert await _execute(store, "SELECT exchange FROM coverage_factor") == []
    again = (await store.aggregate("1h", "market", window))[0]
    [(factor,), _] = await _execute(store, "SELECT f_usd FROM coverage_factor WHERE exchange <> ''")
    assert factor != 3.0
    assert (again.size_usd, again.est_size_usd) == (900.0, pytest.approx(700.0 + 200.0 * factor))


async def test_a_factor_table_without_the_calibration_columns_gets_them_on_open(
    store: Store,
) -> None:
    # A store written by version 5 has coverage_factor without shown_events/prior_events;
    # CREATE TABLE IF NOT EXISTS leaves it so, and the grouped read of them would fail.
    hour = T0 - T0 % 3_600_000
    await store.append(
        [_event(i, exchange="binance_usdm", market="ETH-PERP", ts=hour + i) for i in (1, 2)]
    )
    window = Query(start_ms=hour, end_ms=hour + 3_600_000)
    await _execute(store, "ALTER TABLE coverage_factor DROP COLUMN shown_events")
    await _execute(store, "ALTER TABLE coverage_factor DROP COLUMN prior_events")
    await _execute(store, f"UPDATE coverage_factor_method SET version = {METHOD_VERSION - 1}")
    await store.close()
    url = store.path if isinstance(store, SQLiteStore) else store.url
    reopened = await open_store(f"sqlite://{url}" if isinstance(store, SQLiteStore) else url)
    try:
        for _ in range(2):  # estimated and stored, then from the stored rows
            [bucket] = await reopened.aggregate("1h", "side", window)
            assert bucket.est_calibration == "prior_only"
        assert await _execute(
            reopened, "SELECT shown_events, prior_events FROM coverage_factor"
        ) == [
            (2, 2),
            (2, 2),
        ]
    finally:
        await reopened.close()


async def test_factors_another_estimate_method_computed_are_dropped_on_open(
    store: Store,
) -> None:
    hour = T0 - T0 % 3_600_000
    btc = {"market": "BTC-PERP", "size_usd": 100.0}
    await store.append(
        [
            _event(
                i, exchange="bybit" if i < 7 else "binance_usdm", ts=hour + 1_000 * (i % 2), **btc
            )
            for i in range(1, 9)
        ]
    )
    window = Query(markets=("BTC-PERP",), start_ms=hour, end_ms=hour + 3_600_000)
    first = (await store.aggregate("1h", "market", window))[0]
    assert await _execute(store, "SELECT version FROM coverage_factor_method") == [
        (METHOD_VERSION,)
    ]
    await _tamper(store)
    # Reopened by code of the same method: the stored (tampered) factors are served.
    await store.close()
    url = store.path if isinstance(store, SQLiteStore) else store.url
    same = await open_store(f"sqlite://{url}" if isinstance(store, SQLiteStore) else url)
    try:
        assert (await same.aggregate("1h", "market", window))[0].est_size_usd == pytest.approx(
            1_200.0
        )
        # Made by another version of the method: dropped on open, recomputed on use.
        await _execute(same, f"UPDATE coverage_factor_method SET version = {METHOD_VERSION - 1}")
    finally:
        await same.close()
    fresh = await open_store(f"sqlite://{url}" if isinstance(store, SQLiteStore) else url)
    try:
        assert await _execute(fresh, "SELECT exchange FROM coverage_factor") == []
        again = (await fresh.aggregate("1h", "market", window))[0]
        assert again.est_size_usd == pytest.approx(first.est_size_usd)
        assert await _execute(fresh, "SELECT version FROM coverage_factor_method") == [
            (METHOD_VERSION,)
        ]
    finally:
        await fresh.close()


async def test_the_open_hours_coverage_factors_are_not_kept(store: Store) -> None:
    now = now_ms()
    hour = now - now % 3_600_000
    btc = {"market": "BTC-PERP", "size_usd": 100.0, "ts": now - 1}
    await store.append(
        [_event(i, exchange="bybit" if i > 1 else "binance_usdm", **btc) for i in range(1, 5)]
    )
    window = Query(start_ms=hour, end_ms=hour + 3_600_000)
    [bucket] = await store.aggregate("1h", "market", window)
    assert bucket.est_size_usd > bucket.size_usd
    assert await _execute(store, "SELECT exchange FROM coverage_factor") == []


async def test_sqlite_lists_the_ids_that_start_with_a_prefix(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "history.sqlite")
    try:
        ids = ["b:X:1:Buy:2:3", "b:X:1:Buy:2:3.0#2", "b:X:10:Buy:2:3", "b:X:1:Sell:2:3", "b:X:1:"]
        await store.append([_event(seq, id=id_) for seq, id_ in enumerate(ids, 1)])
        assert sorted(store.ids_starting_with("b:X:1:Buy:")) == ids[:2]
        assert store.ids_starting_with("b:X:1:Buy:2:3#") == []
        with pytest.raises(ValueError, match="empty"):
            store.ids_starting_with("")
    finally:
        await store.close()


async def test_postgres_reads_work_at_once_after_every_pooled_reader_was_dropped() -> None:
    """PostgreSQL restarted (or a cut ended) while the node was idle: each of its pooled
    readers is dead, found so only when used. The first read after that must still work: a
    node's bus backfill failed, and lost events for its webhooks, because its second try took
    a second dead reader."""
    dsn = await _empty_postgres()
    store = await PostgresStore.connect(dsn, readers=3)
    try:
        await store.append([_event(1)])
        await drop_connections(dsn, "purpleflea")
        assert [e.seq for e in await store.since(0)] == [1]
        assert await store.last_seq() == 1
    finally:
        await store.close()


async def test_a_database_that_stops_answering_fails_a_new_connection_in_bounded_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A server that accepts and never answers (a failover, a split network): without a
    # connect timeout each new connection waited for the kernel (~130 s for a black hole).
    import asyncio
    import time

    from purpleflea.store import postgres

    monkeypatch.setattr(postgres, "CONNECT_TIMEOUT_S", 1)
    held: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # read nothing, answer nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = PostgresStore(f"postgresql://u:secret@127.0.0.1:{port}/db?sslmode=disable")
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailable, match="cannot connect") as caught:
            await asyncio.wait_for(store._new_connection(autocommit=True), timeout=20)
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
    assert time.monotonic() - started < 10
    assert "secret" not in str(caught.value)
