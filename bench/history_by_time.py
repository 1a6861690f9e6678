"""History pages by event time (``order=ts``) against the default order (``seq``), through
``SQLiteStore.query``: CPU per 20-event page on a store of ``--events`` events.

Run (from the repository root)::

    .venv/bin/python bench/history_by_time.py                  # 1M events, built once
    .venv/bin/python bench/history_by_time.py --events 200000  # a quick look

The store (``--db``, built once, deterministic) holds events 30 ms apart with their ts
jittered by up to 5 s either way (so storage order is not time order): BTC-PERP 30 % of
them, ETH-PERP 20 %, fifty coins 1 % each. Each shape is read once to warm the cache, then
``--repeat`` times; the figure is ``time.process_time`` per page.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import time
from pathlib import Path

from purpleflea.store.base import Query
from purpleflea.store.sqlite import SQLiteStore

T0 = 1_700_000_000_000
GAP_MS = 30


async def build(path: Path, events: int) -> None:
    """The store, unless ``path`` exists (rows inserted directly: this measures reads)."""
    if path.exists():
        return
    store = SQLiteStore(path)
    await store.close()
    rng = random.Random(1)
    markets = ["BTC-PERP"] * 30 + ["ETH-PERP"] * 20 + [f"C{i}-PERP" for i in range(50)]
    rows = [
        (
            seq,
            f"bench:{seq}",
            "bybit" if seq % 4 else "okx",
            "S",
            rng.choice(markets),
            "long" if seq % 2 else "short",
            1.0,
            1.0,
            float(rng.randint(10, 1_000_000)),
            T0 + seq * GAP_MS + rng.randint(-5_000, 5_000),
            T0 + seq * GAP_MS,
            0,
            "complete",
        )
        for seq in range(1, events + 1)
    ]
    with sqlite3.connect(path) as connection:
        connection.executemany(f"INSERT INTO liquidations VALUES ({', '.join('?' * 13)})", rows)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    path = args.db or Path(f"/tmp/pf-history-by-time-{args.events}.sqlite")
    await build(path, args.events)
    last = T0 + args.events * GAP_MS
    shapes = {
        "every market": Query(),
        "BTC-PERP (30 %)": Query(markets=("BTC-PERP",)),
        "C7-PERP (1 %)": Query(markets=("C7-PERP",)),
        "BTC-PERP longs": Query(markets=("BTC-PERP",), sides=("long",)),
        "okx (25 %)": Query(exchanges=("okx",)),
        "a market with no event": Query(markets=("NOPE-PERP",)),
        "BTC-PERP + ETH-PERP": Query(markets=("BTC-PERP", "ETH-PERP")),
        "C7-PERP, last hour": Query(markets=("C7-PERP",), start_ms=last - 3_600_000),
    }
    store = SQLiteStore(path)
    try:
        for label, shape in shapes.items():
            line = []
            for order in ("seq", "ts"):
                query = Query(
                    markets=shape.markets,
                    exchanges=shape.exchanges,
                    sides=shape.sides,
                    start_ms=shape.start_ms,
                    order="ts" if order == "ts" else "seq",
                    limit=20,
                )
                await store.query(query)
                started = time.process_time()
                for _ in range(args.repeat):
                    await store.query(query)
                line.append(f"{(time.process_time() - started) / args.repeat * 1000:7.1f} ms")
            print(f"{label:24s} order=seq {line[0]}   order=ts {line[1]}")
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
