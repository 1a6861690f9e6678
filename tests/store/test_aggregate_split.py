"""Aggregates of hourly or daily buckets over windows that are not hour-aligned: the whole
hours inside come from the hourly rollup, the partial hours at the edges from the minute
rollups (or the events), and the answer is the one a read of the whole window from the minute
rollups gives, estimate included."""

from __future__ import annotations

import asyncio
import bisect
import functools
import random
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from purpleflea.model import Liquidation
from purpleflea.sim import DEFAULT_START_MS, generate_history
from purpleflea.store import aggregate as aggregates
from purpleflea.store.base import Bucket, GroupBy, Interval, Query
from purpleflea.store.factory import open_store
from purpleflea.store.postgres import PostgresStore
from purpleflea.store.sqlite import SQLiteStore
from purpleflea.venues.registry import coverage_of
from tests.store.test_store import _empty_postgres

HOUR = 3_600_000
DAY = 86_400_000
#: Two simulated days of five markets (a day boundary inside, every exchange of the mix).
DAYS = 2.0
END = DEFAULT_START_MS + int(DAYS * DAY)


@functools.cache
def _history(folder: str) -> tuple[Path, tuple[Liquidation, ...]]:
    """The simulated history as a SQLite file (made once a session) and its events."""
    path = Path(folder) / "split.sqlite"

    async def fill() -> tuple[Liquidation, ...]:
        store = SQLiteStore(path)
        try:
            await generate_history(store, days=DAYS, seed=11, n_markets=5, progress=False)
            stored = await store.since(0, limit=10_000_000)
            return tuple(sorted(stored, key=lambda e: e.ts))
        finally:
            await store.close()

    return path, asyncio.run(fill())


@pytest.fixture(params=["sqlite", "postgres"])
async def filled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> AsyncIterator[tuple[Any, tuple[Liquidation, ...]]]:
    """A store of the simulated history (no coverage factor stored yet) and its events."""
    made, events = await asyncio.to_thread(_history, str(tmp_path_factory.getbasetemp()))
    if request.param == "sqlite":
        shutil.copy(made, tmp_path / "split.sqlite")
        store: Any = SQLiteStore(tmp_path / "split.sqlite")
    else:
        store = await open_store(await _empty_postgres())
        assert isinstance(store, PostgresStore)
        for start in range(0, len(events), 5_000):
            await store.append(list(events[start : start + 5_000]))
    yield store, events
    await store.close()


def _dialect(store: Any) -> aggregates.Dialect:
    return "sqlite" if isinstance(store, SQLiteStore) else "postgres"


async def _whole_window(
    store: Any, interval: Interval, group_by: GroupBy, query: Query
) -> list[Bucket]:
    """The aggregate read the way it was before the split: the whole window from the minute
    rollups (or the events), every hour's coverage factors estimated afresh (none read or
    stored): an answer independent of the hourly rollup and of the factor cache."""
    return await aggregates.aggregate(
        store._read, None, interval, group_by, query, _dialect(store), hourly=False, cached=False
    )


def _brute(
    events: tuple[Liquidation, ...], interval: Interval, group_by: GroupBy, query: Query
) -> dict[tuple[int, str], tuple[int, float, float, float]]:
    """The measured part of the buckets, summed over the stored events (in time order) in
    Python."""
    width = {"1m": 60_000, "1h": HOUR, "1d": DAY}[interval]
    found: dict[tuple[int, str], list[Any]] = {}
    times = [e.ts for e in events]
    lo = 0 if query.start_ms is None else bisect.bisect_left(times, query.start_ms)
    hi = len(events) if query.end_ms is None else bisect.bisect_left(times, query.end_ms)
    for e in events[lo:hi]:
        if query.markets and e.market not in query.markets:
            continue
        if query.exchanges and e.exchange not in query.exchanges:
            continue
        if query.sides and e.side not in query.sides:
            continue
        if query.coverages and coverage_of(e.exchange) not in query.coverages:
            continue
        if e.size_usd < query.min_usd:
            continue
        cell = found.setdefault((e.ts // width * width, getattr(e, group_by)), [0, 0.0, 0.0, 0.0])
        cell[0] += 1
        cell[1] += e.size_usd
        cell[2 if e.side == "long" else 3] += e.size_usd
    return {key: (c, u, lo, sh) for key, (c, u, lo, sh) in found.items()}


def _windows(rng: random.Random) -> list[tuple[str, int | None, int | None]]:
    """Windows of every shape the split must get right, inside and around the history."""
    first = DEFAULT_START_MS
    hour = first + HOUR * rng.randrange(2, 40)  # an hour boundary well inside

    def inside(lo: int, hi: int) -> int:
        return rng.randrange(lo, hi)

    def minute(t: int) -> int:
        return t - t % 60_000

    shapes: list[tuple[str, int | None, int | None]] = [
        ("aligned", hour, hour + 5 * HOUR),
        ("aligned across a day", first + 20 * HOUR, first + 30 * HOUR),
        ("unaligned ms", inside(first, first + DAY), inside(first + DAY, END)),
        ("unaligned minutes", minute(inside(first, first + DAY)), minute(inside(first + DAY, END))),
        ("start aligned", hour, minute(hour + 7 * HOUR + inside(60_000, HOUR))),
        ("end aligned", hour - inside(1, HOUR), hour + 9 * HOUR),
        ("end aligned, start mid-minute", hour - 90_500, hour + 3 * HOUR),
        ("one whole hour and two edges", hour - 60_000, hour + HOUR + 60_000),
        ("shorter than an hour", hour + 600_000, hour + 1_800_000),
        ("under an hour, across one", hour - 1_200_000, hour + 1_200_000),
        ("exactly one hour, unaligned", hour + 1_000, hour + HOUR + 1_000),
        ("across the day boundary", first + DAY - 3 * HOUR - 123_456, first + DAY + 5 * HOUR + 7),
        ("the whole history and beyond", first - 5 * 60_000, END + 30 * 60_000),
        ("no start", None, minute(inside(first + DAY, END))),
        ("no end", minute(inside(first, first + DAY)), None),
    ]
    return shapes


def _filters(events: tuple[Liquidation, ...], rng: random.Random) -> list[dict[str, Any]]:
    markets = sorted({e.market for e in events})
    snapshot = sorted({e.exchange for e in events if coverage_of(e.exchange) == "snapshot"})
    complete = sorted({e.exchange for e in events if coverage_of(e.exchange) != "snapshot"})
    assert snapshot, "the simulated mix lacks a snapshot venue"
    assert complete, "the simulated mix lacks a complete venue"
    return [
        {},
        {"markets": (rng.choice(markets),)},
        {"markets": tuple(rng.sample(markets, 2)), "sides": ("short",)},
        {"exchanges": (rng.choice(snapshot),)},
        {"exchanges": (rng.choice(snapshot), rng.choice(complete))},
        {"exchanges": (rng.choice(complete),)},
        {"sides": ("long",)},
        {"coverages": ("snapshot",)},
        {"coverages": ("complete",)},
        {"min_usd": 5_000.0},
    ]


def _same(got: list[Bucket], want: list[Bucket], what: str) -> None:
    assert [(b.start_ms, b.group) for b in got] == [(b.start_ms, b.group) for b in want], what
    for g, w in zip(got, want, strict=True):
        assert (g.count, g.est_count) == (w.count, w.est_count), (what, g, w)
        for name in ("size_usd", "long_usd", "short_usd", "est_size_usd"):
            assert getattr(g, name) == pytest.approx(getattr(w, name), rel=1e-9), (what, name, g, w)


async def test_split_aggregates_answer_as_the_whole_window_read(
    filled: tuple[Any, tuple[Liquidation, ...]],
) -> None:
    store, events = filled
    rng = random.Random(20261206)
    intervals: tuple[Interval, ...] = ("1m", "1h", "1d")
    groups: tuple[GroupBy, ...] = ("market", "exchange", "side")
    checked = 0
    # Twice: first with no coverage factor stored (the split estimates and stores them), then
    # answered from the stored ones. The stored factors are read by the same SQL on both
    # stores: PostgreSQL runs the fresh round only (the suite's time).
    rounds = ("fresh", "cached") if isinstance(store, SQLiteStore) else ("fresh",)
    for round_ in rounds:
        for shape, start, end in _windows(rng):
            # Two of the filters per window, in turn (each over several windows): the suite's
            # time, ~8 s a store (four took 16 s).
            every = _filters(events, rng)
            for filters in (every[(checked + i) % len(every)] for i in range(2)):
                interval = rng.choice(intervals)
                group_by = rng.choice(groups)
                query = Query(start_ms=start, end_ms=end, **filters)
                what = f"{round_} {shape} {interval} by {group_by} {filters} [{start}, {end})"
                got = await store.aggregate(interval, group_by, query)
                want = await _whole_window(store, interval, group_by, query)
                _same(got, want, what)
                measured = {(b.start_ms, b.group): b for b in got}
                brute = _brute(events, interval, group_by, query)
                assert set(measured) == set(brute), what
                for key, (count, usd, longs, shorts) in brute.items():
                    b = measured[key]
                    assert b.count == count, (what, key)
                    assert (b.size_usd, b.long_usd, b.short_usd) == pytest.approx(
                        (usd, longs, shorts), rel=1e-9
                    ), (what, key)
                checked += 1
        # Every bucket length and grouping ran over the split's windows too.
        for interval in ("1h", "1d"):
            for group_by in groups:
                query = Query(start_ms=DEFAULT_START_MS + 1_234, end_ms=END - 98_765)
                _same(
                    await store.aggregate(interval, group_by, query),
                    await _whole_window(store, interval, group_by, query),
                    f"{round_} {interval} by {group_by} over the history",
                )
    assert checked == len(rounds) * len(_windows(rng)) * 2
    assert sum(1 for e in events if coverage_of(e.exchange) == "snapshot") > 100


async def _change(store: Any, sql: str, params: list[Any]) -> int:
    """Run ``sql`` on the store's database behind its back; the rows it changed or counted."""
    if isinstance(store, SQLiteStore):
        cursor = store._writer.execute(sql, params)
        return int(cursor.fetchone()[0] if sql.startswith("SELECT") else cursor.rowcount)
    connection = await psycopg.AsyncConnection.connect(store.url, autocommit=True)
    async with connection:
        cursor = await connection.execute(sql.replace("?", "%s").encode(), params)
        return int((await cursor.fetchall())[0][0] if sql.startswith("SELECT") else cursor.rowcount)


async def test_the_whole_hours_of_an_unaligned_window_come_from_the_hourly_rollup(
    filled: tuple[Any, tuple[Liquidation, ...]],
) -> None:
    store, _ = filled
    middle = DEFAULT_START_MS + 10 * HOUR
    query = Query(start_ms=middle - 17 * 60_000, end_ms=middle + 2 * HOUR + 25 * 60_000 + 5)

    async def counts() -> dict[int, int]:
        found: dict[int, int] = {}
        for b in await store.aggregate("1h", "market", query):
            found[b.start_ms] = found.get(b.start_ms, 0) + b.count
        return found

    before = await counts()
    assert sorted(before) == [middle - HOUR, middle, middle + HOUR, middle + 2 * HOUR]
    # Changed behind the store's back, the hourly rollup of a whole hour inside shows in the
    # answer (that hour was not read from its minutes), and that of the partial hours at the
    # edges does not (read from theirs).
    rows = await _change(
        store,
        "UPDATE rollup_1h SET count = count + 1000 WHERE hour IN (?, ?, ?)",
        [middle - HOUR, middle, middle + 2 * HOUR],
    )
    inside = await _change(store, "SELECT COUNT(*) FROM rollup_1h WHERE hour = ?", [middle])
    assert rows > inside > 0
    after = await counts()
    assert after[middle] == before[middle] + 1_000 * inside
    assert {h: after[h] for h in after if h != middle} == {
        h: before[h] for h in before if h != middle
    }


async def test_the_measure_alone_skips_the_estimate(
    filled: tuple[Any, tuple[Liquidation, ...]],
) -> None:
    # GET /v1/markets reads only a day's measured sums per market, and the estimate beside
    # them cost 0.39-0.40 s of CPU every 5 s (275 simulated markets in a crash), 0.005 s without.
    store, _ = filled
    query = Query(start_ms=END - DAY - 30 * 60_000, end_ms=END)
    estimated = await store.aggregate("1d", "market", query)
    measured = await store.aggregate("1d", "market", query, estimate=False)
    assert [(b.start_ms, b.group, b.count) for b in measured] == [
        (b.start_ms, b.group, b.count) for b in estimated
    ]
    for alone, beside in zip(measured, estimated, strict=True):  # summed in another order
        sums = (alone.size_usd, alone.long_usd, alone.short_usd)
        assert sums == pytest.approx((beside.size_usd, beside.long_usd, beside.short_usd))
    assert any(b.est_size_usd > b.size_usd for b in estimated)
    # Nothing estimated: the est_ fields repeat the measure.
    assert all(
        (b.est_count, b.est_size_usd, b.est_calibration) == (b.count, b.size_usd, "none")
        for b in measured
    )
