"""A stream's filtered replay (``Store.replay``), against SQLite and PostgreSQL: the same events
as the stream's own Python filter, in seq order, read a bounded page at a time, and a selective
filter paying for the history it matches rather than for every stored event."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from purpleflea.bus.local import LocalBus
from purpleflea.model import Liquidation
from purpleflea.server import feed
from purpleflea.server.fanout import Fanout
from purpleflea.server.feed import client_feed
from purpleflea.server.filters import StreamFilter
from purpleflea.store import Query, Store
from purpleflea.store.factory import open_store
from purpleflea.store.replay import walk
from purpleflea.store.sql import BIG_USD, MAX_REPLAY_RANGES, replay_ranges
from purpleflea.store.sqlite import SQLiteStore
from purpleflea.venues.registry import coverage_of
from tests.events import T0, stored_alert
from tests.store.test_store import _empty_postgres

MARKETS = ("BTC-PERP", "ETH-PERP", "SOL-PERP", "DOGE-PERP", "XRP-PERP")
EXCHANGES = ("binance_usdm", "bybit", "hyperliquid")
# Sizes around every bound a filter or an index draws (SQLite's big events at 100k).
SIZES = (10.0, 999.99, 1_000.0, 50_000.0, BIG_USD - 0.01, float(BIG_USD), 250_000.0, 2e6)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    url = f"sqlite://{tmp_path / 'h.sqlite'}" if request.param == "sqlite" else None
    backend = await open_store(url or await _empty_postgres())
    yield backend
    await backend.close()


def _events(rng: random.Random, count: int) -> list[Liquidation]:
    events, seq = [], 0
    for number in range(count):
        seq += rng.choice((1, 1, 1, 2, 7))  # seqs with gaps (cascade alerts share them)
        exchange = rng.choice(EXCHANGES)
        size = rng.choice(SIZES) if rng.random() < 0.5 else rng.uniform(1, 3e6)
        events.append(
            Liquidation(
                id=f"r:{seq}",
                seq=seq,
                exchange=exchange,
                symbol="X",
                # Skewed: the first market takes most events, the last few.
                market=MARKETS[min(int(rng.expovariate(1.0)), len(MARKETS) - 1)],
                side=rng.choice(("long", "short")),
                price=1.0,
                quantity=size,
                size_usd=size,
                ts=T0 + number,
                received_at=T0 + number,
                cascade_score=0,
                coverage=coverage_of(exchange),
            )
        )
    return events


def _one_in_a_hundred_on_btc(end: int) -> list[Liquidation]:
    """Events 1..end-1, every hundredth on BTC-PERP and of $200k, the rest on ETH-PERP, $1."""
    return [
        Liquidation(
            id=f"h:{seq}",
            seq=seq,
            exchange="bybit",
            symbol="X",
            market="BTC-PERP" if seq % 100 == 0 else "ETH-PERP",
            side="long",
            price=1.0,
            quantity=1.0,
            size_usd=200_000.0 if seq % 100 == 0 else 1.0,
            ts=T0 + seq,
            received_at=T0 + seq,
            cascade_score=0,
            coverage="complete",
        )
        for seq in range(1, end)
    ]


def _subset(rng: random.Random, values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(v for v in values if rng.random() < 0.4)


def _filter(rng: random.Random) -> StreamFilter:
    markets = _subset(rng, MARKETS)
    if rng.random() < 0.1:  # more markets than the replay walks ranges for
        markets |= {f"COIN{i}-PERP" for i in range(MAX_REPLAY_RANGES)}
    return StreamFilter(
        markets=markets,
        exchanges=_subset(rng, EXCHANGES),
        sides=_subset(rng, ("long", "short")),
        coverages=_subset(rng, ("complete", "snapshot", "sampled")),
        min_usd=rng.choice((0.0, 0.0, 1_000.0, float(BIG_USD), 250_000.0, rng.choice(SIZES))),
    )


async def _replay_all(store: Store, query: Query, limit: int) -> tuple[list[Liquidation], int]:
    """Every page from the start; returns the events and the number of pages read."""
    cursor, got, pages = 0, [], 0
    while True:
        page = await store.replay(cursor, query, limit)
        pages += 1
        # A share of the page per range, one at least (a page below one entry a range reads
        # more; the stream's 1,000 is above the most ranges walked).
        assert page.examined <= max(limit, MAX_REPLAY_RANGES)
        assert all(cursor < event.seq <= page.reached for event in page.events)
        got.extend(page.events)
        if page.examined == 0:
            return got, pages
        assert page.reached > cursor
        cursor = page.reached


@pytest.mark.parametrize("seed", [1, 2])
async def test_a_filtered_replay_is_the_python_filter_of_every_event(
    store: Store, seed: int
) -> None:
    rng = random.Random(seed)
    events = _events(rng, 600)
    await store.append(events)
    for _ in range(40):
        wanted = _filter(rng)
        limit = rng.choice((1, 2, 3, 7, 50, 1000))
        got, _ = await _replay_all(store, wanted.query(), limit)
        expected = [event for event in events if wanted.wants(event)]
        assert [e.seq for e in got] == [e.seq for e in expected], (wanted, limit)
        assert got == expected


async def test_a_selective_filter_reads_the_history_it_matches(store: Store) -> None:
    # 1 % of 3,000 events on one market: 30 matches read in one page of 1,000, not three.
    events = _one_in_a_hundred_on_btc(3_001)
    await store.append(events)
    for query in (Query(markets=("BTC-PERP",)), Query(min_usd=150_000)):
        got, pages = await _replay_all(store, query, 1_000)
        assert [e.seq for e in got] == list(range(100, 3_001, 100))
        assert pages == 2, query  # the page of 30, then the empty one that ends the replay


@pytest.mark.parametrize(
    "query",
    [
        Query(markets=("BTC-PERP",)),
        Query(markets=("BTC-PERP", "ETH-PERP"), sides=("short",)),
        Query(markets=("BTC-PERP",), min_usd=250_000),
        Query(min_usd=250_000, exchanges=("bybit",)),
        Query(exchanges=("bybit", "hyperliquid")),
        Query(sides=("long",)),
        Query(coverages=("complete",)),  # no index: the seq order itself
    ],
)
def test_a_sqlite_page_walk_seeks_indexes_in_seq_order(query: Query, tmp_path: Path) -> None:
    """The page's work is what the charge says only if every range is an index seek read in
    seq order: no scan, no sort of a whole market's history (EXPLAIN QUERY PLAN)."""
    store = SQLiteStore(tmp_path / "h.sqlite")
    sql, params, _ = walk(query, "sqlite", 0, 1_000)
    plan = [row[3] for row in store._writer.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    reads = [step for step in plan if "liquidations" in step]
    assert len(reads) == len(replay_ranges(query, "sqlite")) + 1, plan  # + the last seq
    for step in reads:
        assert step.startswith("SEARCH liquidations"), plan  # a seek, never a SCAN
    assert not any("TEMP B-TREE" in step for step in plan), plan
    asyncio.run(store.close())


async def test_a_resumed_stream_is_charged_for_the_rows_its_filter_reads(tmp_path: Path) -> None:
    """The stream's replay pays a page of its account's rate per page read: 5,000 stored
    events with 50 on the wanted market cost 1 page (the matches, up to the live position:
    the replay ends there), where reading every event and filtering in Python cost 6 (and a
    replay reading on to an empty page past the store's end, 2)."""
    store = SQLiteStore(tmp_path / "h.sqlite")
    events = _one_in_a_hundred_on_btc(5_001)
    await store.append(events)
    paces = 0

    async def pace() -> None:
        nonlocal paces
        paces += 1

    bus = LocalBus()
    fanout = Fanout(bus, heartbeat_s=3600)
    fanout.start()
    wanted = StreamFilter(markets=frozenset({"BTC-PERP"}), since_seq=0)
    feed = client_feed(store, fanout.subscribe(1 << 20), wanted, start_seq=5_000, pace=pace)
    seqs = []
    started = time.process_time()
    async for item in feed:
        if item.kind == "heartbeat":
            assert item.seq == 5_000  # every stored seq was considered
            break
        seqs.append(item.seq)
    assert time.process_time() - started < 5
    assert seqs == list(range(100, 5_001, 100))
    assert paces == 1
    await feed.aclose()
    await fanout.stop()
    await store.close()


@pytest.mark.parametrize("page", [1, 3, 1_000])
async def test_a_resume_of_both_channels_merges_events_and_alerts_in_seq_order(
    store: Store, page: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Filtered events (the store's pages) and cascade alerts (filtered here) sharing one seq
    space come out merged in seq order, each once, whatever the page length; the heartbeat
    after the replay carries the store's last seq."""
    rng = random.Random(5)
    events = _events(rng, 300)
    taken = {e.seq for e in events}
    alerts = [
        stored_alert(seq, market=rng.choice(MARKETS), side=rng.choice(("long", "short")))
        for seq in range(1, max(taken) + 40)
        if seq not in taken and rng.random() < 0.5
    ]
    await store.append(events)
    await store.append_cascades(alerts)
    last = max(*taken, alerts[-1].seq)
    monkeypatch.setattr(feed, "_REPLAY_PAGE", page)
    wanted = StreamFilter(
        channels=frozenset({"liquidations", "cascades"}),
        markets=frozenset({"BTC-PERP", "SOL-PERP"}),
        sides=frozenset({"short"}),
        since_seq=0,
    )
    fanout = Fanout(LocalBus(), heartbeat_s=3600)
    fanout.start()
    got: list[int] = []
    async for item in client_feed(store, fanout.subscribe(1 << 20), wanted, start_seq=last):
        if item.kind == "heartbeat":
            assert item.seq == last
            break
        got.append(item.seq)
    expected = sorted(x.seq for x in [*events, *alerts] if wanted.wants(x))
    assert got == expected
    assert len(expected) > 20
    await fanout.stop()
