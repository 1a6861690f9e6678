"""A stream's resume with a selective filter: the store's filtered replay against reading every
event and filtering in Python (what ``server/feed.py`` did before), side by side in one run.

    .venv/bin/python bench/replay_filtered.py     # generates /tmp/pf-replay-1m once
    .venv/bin/python bench/replay_filtered.py --postgres postgresql://127.0.0.1:5432/DB

The store is ``bench/history.py``'s generator (a year over 275 markets, Zipf-like market mix),
1,000,000 events by default. Each filter is replayed from seq 0 to the end both ways, a page of
1,000 at a time as the stream reads it; printed: CPU seconds of this process (the SQLite
readers are its threads; PostgreSQL's own work is not in it, see the EXPLAIN lines), wall
seconds, pages read (each charged one request of the account's rate: ``feed.client_feed``'s
``pace``), events matched (both ways must agree), and the plan of a page's index walk.
With ``--postgres`` the same events are copied into that database first (its tables dropped).

``--served PORT --pid PID``: instead, one honest client of a running ``purpleflea serve`` (on
this store: ``--source none --data-dir /tmp/pf-replay-1m``) resumes a WebSocket stream from
``since_seq: 0`` for the ~1 % market and reads until the replay's heartbeat; printed: events,
wall seconds (the account's rate paces the pages) and the server's CPU seconds (/proc).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from history import N_MARKETS, generate, market_names
from procfs import cpu_seconds
from purpleflea.server.filters import StreamFilter
from purpleflea.store.base import Store
from purpleflea.store.factory import open_store
from purpleflea.store.pages import store_pages
from purpleflea.store.postgres import _SELECT as _PG_SELECT
from purpleflea.store.replay import replay_page
from purpleflea.store.sqlite import SQLiteStore

PAGE = 1_000


def one_percent_market() -> str:
    """The generator's market whose share of the events is closest to 1 %."""
    weights = 1.0 / np.arange(1, N_MARKETS + 1) ** 1.1
    weights /= weights.sum()
    return market_names()[int(np.argmin(np.abs(weights - 0.01)))]


async def python_filtered(store: Store, wanted: StreamFilter) -> tuple[list[int], int]:
    """Before: every event in pages of 1,000, filtered here."""
    cursor, seqs, pages = 0, [], 0
    while True:
        pages += 1
        page = await store.since(cursor, PAGE)
        if not page:
            return seqs, pages
        seqs.extend(e.seq for e in page if wanted.wants(e))
        cursor = page[-1].seq


async def store_filtered(store: Store, wanted: StreamFilter) -> tuple[list[int], int]:
    """After: the store's filtered pages."""
    cursor, seqs, pages, query = 0, [], 0, wanted.query()
    while True:
        pages += 1
        page = await store.replay(cursor, query, PAGE)
        seqs.extend(e.seq for e in page.events)
        if page.examined == 0:
            return seqs, pages
        cursor = page.reached


async def explain(store: Store, wanted: StreamFilter, dsn: str | None) -> list[str]:
    """The plans of both statements of a page from the middle of the store (the index walk,
    then the candidates' rows); PostgreSQL's as run, with their row counts and buffers."""
    after = await store.last_seq() // 2
    plans: list[str] = []
    if isinstance(store, SQLiteStore):

        async def read(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
            plan = store._writer.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plans.extend(f"{sql[:40]}...: {row[3]}" for row in plan)
            return store._writer.execute(sql, params).fetchall()

        await replay_page(read, store._select, wanted.query(), "sqlite", after, PAGE)
        return plans
    import psycopg

    assert dsn is not None
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:

        async def read_pg(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
            found = await connection.execute(
                f"EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) {sql}",  # type: ignore[arg-type]
                params,
            )
            plans.extend(row[0] for row in await found.fetchall())
            return await (await connection.execute(sql, params)).fetchall()  # type: ignore[arg-type]

        await replay_page(read_pg, _PG_SELECT, wanted.query(), "postgres", after, PAGE)
    return plans


async def copy_to_postgres(source: SQLiteStore, dsn: str) -> Store:
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
        await connection.execute(
            "DROP TABLE IF EXISTS liquidations, rollup_1m, rollup_1h, rollup_1h_pending, "
            "cascades, open_interest, coverage_factor, coverage_factor_method"
        )
    target = await open_store(dsn)
    async for page in store_pages(source, page=20_000):
        await target.append(page)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
        await connection.execute("VACUUM ANALYZE liquidations")
    return target


async def run(args: argparse.Namespace) -> None:
    sqlite = SQLiteStore(args.db)
    store: Store = sqlite
    if args.postgres and args.no_copy:
        store = await open_store(args.postgres)
    elif args.postgres:
        print("copying into PostgreSQL", flush=True)
        store = await copy_to_postgres(sqlite, args.postgres)
    market = one_percent_market()
    filters = {
        f"markets={market} (~1 %)": StreamFilter(markets=frozenset({market})),
        f"markets={market},ETH-PERP sides=short": StreamFilter(
            markets=frozenset({market, "ETH-PERP"}), sides=frozenset({"short"})
        ),
        "min_usd=1M": StreamFilter(min_usd=1_000_000),
        "exchanges=kraken_futures": StreamFilter(exchanges=frozenset({"kraken_futures"})),
        "min_usd=10k (a size filter no index serves)": StreamFilter(min_usd=10_000),
        "min_usd=50k (between the thresholds)": StreamFilter(min_usd=50_000),
        "sides=long (one side only)": StreamFilter(sides=frozenset({"long"})),
        f"markets={market} sides=long": StreamFilter(
            markets=frozenset({market}), sides=frozenset({"long"})
        ),
        "exchanges=kraken_futures sides=short": StreamFilter(
            exchanges=frozenset({"kraken_futures"}), sides=frozenset({"short"})
        ),
        "markets=5 of them": StreamFilter(markets=frozenset(market_names()[10:15])),
        "markets=20 of them (over MAX_REPLAY_RANGES)": StreamFilter(
            markets=frozenset(market_names()[10:30])
        ),
    }
    print(
        f"store: {await store.last_seq():,} events, {type(store).__name__}; load {os.getloadavg()}"
    )
    print("| filter | way | matched | pages charged | CPU s | wall s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, wanted in filters.items():
        if args.only and args.only not in name:
            continue
        results = {}
        for way, replay in (
            ("python (before)", python_filtered),
            ("store (after)", store_filtered),
        ):
            cpu, wall = time.process_time(), time.perf_counter()
            seqs, pages = await replay(store, wanted)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            results[way] = seqs
            print(
                f"| {name} | {way} | {len(seqs):,} | {pages:,} | {cpu:.2f} | {wall:.2f} |",
                flush=True,
            )
        assert results["python (before)"] == results["store (after)"], name
        for line in await explain(store, wanted, args.postgres):
            print(f"    plan: {line}")
    print(f"load average after: {os.getloadavg()}")
    await store.close()
    if store is not sqlite:
        await sqlite.close()


async def served(port: int, pid: int) -> None:
    import httpx
    import websockets

    market = one_percent_market()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        answer = await http.post("/v1/keys", json={"account": f"honest-{time.time_ns()}"})
        key = answer.json()["key"]
    url = f"ws://127.0.0.1:{port}/v1/stream"
    cpu, wall, events = cpu_seconds(pid), time.perf_counter(), 0
    async with websockets.connect(url, additional_headers={"X-API-Key": key}) as ws:
        await ws.send(json.dumps({"op": "subscribe", "since_seq": 0, "markets": [market]}))
        await ws.recv()  # subscribed
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == "heartbeat":
                break
            events += len(frame["items"]) if frame["type"] == "batch" else 1
    wall, cpu = time.perf_counter() - wall, cpu_seconds(pid) - cpu
    print(
        f"served replay of {market} from seq 0: {events:,} events, {wall:.1f} s wall, "
        f"server CPU {cpu:.2f} s; load {os.getloadavg()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="/tmp/pf-replay-1m/purpleflea.sqlite")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--postgres", help="also copy the events into this PostgreSQL DSN")
    parser.add_argument(
        "--no-copy", action="store_true", help="the PostgreSQL database holds them already"
    )
    parser.add_argument("--only", help="run only the filters whose name holds this")
    parser.add_argument("--served", type=int, metavar="PORT", help="a served store's port")
    parser.add_argument("--pid", type=int, help="that server's process id (with --served)")
    args = parser.parse_args()
    if args.served:
        asyncio.run(served(args.served, args.pid))
        return
    db = Path(args.db)
    if not db.exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        print(f"generating {args.events:,} events into {db}", flush=True)
        generate(db, args.events, args.seed)  # runs its own event loop
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
