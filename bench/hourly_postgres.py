"""PostgreSQL's hourly rollup (store/hourly_postgres.py): what its triggers add to an append,
and how long the one backfill of a store an older release wrote holds the writers back.

Run (from the repository root, on a file made by ``purpleflea sim``)::

    nice -n 10 .venv/bin/python bench/hourly_postgres.py --db /tmp/aggmid.sqlite \\
        --pg postgresql://127.0.0.1/hourly_scratch
    nice -n 10 .venv/bin/python bench/hourly_postgres.py --pg postgresql://127.0.0.1/aggmid \\
        --backfill

The first: ``--pg`` is a scratch database (its store tables are dropped). The file's first
``--events`` events are appended to an empty store twice, with the triggers and without them
(as a release before them appends), in batches of 5,000 (a load) and of 50 (live ingest): wall
time per batch, median. The second (``--backfill``): on an existing store, drops the hourly
rollup (the store as an older release left it) and times the first open of this version, which
backfills it while the writers wait.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

import psycopg

from purpleflea.model import Liquidation
from purpleflea.store.postgres import PostgresStore
from purpleflea.store.sqlite import SQLiteStore

_OLDER = "DROP TABLE IF EXISTS rollup_1h; DROP FUNCTION IF EXISTS purpleflea_rollup_1h() CASCADE"
_TABLES = "liquidations, rollup_1m, rollup_1h, cascades, open_interest, coverage_factor"


async def _sql(url: str, sql: str) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        cursor = await connection.execute(sql.encode())
        return await cursor.fetchall() if cursor.description else []


async def _appends(url: str, events: list[Liquidation], batch: int, *, triggers: bool) -> None:
    await _sql(url, f"DROP TABLE IF EXISTS {_TABLES}")
    store = await PostgresStore.connect(url)
    try:
        if not triggers:
            await _sql(url, _OLDER)
        walls = []
        for start in range(0, len(events), batch):
            started = time.perf_counter()
            await store.append(events[start : start + batch])
            walls.append(time.perf_counter() - started)
        rows = (await _sql(url, "SELECT count(*) FROM rollup_1m"))[0][0]
        print(
            f"batches of {batch:>5}, {'with' if triggers else 'without':>7} triggers: "
            f"median {statistics.median(walls) * 1e3:7.2f} ms a batch, total {sum(walls):6.1f} s "
            f"({len(events) / sum(walls):,.0f} events/s; {rows} minute rows)",
            flush=True,
        )
    finally:
        await store.close()


async def _backfill(url: str) -> None:
    await _sql(url, _OLDER)
    minutes = (await _sql(url, "SELECT count(*) FROM rollup_1m"))[0][0]
    started = time.perf_counter()
    store = await PostgresStore.connect(url)
    wall = time.perf_counter() - started
    await store.close()
    hours = (await _sql(url, "SELECT count(*) FROM rollup_1h"))[0][0]
    print(f"backfill: first open {wall:.2f} s wall ({minutes} minute rows -> {hours} hourly rows)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", required=True, help="PostgreSQL database (see above)")
    parser.add_argument("--db", help="SQLite store made by `purpleflea sim` (appends)")
    parser.add_argument("--events", type=int, default=200_000, help="events appended")
    parser.add_argument("--backfill", action="store_true", help="time the backfill only")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    if args.backfill:
        await _backfill(args.pg)
        return
    if not args.db:
        parser.error("--db is needed for the appends")
    source = SQLiteStore(args.db)
    try:
        events = await source.since(0, limit=args.events)
    finally:
        await source.close()
    for batch in (5_000, 50):
        few = events if batch > 50 else events[: len(events) // 10]  # live batches: a tenth
        for triggers in (False, True, False, True):
            await _appends(args.pg, few, batch, triggers=triggers)
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
