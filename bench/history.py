"""History at scale: 10M stored events in SQLite, filtered paged queries, a 1-year aggregate.

Run (one command, from the repository root)::

    .venv/bin/python bench/history.py                       # generates /tmp/pf-history-10m once
    .venv/bin/python bench/history.py --db /tmp/pf-history-10m/purpleflea.sqlite  # reuse it

The database is generated once (deterministic for ``--seed``; about two minutes quiet, 16 at
load 9-10 on the shared machine) through
:meth:`SQLiteStore.append_now`, the bulk path the importers use, so rollups are maintained as
in production. A year of events over 275 markets with a heavy-tailed market mix (BTC and ETH
dominate, small coins are rare), 12 exchanges, lognormal sizes.

Measured:

1. each query shape through the Store API (``SQLiteStore.query``): ``--repeat`` times
   **warm** (the database file read through into the OS page cache first), p50/p95/max; then
   once **cold**, the cold calls last since each evicts the file: a fresh connection (SQLite's
   cache empty) with the database's files evicted from the OS page cache by
   ``posix_fadvise(DONTNEED)`` (bench/pagecache.py; the run prints how much of the file was
   still cached at each cold start). Wall time and CPU time (``process_time``, the reader
   threads included) are both reported: a cold query waits on the disk, and on a shared
   machine the wall figures of either also wait on other jobs. Most shapes draw new values
   per call; three cannot ("newest page", "min_usd=1M", "min_usd=50M": the same query each
   time), so their warm figures are a hot cache by construction. Cursor paging walks pages
   1..10;
2. a subset through HTTP (``GET /v1/liquidations``) on a live server over the same file, with
   the listening socket as shipped and with TCP_NODELAY (see bench/results/e2e.md);
3. the 1-year hourly aggregate of one market (``SQLiteStore.aggregate("1h", ...)``): first
   with the market's stored coverage factors deleted (the call estimates the whole year and
   stores them, as the first aggregate over new history does), then cold and warm (the same
   query repeated) over the stored factors; ``--aggregate-only`` runs just this;
4. the ingest rate (``append_now`` batches of 1,000, as the tracker writes) while a query
   loop runs, and the queries' p95 under that load.

On PostgreSQL (``--pg postgresql://127.0.0.1/<db>``) only step 1 runs, through
``PostgresStore.query``, over a copy of ``--db`` (by ``COPY``, when the database holds a
different number of events) whose newest ``--pg-tail`` events are all BTC longs (appended to
the SQLite store first when it holds just the generated ones): what the 10M run's ingest phase
left, and what made PostgreSQL misplan a common market's page. Warm: the relation's files read
into the OS page cache first; wall p50/p95/max and the server backend's CPU (``/proc``, a mean:
its 10 ms ticks are longer than a page). Cold: a fresh store's connection, the shared buffers
filled with a scratch table and the relation's files evicted from the OS page cache before the
call (bench/pgcache.py; the run prints how many of the relation's blocks were still cached).
Reading the files needs root or the postgres user::

    nice -n 10 .venv/bin/python bench/history.py --db /tmp/pf-pgpages/history-3m.sqlite \
        --events 3000000 --pg postgresql://postgres@127.0.0.1/<db>

With ``--windows PLANS`` the PostgreSQL run takes :func:`window_shapes` instead: pages of time
windows far behind the newest events, two of them also at a later page by cursor, and writes
each shape's EXPLAIN (ANALYZE, BUFFERS) to the file ``PLANS``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import numpy as np

import pagecache
from purpleflea.model import Liquidation
from purpleflea.store.base import Query
from purpleflea.store.sqlite import SQLiteStore
from purpleflea.venues.registry import coverage_of

YEAR_MS = 365 * 86_400_000
START_MS = 1_735_689_600_000  # 2025-01-01
EXCHANGES = (
    "binance_usdm",
    "bybit",
    "okx",
    "bitmex",
    "deribit",
    "dydx_v4",
    "kraken_futures",
    "bitget",
    "gate",
    "htx",
    "hyperliquid",
    "binance_coinm",
)
EXCHANGE_WEIGHTS = np.array([30, 25, 15, 3, 2, 3, 2, 8, 5, 3, 3, 1], dtype=float)
N_MARKETS = 275
BATCH = 100_000


def market_names() -> list[str]:
    majors = ["BTC", "ETH", "SOL", "XRP", "DOGE", "BNB", "ADA", "AVAX", "LINK", "LTC"]
    return [f"{c}-PERP" for c in majors] + [f"C{i:03d}-PERP" for i in range(N_MARKETS - 10)]


def generate(path: Path, total: int, seed: int) -> None:
    """Write ``total`` events spread over one year into a new store at ``path``."""
    rng = np.random.default_rng(seed)
    markets = market_names()
    weights = 1.0 / np.arange(1, N_MARKETS + 1) ** 1.1  # Zipf-like: BTC ~ 17%, the tail rare
    weights /= weights.sum()
    prices = np.concatenate(
        [[97_000, 3_400, 190, 2.2, 0.31, 690, 0.95, 36, 21, 105], rng.lognormal(0, 2, 265)]
    )
    store = SQLiteStore(path)
    started = time.perf_counter()
    seq = 0
    for offset in range(0, total, BATCH):
        n = min(BATCH, total - offset)
        ts = START_MS + (np.arange(offset, offset + n) * (YEAR_MS / total)).astype(np.int64)
        ts += rng.integers(0, max(1, int(YEAR_MS / total)), n)
        ts.sort()
        m = rng.choice(N_MARKETS, n, p=weights)
        x = rng.choice(len(EXCHANGES), n, p=EXCHANGE_WEIGHTS / EXCHANGE_WEIGHTS.sum())
        long_ = rng.random(n) < 0.55
        usd = np.exp(rng.normal(8.5, 1.8, n))  # median ~$5k, a tail past $1M
        price = prices[m] * np.exp(rng.normal(0, 0.05, n))
        events = []
        for i in range(n):
            seq += 1
            market = markets[m[i]]
            events.append(
                Liquidation(
                    id=f"gen:{seq}",
                    seq=seq,
                    exchange=EXCHANGES[x[i]],
                    symbol=market.replace("-PERP", "USDT"),
                    market=market,
                    side="long" if long_[i] else "short",
                    price=float(price[i]),
                    quantity=float(usd[i] / price[i]),
                    size_usd=float(usd[i]),
                    ts=int(ts[i]),
                    received_at=int(ts[i]) + 50,
                    coverage=coverage_of(EXCHANGES[x[i]]),
                    cascade_score=int(min(10, usd[i] // 200_000)),
                )
            )
        store.append_now(events)
        done = offset + n
        if done % 1_000_000 == 0 or done == total:
            rate = done / (time.perf_counter() - started)
            print(f"  generated {done:,} events ({rate:,.0f}/s)", flush=True)
    asyncio.run(store.close())


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95, ordered[-1]


async def timed(work: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    return [wall for wall, _ in await timed_cpu(work, repeat)]


async def timed_cpu(work: Callable[[], Awaitable[Any]], repeat: int) -> list[tuple[float, float]]:
    """``(wall ms, CPU ms)`` of each of ``repeat`` calls; the CPU is the process's (the loop
    and the store's reader threads: nothing else runs in it meanwhile)."""
    samples = []
    for _ in range(repeat):
        started, cpu = time.perf_counter(), time.process_time()
        await work()
        samples.append(((time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000))
    return samples


def query_shapes(end_ms: int, rng: np.random.Generator) -> dict[str, Callable[[], Query]]:
    """Each shape draws fresh values per call, except the three with nothing to vary (newest
    page, min_usd=1M, min_usd=50M): their repeats are one cached query."""
    markets = market_names()

    def window(span_ms: int) -> tuple[int, int]:
        start = int(rng.integers(START_MS, end_ms - span_ms))
        return start, start + span_ms

    def q_time(span: int) -> Query:
        start, end = window(span)
        return Query(start_ms=start, end_ms=end)

    def q_exchange_day() -> Query:
        start, end = window(86_400_000)
        return Query(exchanges=(str(rng.choice(EXCHANGES)),), start_ms=start, end_ms=end)

    return {
        "newest page, no filter": Query,
        "market=major": lambda: Query(markets=(markets[int(rng.integers(0, 10))],)),
        "market=small coin": lambda: Query(markets=(markets[int(rng.integers(100, 275))],)),
        "markets=2 majors": lambda: Query(
            markets=tuple(markets[int(i)] for i in rng.choice(10, 2, replace=False))
        ),
        "markets=a major + 2 small coins": lambda: Query(
            markets=(
                markets[int(rng.integers(0, 10))],
                *(markets[int(i)] for i in rng.choice(np.arange(100, 275), 2, replace=False)),
            )
        ),
        "exchange": lambda: Query(exchanges=(str(rng.choice(EXCHANGES)),)),
        "side": lambda: Query(sides=(str(rng.choice(["long", "short"])),)),
        "min_usd=1M": lambda: Query(min_usd=1_000_000),
        "market+side+min_usd=250k": lambda: Query(
            markets=(markets[int(rng.integers(0, 10))],),
            sides=(str(rng.choice(["long", "short"])),),
            min_usd=250_000,
        ),
        "1 h window a random day": lambda: q_time(3_600_000),
        "exchange + 1 day window": q_exchange_day,
        "market=small coin + min_usd=100k": lambda: Query(
            markets=(markets[int(rng.integers(100, 275))],), min_usd=100_000
        ),
        "min_usd=50M (rare: scans)": lambda: Query(min_usd=50_000_000),
    }


DAY_MS = 86_400_000
#: A window of the --pg windows is "far back": it starts between these days of the year, at
#: least 135 days before the year's end (and the --pg-tail of BTC longs after it).
FAR_DAYS = (20, 200)
#: The page the "later page" window shapes ask for (its cursor found before timing).
LATER_PAGE = 5


def window_shapes(rng: np.random.Generator) -> dict[str, Callable[[], Query]]:
    """PostgreSQL's window shapes (``--windows``): each draws a window far behind the newest
    events (:data:`FAR_DAYS`), except the first, the one BTC window pgpages left at 1.1 s."""
    markets = market_names()

    def day() -> int:
        return START_MS + int(rng.integers(*FAR_DAYS)) * DAY_MS

    def major() -> str:
        return markets[int(rng.integers(0, 10))]

    def small() -> str:
        return markets[int(rng.integers(100, 275))]

    def window(days: float, **filters: Any) -> Query:
        start = day()
        return Query(start_ms=start, end_ms=start + int(days * DAY_MS), **filters)

    return {
        "BTC, 30 days from day 100": lambda: Query(
            markets=("BTC-PERP",), start_ms=START_MS + 100 * DAY_MS, end_ms=START_MS + 130 * DAY_MS
        ),
        "market=major, 30 days": lambda: window(30, markets=(major(),)),
        "market=major, 1 day": lambda: window(1, markets=(major(),)),
        "market=major, 1 hour": lambda: window(1 / 24, markets=(major(),)),
        "market=small coin, 30 days": lambda: window(30, markets=(small(),)),
        "markets=2 majors, 30 days": lambda: window(
            30, markets=tuple(markets[int(i)] for i in rng.choice(10, 2, replace=False))
        ),
        "market=major + side, 30 days": lambda: window(
            30, markets=(major(),), sides=(str(rng.choice(["long", "short"])),)
        ),
        "market=major + min_usd=250k, 30 days": lambda: window(
            30, markets=(major(),), min_usd=250_000
        ),
        "exchange, 30 days": lambda: window(30, exchanges=(str(rng.choice(EXCHANGES)),)),
        "side, 30 days": lambda: window(30, sides=(str(rng.choice(["long", "short"])),)),
        "market=major, since far back (no end)": lambda: Query(markets=(major(),), start_ms=day()),
        "market=major, until far back (no start)": lambda: Query(markets=(major(),), end_ms=day()),
    }


async def later_pages(store: Any, make: Callable[[], Query], count: int) -> list[Query]:
    """``count`` queries of ``make``'s shape, each with the cursor of its page
    :data:`LATER_PAGE` (read through ``store`` first; ``make``'s query when it has fewer)."""
    found = []
    for _ in range(count):
        query = make()
        for _ in range(LATER_PAGE - 1):
            cursor = (await store.query(query)).next_cursor
            if cursor is None:
                break
            query = msgspec.structs.replace(query, before_seq=cursor)
        found.append(query)
    return found


async def explain_windows(
    admin: Any, shapes: dict[str, Callable[[], Query]], out: Path
) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of each shape's first query (warm) into ``out``; one line a
    shape: its time and the table rows its scans read."""
    from purpleflea.store import postgres
    from purpleflea.store.sql import history_page

    lines, rows = [], []
    admin.execute("SET jit = off")  # as PostgresStore reads a page of a window
    for name, make in shapes.items():
        query = make()
        page = history_page(postgres._SELECT, query, "postgres")
        plan = admin.execute(
            f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {page.sql}".encode(), page.params
        ).fetchone()[0][0]
        text = admin.execute(
            f"EXPLAIN (ANALYZE, BUFFERS) {page.sql}".encode(), page.params
        ).fetchall()
        lines += [f"## {name}", repr(query), "", *(str(r[0]) for r in text), ""]
        rows.append(
            f"- EXPLAIN {name}: {plan['Execution Time']:.1f} ms, {_rows_read(plan['Plan']):,} "
            f"table rows read"
        )
    out.write_text("\n".join(lines))
    return rows


def _rows_read(plan: dict[str, Any]) -> int:
    """Table rows a plan's scans produced or filtered out, over all loops."""
    loops = int(plan.get("Actual Loops", 1))
    read = 0
    if "Relation Name" in plan:
        read = (int(plan["Actual Rows"]) + int(plan.get("Rows Removed by Filter", 0))) * loops
        read += int(plan.get("Rows Removed by Index Recheck", 0)) * loops
    return read + sum(_rows_read(child) for child in plan.get("Plans", []))


class Cold(NamedTuple):
    """One cold call: wall and CPU ms, and the share of the database file in the OS page
    cache just before it (after the eviction)."""

    wall_ms: float
    cpu_ms: float
    resident: float


async def cold_ms(db: Path, work: Callable[[SQLiteStore], Awaitable[Any]]) -> Cold:
    """``work`` once from the disk: on a fresh read-only connection (SQLite's page cache
    empty), the database's files evicted from the OS page cache after the store's open (which
    reads the last seq) and before the call."""
    fresh = SQLiteStore(db, read_only=True)
    try:
        pagecache.evict(pagecache.sqlite_files(db))
        resident = pagecache.resident_share(db)
        started, cpu = time.perf_counter(), time.process_time()
        await work(fresh)
        return Cold(
            (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000, resident
        )
    finally:
        await fresh.close()


async def bench_queries(store: SQLiteStore, db: Path, repeat: int, seed: int) -> list[str]:
    """Warm first, with the file read into the OS page cache; the cold queries last, since
    each evicts the file and the warm figures after one would read the disk again."""
    rng = np.random.default_rng(seed + 1)
    end_ms = START_MS + YEAR_MS
    shapes = query_shapes(end_ms, rng)
    pagecache.load(pagecache.sqlite_files(db))
    cached = pagecache.resident_share(db)
    warm = {
        name: await timed_cpu(lambda make=make: store.query(make()), repeat)  # type: ignore[misc]
        for name, make in shapes.items()
    }
    # Cursor paging: ten pages deep into one major market, each page timed.
    pages: list[float] = []
    for _ in range(max(1, repeat // 10)):
        cursor = None
        market = market_names()[int(rng.integers(0, 10))]
        for _ in range(10):
            started = time.perf_counter()
            page = await store.query(Query(markets=(market,), before_seq=cursor))
            pages.append((time.perf_counter() - started) * 1000)
            cursor = page.next_cursor
    cold = {
        name: await cold_ms(db, lambda fresh, make=make: fresh.query(make()))  # type: ignore[misc]
        for name, make in shapes.items()
    }
    rows = [
        "| query (Store API, limit 100) | cold ms | cold CPU ms | warm p50 ms | warm p95 ms "
        "| warm max ms | warm CPU p50 ms | warm CPU p95 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, samples in warm.items():
        p50, p95, worst = percentiles([wall for wall, _ in samples])
        cpu50, cpu95, _ = percentiles([cpu for _, cpu in samples])
        rows.append(
            f"| {name} | {cold[name].wall_ms:.1f} | {cold[name].cpu_ms:.1f} | {p50:.1f} "
            f"| {p95:.1f} | {worst:.1f} | {cpu50:.1f} | {cpu95:.1f} |"
        )
    p50, p95, worst = percentiles(pages)
    rows.append(
        f"| cursor pages 1-10, market=major | - | - | {p50:.1f} | {p95:.1f} | {worst:.1f} | - | - |"
    )
    rows.append(
        f"- OS page cache: {cached:.1%} of the database file cached for the warm queries, at "
        f"most {max(c.resident for c in cold.values()):.2%} at each cold query's start"
    )
    print("\n".join(rows), flush=True)
    return rows


async def bench_aggregate(store: SQLiteStore, db: Path, repeat: int) -> list[str]:
    rows = [
        "| 1-year hourly aggregate | first, factors not stored ms | cold ms | cold CPU ms "
        "| warm p50 ms | warm p95 ms | warm max ms | buckets |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for market in ("BTC-PERP", "SOL-PERP", "C200-PERP"):
        query = Query(markets=(market,), start_ms=START_MS, end_ms=START_MS + YEAR_MS)
        with sqlite3.connect(db) as connection:
            connection.execute("DELETE FROM coverage_factor WHERE market = ?", (market,))
        began = time.perf_counter()
        await store.aggregate("1h", "market", query)
        first = (time.perf_counter() - began) * 1000
        cold = await cold_ms(db, lambda fresh, q=query: fresh.aggregate("1h", "market", q))  # type: ignore[misc]
        buckets = await store.aggregate("1h", "market", query)
        samples = await timed(lambda q=query: store.aggregate("1h", "market", q), repeat)  # type: ignore[misc]
        p50, p95, worst = percentiles(samples)
        rows.append(
            f"| {market} | {first:.0f} | {cold.wall_ms:.1f} | {cold.cpu_ms:.1f} | {p50:.1f} "
            f"| {p95:.1f} | {worst:.1f} | {len(buckets):,} |"
        )
        print(rows[-1], flush=True)
    return rows


def btc_longs(next_seq: int, now_ms: int, count: int) -> list[Liquidation]:
    """``count`` live BTC-PERP longs from seq ``next_seq`` on: what the ingest phase appends."""
    return [
        Liquidation(
            id=f"live:{next_seq + i}",
            seq=next_seq + i,
            exchange="bybit",
            symbol="BTCUSDT",
            market="BTC-PERP",
            side="long",
            price=97_000.0,
            quantity=0.1,
            size_usd=9_700.0,
            ts=now_ms + next_seq + i,
            received_at=now_ms + next_seq + i,
            coverage="complete",
        )
        for i in range(count)
    ]


async def bench_ingest_under_queries(store: SQLiteStore, seconds: float, seed: int) -> list[str]:
    """Append 1,000-event batches on the loop (as the tracker does) while queries run."""
    rng = np.random.default_rng(seed + 2)
    shapes = query_shapes(START_MS + YEAR_MS, rng)
    next_seq = await store.last_seq() + 1
    stop = time.perf_counter() + seconds
    latencies: list[float] = []

    async def query_loop() -> None:
        names = list(shapes)
        i = 0
        while time.perf_counter() < stop:
            make = shapes[names[i % len(names)]]
            i += 1
            if names[(i - 1) % len(names)].startswith("min_usd=50M"):
                continue  # the scan is reported apart; here it would only hide the rest
            started = time.perf_counter()
            await store.query(make())
            latencies.append((time.perf_counter() - started) * 1000)

    appended = 0
    write_s = 0.0
    reader = asyncio.create_task(query_loop())
    now_ms = START_MS + YEAR_MS
    while time.perf_counter() < stop:
        batch = btc_longs(next_seq, now_ms, 1_000)
        started = time.perf_counter()
        store.append_now(batch)
        write_s += time.perf_counter() - started
        next_seq += 1_000
        appended += 1_000
        await asyncio.sleep(0)  # let the readers' results in, as the tracker's loop would
    await reader
    p50, p95, worst = percentiles(latencies)
    return [
        f"- ingest while queries run: {appended / seconds:,.0f} events/s appended over "
        f"{seconds:g} s (the write itself: {appended / write_s:,.0f} events/s of loop time)",
        f"- queries meanwhile: {len(latencies)} queries, p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
        f"max {worst:.1f} ms",
    ]


async def bench_http(db: Path, repeat: int, seed: int, nodelay: bool) -> list[str]:
    import httpx
    import uvicorn

    from purpleflea.server.app import build_server, create_app
    from purpleflea.server.config import ServerConfig
    from purpleflea.server.net import listen_socket

    with tempfile.TemporaryDirectory(prefix="pf-hist-http-") as scratch:
        data_dir = Path(scratch)
        (data_dir / "purpleflea.sqlite").symlink_to(db.resolve())
        config = ServerConfig(
            data_dir=data_dir, source="none", port=0, rate_per_s=1e6, rate_burst=1e6
        )
        server = build_server(config, scorer=None)
        app = create_app(config, server=server)
        uv = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        )
        sock = listen_socket("127.0.0.1", 0, send_buffer=config.socket_send_buffer)
        if nodelay:
            sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
        task = asyncio.create_task(uv.serve(sockets=[sock]))
        while not uv.started:
            await asyncio.sleep(0.01)
        key = server.keys.create("bench", "history").key
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        rng = np.random.default_rng(seed + 3)
        markets = market_names()
        label = "TCP_NODELAY" if nodelay else "socket as shipped"
        rows = []
        async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}) as http:
            shapes: dict[str, Callable[[], dict[str, Any]]] = {
                "market=major": lambda: {"market": markets[int(rng.integers(0, 10))]},
                "exchange + side + min_usd=100k": lambda: {
                    "exchange": str(rng.choice(EXCHANGES)),
                    "side": "short",
                    "min_usd": 100_000,
                },
                "market=small coin, 3 cursor pages": lambda: {
                    "market": markets[int(rng.integers(100, 275))]
                },
            }
            for name, make in shapes.items():
                samples = []
                for _ in range(repeat):
                    params = make()
                    pages = 3 if "cursor" in name else 1
                    for _ in range(pages):
                        started = time.perf_counter()
                        response = await http.get("/v1/liquidations", params=params)
                        samples.append((time.perf_counter() - started) * 1000)
                        response.raise_for_status()
                        cursor = response.json()["next_cursor"]
                        if cursor is None:
                            break
                        params = {**params, "cursor": cursor}
                p50, p95, worst = percentiles(samples)
                rows.append(f"| HTTP ({label}): {name} | {p50:.1f} | {p95:.1f} | {worst:.1f} |")
                print(rows[-1], flush=True)
        uv.should_exit = True
        await task
        return rows


async def bench_postgres(args: argparse.Namespace) -> None:
    """The query shapes through ``PostgresStore.query`` on ``--pg``, filled from ``--db``
    (whose newest ``--pg-tail`` events are made BTC longs first, as the ingest phase leaves
    the SQLite store: what made PostgreSQL misplan common markets' pages), warm then cold."""
    import psycopg

    import pgcache
    from history_markets import fill_postgres
    from procfs import cpu_seconds
    from purpleflea.store.postgres import PostgresStore

    db = Path(args.db)
    sqlite_store = SQLiteStore(db)
    stored = await sqlite_store.last_seq()
    if args.pg_tail and stored == args.events:
        for offset in range(0, args.pg_tail, BATCH):
            count = min(BATCH, args.pg_tail - offset)
            sqlite_store.append_now(btc_longs(stored + 1, START_MS + YEAR_MS, count))
            stored += count
        print(f"appended {args.pg_tail:,} BTC longs as the newest events", flush=True)
    await sqlite_store.close()
    await fill_postgres(args.pg, db, stored)
    store = await PostgresStore.connect(args.pg, readers=1)
    await store.index_built()
    admin = psycopg.connect(args.pg, autocommit=True)
    pgcache.prepare(admin)
    admin.execute("ANALYZE liquidations")
    files = pgcache.relation_files(admin)
    print(
        f"PostgreSQL {admin.info.server_version}: {stored:,} events, relation files "
        f"{sum(p.stat().st_size for p in files) / 1e9:.2f} GB; load average "
        f"{os.getloadavg()[0]:.2f}",
        flush=True,
    )
    rng = np.random.default_rng(args.seed + 1)
    shapes = query_shapes(START_MS + YEAR_MS, rng)
    pagecache.load(files)
    if args.windows:
        shapes = window_shapes(rng)
        later = {
            name: await later_pages(store, shapes[name], args.repeat + 2)
            for name in ("market=major, 30 days", "exchange, 30 days")
        }
        for name, queries in later.items():
            shapes[f"{name}, page {LATER_PAGE}"] = iter(queries).__next__
        explained = await explain_windows(
            admin, window_shapes(np.random.default_rng(args.seed + 5)), Path(args.windows)
        )
    backend = store._all_readers[0].info.backend_pid
    warm: dict[str, tuple[list[float], float]] = {}
    for name, make in shapes.items():
        await store.query(make())  # the shape's first call plans with cold catalogs
        spent = cpu_seconds(backend)
        walls = await timed(lambda make=make: store.query(make()), args.repeat)  # type: ignore[misc]
        warm[name] = walls, (cpu_seconds(backend) - spent) * 1000 / args.repeat
    await store.close()
    cold: dict[str, tuple[float, int, float]] = {}
    for name, make in shapes.items():
        fresh = await PostgresStore.connect(args.pg, readers=1)
        try:
            pgcache.evict_buffers(admin)
            pagecache.evict(files)
            buffered, resident = pgcache.buffered_blocks(admin), pgcache.resident_share(files)
            query = make()
            started = time.perf_counter()
            await fresh.query(query)
            cold[name] = (time.perf_counter() - started) * 1000, buffered, resident
        finally:
            await fresh.close()
    admin.close()
    rows = [
        *(explained if args.windows else []),
        "| query (PostgresStore, limit 100) | cold ms | warm p50 ms | warm p95 ms | warm max ms "
        "| warm backend CPU ms (mean) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, (walls, cpu) in warm.items():
        p50, p95, worst = percentiles(walls)
        rows.append(
            f"| {name} | {cold[name][0]:.1f} | {p50:.1f} | {p95:.1f} | {worst:.1f} | {cpu:.2f} |"
        )
    rows.append(
        f"- cold: at most {max(c[1] for c in cold.values())} blocks of the table and its "
        f"indexes in the shared buffers and {max(c[2] for c in cold.values()):.2%} of their "
        f"files in the OS page cache at each cold query's start; load average "
        f"{os.getloadavg()[0]:.2f}"
    )
    print("\n".join(rows), flush=True)


async def run(args: argparse.Namespace) -> None:
    db = Path(args.db)
    if args.pg:
        await bench_postgres(args)
        return
    store = SQLiteStore(db)
    stored = await store.last_seq()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, SQLite {__import__('sqlite3').sqlite_version}; "
        f"db {db} ({db.stat().st_size / 1e9:.2f} GB, last seq {stored:,}); "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    print(f"stored events: {stored:,} (the last seq: seqs are dense from 1)", flush=True)
    if args.aggregate_only:
        pagecache.load(pagecache.sqlite_files(db))
        out = await bench_aggregate(store, db, max(5, args.repeat // 4))
        await store.close()
        print("\n".join(out))
        return
    out = ["", *await bench_queries(store, db, args.repeat, args.seed), ""]
    # Each phase starts warm: the cold calls before it evicted the file.
    pagecache.load(pagecache.sqlite_files(db))
    out += await bench_aggregate(store, db, max(5, args.repeat // 4))
    pagecache.load(pagecache.sqlite_files(db))
    out += ["", *await bench_ingest_under_queries(store, args.ingest_s, args.seed)]
    await store.close()
    http_rows = ["| query (HTTP, limit 100) | p50 ms | p95 ms | max ms |", "|---|---:|---:|---:|"]
    for nodelay in (False, True):
        http_rows += await bench_http(db, max(10, args.repeat // 2), args.seed, nodelay)
    out += ["", *http_rows]
    print("\n".join(out))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="/tmp/pf-history-10m/purpleflea.sqlite")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--ingest-s", type=float, default=10.0)
    parser.add_argument(
        "--aggregate-only", action="store_true", help="only the 1-year aggregates (step 3)"
    )
    parser.add_argument(
        "--pg",
        default=None,
        help="PostgreSQL URL: only the query shapes, through PostgresStore over a copy of --db",
    )
    parser.add_argument(
        "--pg-tail",
        type=int,
        default=764_000,
        help="with --pg, first append this many BTC longs to a store that has none yet (the "
        "10M run's ingest phase left 764,000)",
    )
    parser.add_argument(
        "--windows",
        default=None,
        metavar="PLANS",
        help="with --pg, the window shapes far behind the newest events instead (each with "
        "a later page), their EXPLAIN (ANALYZE, BUFFERS) written to the file PLANS",
    )
    args = parser.parse_args(argv)
    if not Path(args.db).exists():
        print(f"generating {args.events:,} events into {args.db} (seed {args.seed}) ...")
        generate(Path(args.db), args.events, args.seed)
    asyncio.run(run(args))


if __name__ == "__main__":
    main(sys.argv[1:])
