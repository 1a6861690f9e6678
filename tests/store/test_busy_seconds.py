"""A rollup's ``seconds``: the seconds that carried at least one event of its minute, market,
exchange and side (the coverage estimate's input, docs/coverage.md "Input"). A second counts
once however its events reach the store: over several batches (a live server appends every
~50 ms), from two nodes at once (PostgreSQL), late. SQLite and PostgreSQL keep the same rollups.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from purpleflea.model import Liquidation
from purpleflea.store import Store
from purpleflea.store.base import second_ranges
from purpleflea.store.postgres import PostgresStore
from purpleflea.store.sqlite import SQLiteStore
from tests.events import T0, stored_event
from tests.store.test_store import _empty_postgres

_ROLLUPS = {
    "rollup_1m": "SELECT minute, market, exchange, side, count, size_usd, seconds FROM rollup_1m "
    "ORDER BY market, minute, exchange, side",
    "rollup_1h": "SELECT hour, market, exchange, side, count, size_usd, seconds FROM rollup_1h "
    "ORDER BY market, hour, exchange, side",
}
Row = tuple[int, str, str, str, int, float, int]


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    backend: Store
    if request.param == "sqlite":
        backend = SQLiteStore(tmp_path / "history.sqlite")
    else:
        backend = await PostgresStore.connect(await _empty_postgres())
    yield backend
    await backend.close()


async def _rollup(store: Store, table: str) -> list[Row]:
    """The rollup's rows, as another process reads them."""
    if isinstance(store, SQLiteStore):
        with sqlite3.connect(store.path) as connection:
            rows = connection.execute(_ROLLUPS[table]).fetchall()
    else:
        assert isinstance(store, PostgresStore)
        async with await psycopg.AsyncConnection.connect(store.url) as pg:
            rows = await (await pg.execute(_ROLLUPS[table])).fetchall()  # type: ignore[arg-type]
    return [(int(a), b, c, d, int(n), float(usd), int(s)) for a, b, c, d, n, usd, s in rows]


def _truth(events: list[Liquidation], width_ms: int) -> list[Row]:
    """What a rollup of ``width_ms`` buckets holds for ``events`` (each id once)."""
    cells: dict[tuple[int, str, str, str], tuple[int, float, set[int]]] = {}
    seen: set[str] = set()
    for e in events:
        if e.id in seen:
            continue
        seen.add(e.id)
        key = (e.ts // width_ms * width_ms, e.market, e.exchange, e.side)
        count, usd, seconds = cells.get(key, (0, 0.0, set()))
        seconds.add(e.ts // 1000)
        cells[key] = (count + 1, usd + e.size_usd, seconds)
    rows = [(*key, n, usd, len(seconds)) for key, (n, usd, seconds) in cells.items()]
    return sorted(rows, key=lambda row: (row[1], row[0], row[2], row[3]))


def _same(got: list[Row], want: list[Row]) -> None:
    assert [row[:5] + row[6:] for row in got] == [row[:5] + row[6:] for row in want]
    assert [row[5] for row in got] == pytest.approx([row[5] for row in want], rel=1e-9)


def test_a_batchs_seconds_are_read_in_runs() -> None:
    assert second_ranges([]) == []
    assert second_ranges([7, 5, 6, 5, 9]) == [(5_000, 8_000), (9_000, 10_000)]


async def test_a_seconds_events_over_several_batches_count_it_once(store: Store) -> None:
    # One busy second of Bybit's reaches the store over four batches (a live server appends
    # every ~50 ms), the third also bringing the next second's first event; a batch that
    # repeats a stored event adds nothing. Counted per batch, the second was 4 seconds.
    second = T0 + 7_000

    def bybit(seq: int, ts: int) -> Liquidation:
        return stored_event(seq, exchange="bybit", market="ETH-PERP", side="long", ts=ts)

    batches = [
        [bybit(1, second + 10), bybit(2, second + 40)],
        [bybit(3, second + 90)],
        [bybit(4, second + 130), bybit(5, second + 1_010)],
        [bybit(6, second + 999), bybit(2, second + 40)],
    ]
    for batch in batches:
        await store.append(batch)
    events = [e for batch in batches for e in batch]
    assert await _rollup(store, "rollup_1m") == _truth(events, 60_000)
    assert [row[-1] for row in await _rollup(store, "rollup_1m")] == [2]
    assert await _rollup(store, "rollup_1h") == _truth(events, 3_600_000)


async def test_two_nodes_appending_events_of_one_second_at_once_count_it_once() -> None:
    # Scale-out: two nodes append to one database. Each round both append an event of the
    # same new second at the same moment; the second counts once: not twice (each missing
    # the other's uncommitted events), nor not at all.
    dsn = await _empty_postgres()
    one, two = await PostgresStore.connect(dsn), await PostgresStore.connect(dsn)
    rounds = 40
    try:
        for r in range(rounds):
            ts = T0 + r * 1_000

            def event(seq: int, ts: int = ts) -> Liquidation:
                return stored_event(seq, exchange="bybit", market="BTC-PERP", side="short", ts=ts)

            await asyncio.gather(one.append([event(2 * r + 1)]), two.append([event(2 * r + 2)]))
        rows = await _rollup(one, "rollup_1m")
        assert sum(row[4] for row in rows) == 2 * rounds
        assert sum(row[6] for row in rows) == rounds
    finally:
        await one.close()
        await two.close()


def _live_stream(seed: int) -> list[list[Liquidation]]:
    """Batches as a live server appends them: what arrived in each 50 ms, over 4 minutes of
    bursts on 3 markets and 3 venues; now and then a late event (an hour or a minute behind),
    and one batch sent twice (a retry)."""
    rng = random.Random(seed)
    venues = ["bybit", "binance_usdm", "okx"]
    markets = ["BTC-PERP", "ETH-PERP", "SOL-PERP"]
    events: list[Liquidation] = []
    ts = T0 + 59_500  # across a minute boundary soon
    seq = 0
    while ts < T0 + 300_000:
        burst = rng.random() < 0.05
        for _ in range(rng.randrange(8) if burst else int(rng.random() < 0.2)):
            seq += 1
            events.append(
                stored_event(
                    seq,
                    prefix="live",
                    exchange=rng.choice(venues),
                    market=rng.choice(markets),
                    side=rng.choice(["long", "short"]),
                    size_usd=round(rng.lognormvariate(8, 1.5), 2),
                    ts=ts
                    + rng.randrange(50)
                    - (rng.choice([3_600_000, 61_000]) if rng.random() < 0.02 else 0),
                )
            )
        ts += 50
    batches: list[list[Liquidation]] = []
    start = 0
    while start < len(events):
        size = rng.randrange(1, 6)
        batches.append(events[start : start + size])
        start += size
    batches.insert(len(batches) // 2, batches[len(batches) // 3])
    return batches


async def test_postgres_and_sqlite_keep_the_same_rollups_of_a_live_stream(
    tmp_path: Path,
) -> None:
    batches = _live_stream(5)
    events = [e for batch in batches for e in batch]
    sqlite = SQLiteStore(tmp_path / "history.sqlite")
    postgres = await PostgresStore.connect(await _empty_postgres())
    try:
        for batch in batches:
            await sqlite.append(batch)
            await postgres.append(batch)
        for table, width in (("rollup_1m", 60_000), ("rollup_1h", 3_600_000)):
            want = _truth(events, width)
            assert sum(row[-1] for row in want) < sum(row[4] for row in want)  # busy seconds
            _same(await _rollup(sqlite, table), want)
            _same(await _rollup(postgres, table), want)
    finally:
        await sqlite.close()
        await postgres.close()
