"""PostgreSQL live appends: the latency of a ~50 ms batch and the server's CPU for it, at a
given number of stored events (the append must not cost more as the table grows).

Run (from the repository root; ``--pg`` is a scratch database)::

    nice -n 5 .venv/bin/python bench/append_postgres.py --pg postgresql://127.0.0.1/pgsec_bench \\
        --grow-to 150000 --batches 600

``--grow-to N`` first appends synthetic history (batches of 5,000, 5 events a second on 40
markets and 6 venues) until the store holds ``N`` events; ``--fresh`` drops the store's tables
first. Then ``--batches`` live batches, one every 50 ms: each holds what a crash sends in 50 ms
(25 events on 8 markets and 4 venues, so each busy second reaches the store over ~20 batches),
and every tenth batch one late event in a random second of the history (a REST poller catching
up). Printed: the append's wall time (p50, p99, max), the server backend's CPU per batch (from
``/proc/<pid>/stat`` of the writer connection's backend; the server must run on this machine)
and the client's. The live events stay in the store.

The code before a change: the same command with ``PYTHONPATH`` at a ``git archive`` copy of its
``src`` (the bench uses only ``PostgresStore.connect``/``append``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import statistics
import time

import psycopg

import purpleflea
from procfs import cpu_seconds
from purpleflea.model import Liquidation
from purpleflea.store.postgres import PostgresStore
from purpleflea.venues.registry import coverage_of

_TABLES = (
    "liquidations, rollup_1m, rollup_1h, rollup_1h_pending, cascades, open_interest, "
    "coverage_factor, coverage_factor_method"
)
_MARKETS = [f"C{i:02d}-PERP" for i in range(40)]
_VENUES = ["bybit", "binance_usdm", "okx", "gate", "htx", "deribit"]


def _event(rng: random.Random, seq: int, ts: int, markets: int, venues: int) -> Liquidation:
    exchange = _VENUES[rng.randrange(venues)]
    size = rng.lognormvariate(8.0, 1.5)
    return Liquidation(
        id=f"bench-append:{seq}",
        seq=seq,
        exchange=exchange,
        symbol="X",
        market=_MARKETS[rng.randrange(markets)],
        side="long" if rng.random() < 0.7 else "short",
        price=100.0,
        quantity=size / 100.0,
        size_usd=size,
        ts=ts,
        received_at=ts + 20,
        cascade_score=0,
        coverage=coverage_of(exchange),
    )


async def _one(url: str, sql: str) -> tuple[object, ...]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        row = await (await connection.execute(sql.encode())).fetchone()
        return row or ()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", required=True, help="scratch PostgreSQL database")
    parser.add_argument("--fresh", action="store_true", help="drop the store's tables first")
    parser.add_argument("--grow-to", type=int, default=0, help="stored events before the run")
    parser.add_argument("--batches", type=int, default=600, help="live batches, one per 50 ms")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; {purpleflea.__file__}")
    if args.fresh:
        async with await psycopg.AsyncConnection.connect(args.pg, autocommit=True) as connection:
            await connection.execute(f"DROP TABLE IF EXISTS {_TABLES}".encode())
    rng = random.Random(args.seed)
    store = await PostgresStore.connect(args.pg)
    try:
        stored, last_seq, last_ts = await _one(
            args.pg,
            "SELECT count(*), COALESCE(max(seq), 0), COALESCE(max(ts), 0) FROM liquidations",
        )
        seq, ts = int(last_seq), int(last_ts) or 1_765_000_000_000  # type: ignore[call-overload]
        grown = time.perf_counter()
        count = int(stored)  # type: ignore[call-overload]
        while count < args.grow_to:
            batch = []
            for _ in range(min(5_000, args.grow_to - count)):
                seq += 1
                ts += rng.randrange(400)  # 5 a second
                batch.append(_event(rng, seq, ts, len(_MARKETS), len(_VENUES)))
            await store.append(batch)
            count += len(batch)
        if args.grow_to:
            print(f"grown to {count:,} events in {time.perf_counter() - grown:.0f} s", flush=True)
        first_ts = int((await _one(args.pg, "SELECT min(ts) FROM liquidations"))[0])  # type: ignore[call-overload]
        assert store._writer is not None
        pid = (await (await store._writer.execute("SELECT pg_backend_pid()")).fetchone() or (0,))[0]
        await store._writer.commit()
        walls: list[float] = []
        server = cpu_seconds(pid)
        client = resource.getrusage(resource.RUSAGE_SELF)
        for b in range(args.batches):
            batch = []
            for _ in range(25):
                seq += 1
                batch.append(_event(rng, seq, ts + rng.randrange(50), 8, 4))
            if b % 10 == 9:
                seq += 1
                batch.append(_event(rng, seq, rng.randrange(first_ts, ts - 3_600_000), 40, 6))
            ts += 50
            started = time.perf_counter()
            await store.append(batch)
            wall = time.perf_counter() - started
            walls.append(wall)
            await asyncio.sleep(max(0.0, 0.05 - wall))
        server = cpu_seconds(pid) - server
        after = resource.getrusage(resource.RUSAGE_SELF)
        client_s = after.ru_utime + after.ru_stime - client.ru_utime - client.ru_stime
        walls.sort()
        print(
            f"{count:,} stored events, {args.batches} batches of ~25 events (1 in 10 with a late "
            f"one): append p50 {statistics.median(walls) * 1e3:.2f} ms, p99 "
            f"{walls[int(0.99 * (len(walls) - 1))] * 1e3:.2f} ms, max {walls[-1] * 1e3:.1f} ms; "
            f"server CPU {server / args.batches * 1e3:.2f} ms a batch, client CPU "
            f"{client_s / args.batches * 1e3:.2f} ms a batch; load average "
            f"{os.getloadavg()[0]:.2f}",
            flush=True,
        )
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
