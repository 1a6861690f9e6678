"""PostgreSQL's hourly rollup (store/hourly_postgres.py): what its triggers add to an append,
and how long appends wait while a node fills it in a store an older release wrote.

Run (from the repository root, on a file made by ``purpleflea sim``)::

    nice -n 10 .venv/bin/python bench/hourly_postgres.py --db /tmp/aggmid.sqlite \\
        --pg postgresql://127.0.0.1/hourly_scratch
    nice -n 10 .venv/bin/python bench/hourly_postgres.py --pg postgresql://127.0.0.1/aggmid \\
        --backfill [--chunk 0.05]

The first: ``--pg`` is a scratch database (its store tables are dropped). The file's first
``--events`` events are appended to an empty store twice, with the triggers and without them
(as a release before them appends), in batches of 5,000 (a load) and of 50 (live ingest): wall
time per batch, median. The second (``--backfill``): on an existing store, drops the hourly
rollup (the store as an older release left it) and times the first open of this version and
its fill of the hourly rollup, while an older node appends as the ingest node does: a batch of
``--batch`` events (new ones, and a tenth late ones landing in random hours of the history)
every ``--every`` ms, each batch's wall time recorded. What a user sees is the longest of those
during the fill: the live stream is published after the store has the events. The appended
events stay in the store (~10,000 a run). ``--chunk``: the seconds a chunk of the fill
aims to hold the writers (``hourly_postgres.CHUNK_S``); the chunks' sizes and holds are
printed from the fill's debug log.

The code before a change: the same command with ``PYTHONPATH`` at a ``git archive`` copy of its
``src``; a store without ``hourly_filled`` fills the hourly rollup inside its open.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import statistics
import time

import msgspec
import psycopg

import purpleflea
from purpleflea.model import Liquidation
from purpleflea.store import hourly_postgres, postgres
from purpleflea.store.base import COLUMNS, row_to_event
from purpleflea.store.postgres import PostgresStore
from purpleflea.store.sqlite import SQLiteStore

_OLDER = (
    "DROP TABLE IF EXISTS rollup_1h, rollup_1h_pending; "
    "DROP FUNCTION IF EXISTS purpleflea_rollup_1h() CASCADE; "
    "DROP FUNCTION IF EXISTS purpleflea_rollup_1h_fill"
)
_TABLES = (
    "liquidations, rollup_1m, rollup_1h, rollup_1h_pending, cascades, open_interest, "
    "coverage_factor"
)


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


async def _older_node(
    url: str, batch: int, every_s: float, stop: asyncio.Event, walls: list[tuple[float, float]]
) -> None:
    """Appends as a node of an older release does (minute rollups only, one statement a
    batch) until ``stop``: (start, wall seconds) of each batch into ``walls``."""
    last = await _sql(
        url, f"SELECT {', '.join(COLUMNS)} FROM liquidations ORDER BY seq DESC LIMIT 1"
    )
    template = row_to_event(last[0])
    span = await _sql(url, "SELECT min(ts), max(ts) FROM liquidations")
    first_ts, last_ts = int(span[0][0]), int(span[0][1])
    rng = random.Random(7)
    seq, ts = template.seq, last_ts
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        while not stop.is_set():
            events = []
            for i in range(batch):
                seq += 1
                ts += 50
                late = i % 10 == 9  # a late event in an hour long closed
                when = rng.randrange(first_ts, last_ts) if late else ts
                events.append(
                    msgspec.structs.replace(template, id=f"bench-fill:{seq}", seq=seq, ts=when)
                )
            started = time.perf_counter()
            await connection.execute(postgres._APPEND, postgres.append_params(events))
            walls.append((started, time.perf_counter() - started))
            await asyncio.sleep(every_s)


class _Chunks(logging.Handler):
    """The fill's chunks, from its debug log: (hours, seconds the writers were held)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.chunks: list[tuple[int, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("hourly rollup: %d hours filled") and record.args:
            hours, held = record.args  # type: ignore[misc]
            self.chunks.append((int(hours), float(held)))


async def _backfill(url: str, batch: int, every_s: float) -> None:
    chunks = _Chunks()
    logging.getLogger("purpleflea.store").addHandler(chunks)
    logging.getLogger("purpleflea.store").setLevel(logging.DEBUG)
    await _sql(url, _OLDER)
    minutes = (await _sql(url, "SELECT count(*) FROM rollup_1m"))[0][0]
    walls: list[tuple[float, float]] = []
    stop = asyncio.Event()
    appending = asyncio.create_task(_older_node(url, batch, every_s, stop, walls))
    await asyncio.sleep(2.0)  # appends before the upgrade: their usual wall time
    started = time.perf_counter()
    store = await PostgresStore.connect(url)
    opened = time.perf_counter() - started
    filled = getattr(store, "hourly_filled", None)
    if filled is not None:
        await filled()
    done = time.perf_counter() - started
    await asyncio.sleep(1.0)
    stop.set()
    await appending
    await store.close()
    hours = (await _sql(url, "SELECT count(*) FROM rollup_1h"))[0][0]
    before = [wall for at, wall in walls if at + wall < started]
    # Every batch the fill overlapped, including one it held back from its start.
    during = sorted(wall for at, wall in walls if at + wall >= started and at <= started + done)
    # A p99 of a hundred batches or more (the code before holds them all back: two or three).
    p99 = (
        f"p99 {during[int(0.99 * (len(during) - 1))] * 1e3:.1f} ms, " if len(during) >= 100 else ""
    )
    print(
        f"backfill: open {opened:.2f} s, filled after {done:.2f} s wall "
        f"({minutes} minute rows -> {hours} hourly rows)\n"
        f"appends of {batch} events every {every_s * 1e3:.0f} ms: before, median "
        f"{statistics.median(before) * 1e3:.1f} ms ({len(before)}); during the fill "
        f"{len(during)} batches, median {statistics.median(during) * 1e3:.1f} ms, {p99}"
        f"longest **{during[-1] * 1e3:.0f} ms**",
        flush=True,
    )
    if chunks.chunks:
        held = sorted(h for _, h in chunks.chunks)
        print(
            f"{len(held)} chunks of {min(h for h, _ in chunks.chunks)}-"
            f"{max(h for h, _ in chunks.chunks)} hours; writers held per chunk: median "
            f"{statistics.median(held) * 1e3:.0f} ms, longest {held[-1] * 1e3:.0f} ms "
            f"(aimed at {hourly_postgres.CHUNK_S * 1e3:.0f} ms)"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", required=True, help="PostgreSQL database (see above)")
    parser.add_argument("--db", help="SQLite store made by `purpleflea sim` (appends)")
    parser.add_argument("--events", type=int, default=200_000, help="events appended")
    parser.add_argument("--backfill", action="store_true", help="time the backfill only")
    parser.add_argument("--batch", type=int, default=50, help="events a batch (--backfill)")
    parser.add_argument("--every", type=float, default=20, help="ms between batches (--backfill)")
    parser.add_argument("--chunk", type=float, help="seconds a fill's chunk aims at (--backfill)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; {purpleflea.__file__}")
    if args.chunk is not None:
        hourly_postgres.CHUNK_S = args.chunk
    if args.backfill:
        await _backfill(args.pg, args.batch, args.every / 1e3)
        print(f"load average {os.getloadavg()[0]:.2f}")
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
