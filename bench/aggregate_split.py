"""Aggregates over windows that are not on the hour: CPU per call on a simulated history.

Run (from the repository root, on a store made once by ``purpleflea sim``)::

    purpleflea sim --days 30 --store /tmp/aggmid.sqlite          # ~2-4 min, once
    nice -n 10 .venv/bin/python bench/aggregate_split.py --db /tmp/aggmid.sqlite

On PostgreSQL: ``--pg postgresql://127.0.0.1/aggmid`` (an empty database: the first run copies
the SQLite file's events into it, as an ingest node appends them, in batches of 5,000). "CPU" is
then this process's; "server CPU" that of the store's PostgreSQL backends (read from /proc: the
server must run on this machine), which leaves out the workers of a parallel query: to count
every server cycle, run once more with ``?options=-c%20max_parallel_workers_per_gather%3D0``
on the URL (one backend per query).

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
- ``/v1/markets 24 h``: its day totals, ``1d`` by market from ``now - 24 h`` on the minute;
- ``by exchange`` / ``by side``: ``1d`` and ``1h`` over 7 d of whole hours (their
  ``est_calibration`` is read from the stored factors' rows).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import os
import platform
import statistics
import time

import purpleflea
from purpleflea.store.base import Bucket, GroupBy, Interval, Query
from purpleflea.store.postgres import PostgresStore
from purpleflea.store.sqlite import SQLiteStore

DAY_MS = 86_400_000
#: Events a PostgreSQL load reads from the SQLite file, and appends, at a time.
_PAGE, _BATCH = 100_000, 5_000


def _checksum(buckets: list[Bucket]) -> str:
    text = ";".join(
        f"{b.start_ms},{b.group},{b.count},{b.est_count},{b.size_usd:.6e},{b.est_size_usd:.6e}"
        for b in buckets
    )
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _same(got: list[Bucket], want: list[Bucket]) -> bool:
    """The same buckets and counts, and sums equal to 1e-12: PostgreSQL's parallel aggregates
    add a column's values in an order that changes from call to call (the last bit moves)."""
    return len(got) == len(want) and all(
        (g.start_ms, g.group, g.count, g.est_count) == (w.start_ms, w.group, w.count, w.est_count)
        and all(
            math.isclose(getattr(g, f), getattr(w, f), rel_tol=1e-12)
            for f in ("size_usd", "long_usd", "short_usd", "est_size_usd")
        )
        for g, w in zip(got, want, strict=True)
    )


async def _copy(source: SQLiteStore, store: PostgresStore) -> None:
    """The SQLite file's events appended to an empty PostgreSQL store."""
    started, seq, copied = time.perf_counter(), 0, 0
    while page := await source.since(seq, limit=_PAGE):
        for start in range(0, len(page), _BATCH):
            copied += len(await store.append(page[start : start + _BATCH]))
        seq = page[-1].seq
    print(f"copied {copied} events into PostgreSQL in {time.perf_counter() - started:.0f} s")


async def _open(args: argparse.Namespace) -> tuple[SQLiteStore | PostgresStore, int]:
    """The store measured, and "now": the end of its history."""
    sqlite = SQLiteStore(args.db)
    if not args.pg:
        return sqlite, sqlite._writer.execute("SELECT MAX(ts) FROM liquidations").fetchone()[0] + 1
    try:
        store = await PostgresStore.connect(args.pg)
        if await store.last_seq() == 0:
            await _copy(sqlite, store)
    finally:
        await sqlite.close()
    return store, (await store._read("SELECT max(ts) FROM liquidations", ()))[0][0] + 1


def _server_cpu(pids: list[int]) -> float:
    """CPU seconds the PostgreSQL backends ``pids`` have used (this machine's server; a
    parallel query's workers are other processes, not counted: see ``--pg``)."""
    ticks = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


async def _measure(
    store: SQLiteStore | PostgresStore,
    name: str,
    interval: Interval,
    group_by: GroupBy,
    query: Query,
    repeat: int,
) -> None:
    pids: list[int] = []
    if isinstance(store, PostgresStore):
        rows = await store._read(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'purpleflea' "
            "AND datname = current_database()",
            (),
        )
        pids = [int(pid) for (pid,) in rows]
    started, cpu = time.perf_counter(), time.process_time()
    first = await store.aggregate(interval, group_by, query)
    first_wall, first_cpu = time.perf_counter() - started, time.process_time() - cpu
    walls, cpus, servers = [], [], []
    for _ in range(repeat):
        started, cpu, server = time.perf_counter(), time.process_time(), _server_cpu(pids)
        buckets = await store.aggregate(interval, group_by, query)
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
        servers.append(_server_cpu(pids) - server)
        assert _same(buckets, first), f"{name}: the answer changed between calls"
    server_cpu = f"server CPU {statistics.median(servers) * 1e3:7.0f} ms  " if pids else ""
    print(
        f"{name:<44} CPU {statistics.median(cpus) * 1e3:8.1f} ms  {server_cpu}"
        f"wall {statistics.median(walls) * 1e3:8.1f} ms  (first call {first_cpu * 1e3:.0f} ms CPU, "
        f"{first_wall * 1e3:.0f} ms wall)  {len(first)} buckets  {_checksum(first)}",
        flush=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="SQLite store made by `purpleflea sim`")
    parser.add_argument("--pg", default="", help="measure this PostgreSQL store instead")
    parser.add_argument("--repeat", type=int, default=5, help="measured calls per shape")
    parser.add_argument(
        "--only", default="", help="run only the shapes whose name contains this text"
    )
    args = parser.parse_args()
    print(f"purpleflea from {os.path.dirname(purpleflea.__file__)}")
    print(f"{platform.machine()} {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    store, now = await _open(args)
    try:
        minute = now // 60_000 * 60_000
        hour = now // 3_600_000 * 3_600_000
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
            # est_calibration by another group than market: from the stored factors' rows.
            ("1d by exchange, 7 d whole hours", "1d", "exchange", Query(start_ms=hour - week)),
            ("1h by side, 7 d whole hours", "1h", "side", Query(start_ms=hour - week)),
        ]
        for name, interval, group_by, query in shapes:
            if args.only in name:
                await _measure(store, name, interval, group_by, query, args.repeat)
        print(f"load average {os.getloadavg()[0]:.2f}")
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
