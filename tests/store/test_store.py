"""The storage contract, run against every backend (SQLite now; PostgreSQL joins later)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from purpleflea.model import Liquidation
from purpleflea.store import Query, Store
from purpleflea.store.sqlite import SQLiteStore

T0 = 1_700_000_040_000  # a minute boundary


def _event(seq: int, **overrides: object) -> Liquidation:
    fields: dict[str, object] = {
        "id": f"test:{seq}",
        "seq": seq,
        "exchange": "binance_usdm" if seq % 2 else "bybit",
        "symbol": "BTCUSDT",
        "market": "BTC-PERP" if seq % 3 else "ETH-PERP",
        "side": "long" if seq % 4 else "short",
        "price": 50_000.0,
        "quantity": 0.1 * seq,
        "size_usd": 5_000.0 * seq,
        "ts": T0 + seq * 1_000,
        "received_at": T0 + seq * 1_000 + 5,
        "cascade_score": seq % 11,
    }
    fields.update(overrides)
    return Liquidation(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    backend = SQLiteStore(tmp_path / "history.sqlite")
    yield backend
    await backend.close()


async def test_append_is_idempotent_by_id(store: Store) -> None:
    events = [_event(i) for i in range(1, 11)]
    assert await store.append(events) == events
    assert await store.append(events[:5]) == []
    assert await store.last_seq() == 10
    assert await store.since(0) == events


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
            received_at=ts)])
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
