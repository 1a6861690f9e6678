"""Aggregates over windows that are not on the hour: CPU per call on a simulated history.

Run (from the repository root, on a store made once by ``purpleflea sim``)::

    purpleflea sim --days 30 --store /tmp/aggmid.sqlite          # ~2-4 min, once
    nice -n 10 .venv/bin/python bench/aggregate_split.py --db /tmp/aggmid.sqlite

The code before a change: the same command with ``PYTHONPATH`` at a ``git archive`` copy of
its ``src`` (the script prints which ``purpleflea`` it imported).

"now" is the end of the stored history (its last event), so every window holds data. Each
query is run once to warm up (it estimates and stores the coverage factors of hours no
aggregate has touched yet, as a server's first call does), then ``--repeat`` times; the
median CPU (``time.process_time``: the event loop and the store's reader threads) and wall
clock per call are printed, with the buckets' count and a checksum of the answer (the same
before and after a change that keeps the answer).

Shapes:

- ``1d by market, 365 d``: ``interval=1d&start=<now - 365 d>`` (a year: the store's 30 days),
  with ``start`` on a minute but not on the hour, and ``start`` to the millisecond;
- ``1h BTC, 365 d``: the MCP server's "a year of BTC hourly";
- ``1h by market, 7 d``: ``interval=1h&start=<now - 7 d>``, both kinds of ``start``;
- ``/v1/markets 24 h``: its day totals, ``1d`` by market from ``now - 24 h`` on the minute.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import platform
import statistics
import time

import purpleflea
from purpleflea.store.base import Bucket, GroupBy, Interval, Query
from purpleflea.store.sqlite import SQLiteStore

DAY_MS = 86_400_000


def _checksum(buckets: list[Bucket]) -> str:
    text = ";".join(
        f"{b.start_ms},{b.group},{b.count},{b.est_count},{b.size_usd:.6e},{b.est_size_usd:.6e}"
        for b in buckets
    )
    return hashlib.sha256(text.encode()).hexdigest()[:12]


async def _measure(
    store: SQLiteStore, name: str, interval: Interval, group_by: GroupBy, query: Query, repeat: int
) -> None:
    started, cpu = time.perf_counter(), time.process_time()
    first = await store.aggregate(interval, group_by, query)
    first_wall, first_cpu = time.perf_counter() - started, time.process_time() - cpu
    walls, cpus = [], []
    for _ in range(repeat):
        started, cpu = time.perf_counter(), time.process_time()
        buckets = await store.aggregate(interval, group_by, query)
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
        assert buckets == first, f"{name}: the answer changed between calls"
    print(
        f"{name:<44} CPU {statistics.median(cpus) * 1e3:8.1f} ms  "
        f"wall {statistics.median(walls) * 1e3:8.1f} ms  (first call {first_cpu * 1e3:.0f} ms CPU, "
        f"{first_wall * 1e3:.0f} ms wall)  {len(first)} buckets  {_checksum(first)}",
        flush=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="SQLite store made by `purpleflea sim`")
    parser.add_argument("--repeat", type=int, default=5, help="measured calls per shape")
    parser.add_argument(
        "--only", default="", help="run only the shapes whose name contains this text"
    )
    args = parser.parse_args()
    print(f"purpleflea from {os.path.dirname(purpleflea.__file__)}")
    print(f"{platform.machine()} {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    store = SQLiteStore(args.db)
    try:
        now = store._writer.execute("SELECT MAX(ts) FROM liquidations").fetchone()[0] + 1
        minute = now // 60_000 * 60_000
        if minute % 3_600_000 == 0:
            minute -= 60_000
        year, week, day = 365 * DAY_MS, 7 * DAY_MS, DAY_MS
        shapes: list[tuple[str, Interval, GroupBy, Query]] = [
            (
                "1d by market, 365 d, start on a minute",
                "1d",
                "market",
                Query(start_ms=minute - year),
            ),
            ("1d by market, 365 d, start to the ms", "1d", "market", Query(start_ms=now - year)),
            (
                "1h BTC-PERP, 365 d, start on a minute",
                "1h",
                "market",
                Query(markets=("BTC-PERP",), start_ms=minute - year),
            ),
            ("1h by market, 7 d, start on a minute", "1h", "market", Query(start_ms=minute - week)),
            ("1h by market, 7 d, start to the ms", "1h", "market", Query(start_ms=now - week)),
            (
                "/v1/markets 24 h totals",
                "1d",
                "market",
                Query(start_ms=(now - day) // 60_000 * 60_000),
            ),
        ]
        for name, interval, group_by, query in shapes:
            if args.only in name:
                await _measure(store, name, interval, group_by, query, args.repeat)
        print(f"load average {os.getloadavg()[0]:.2f}")
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
