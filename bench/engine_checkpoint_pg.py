"""What a checkpoint of the cascade engine costs in PostgreSQL, beside the file's.

    .venv/bin/python bench/engine_checkpoint_pg.py [--markets 50 275] [--repeats 10]

For each market count an engine is fed a simulated hour (liquidations on both sides of every
market, one snapshot of each a minute: fuel and open interest), and its exported state is
written ``--repeats`` times as a checkpoint through each keeper, interleaved: the state files
beside a SQLite store (:class:`EngineState`: temporary file, fsyncs, renames) and the rows
of a PostgreSQL store (:class:`PostgresEngineState`: one transaction replacing the newest
and the previous, in a database made for the run at 127.0.0.1:5432 and dropped after).
Printed: the state's size, and per checkpoint the process's CPU (``time.process_time``: the
event loop's part and the worker thread's) and the wall time, medians and ranges. Then the
journal's hot path: CPU per snapshot told through each journal and flushed as
``Pipeline.on_snapshot`` flushes it (the file: a ``write`` each; PostgreSQL: handed over at
most once a second, written by a task), and the PostgreSQL journal's writes. The engine is the
pure-Python one unless PURPLEFLEA_PURE_ENGINE is unset.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PURPLEFLEA_PURE_ENGINE", "1")

import psycopg

from purpleflea.engine import CascadeEngine
from purpleflea.server.engine_journal import Fuel, OpenInterest
from purpleflea.server.engine_state import EngineState, KeepsEngine
from purpleflea.server.engine_state_postgres import PostgresEngineState
from purpleflea.store.postgres import PostgresStore

T0 = 1_760_000_000_000
ADMIN = "postgresql://127.0.0.1:5432/postgres"


def _engine(markets: int, seed: int = 1) -> CascadeEngine:
    """An engine after a simulated hour of ``markets``' liquidations and snapshots."""
    rng = random.Random(seed)
    engine = CascadeEngine()
    marks = [rng.uniform(0.1, 60_000.0) for _ in range(markets)]
    for minute in range(60):
        for m in range(markets):
            market = f"M{m}-PERP"
            marks[m] *= 1 + rng.gauss(0, 0.004)
            engine.set_open_interest(market, rng.uniform(1e6, 1e9), f"M{m}USDT")
            for side in ("long", "short"):
                engine.set_fuel(market, side, rng.uniform(0.5, 2.0))
            for i in range(rng.randint(0, 6)):
                side = "long" if rng.random() < 0.5 else "short"
                ts = T0 + minute * 60_000 + i * 7_000
                engine.observe(market, side, rng.expovariate(1 / 20_000), marks[m], ts, "sim")
        engine.tick(T0 + minute * 60_000 + 59_000)
        engine.drain_alerts()
    return engine


async def _checkpoint(
    keeper: KeepsEngine, exported: dict[str, object], seq: int
) -> tuple[float, float]:
    """(process CPU, wall) seconds of one checkpoint's write."""
    cpu, wall = time.process_time(), time.perf_counter()
    await keeper.put(exported, seq, (seq, f"id{seq}"))
    return time.process_time() - cpu, time.perf_counter() - wall


def _summary(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    return f"median {statistics.median(ms):.1f} ms ({ms[0]:.1f}-{ms[-1]:.1f})"


async def _journal_cpu(journal_owner: KeepsEngine, markets: int, rounds: int) -> float:
    """CPU seconds per snapshot told (three records) and flushed, the writes included."""
    journal = journal_owner.journal
    journal.begin(7, 0)
    began = time.process_time()
    for r in range(rounds):
        for m in range(markets):
            market = f"M{m}-PERP"
            journal.told(Fuel(r, market, "long", 1.1))
            journal.told(Fuel(r, market, "short", 0.9))
            journal.told(OpenInterest(r, market, 1e8 + r, f"M{m}USDT"))
            journal.flush()
            if m % 50 == 0:
                await asyncio.sleep(0)  # the loop runs the writer task, as between snapshots
        journal.flush(tick=True)  # a round's end: a tick
    await journal.written()
    spent = time.process_time() - began
    await journal.finish()
    return spent / (rounds * markets)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, nargs="+", default=[50, 275])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--journal-rounds", type=int, default=20)
    args = parser.parse_args()
    database = f"purpleflea_bench_{os.getpid()}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    try:
        store = await PostgresStore.connect(f"postgresql://127.0.0.1:5432/{database}")
        try:
            with tempfile.TemporaryDirectory() as folder:
                for markets in args.markets:
                    exported = _engine(markets).export_state()
                    files = EngineState(Path(folder) / f"db{markets}.sqlite")
                    rows = PostgresEngineState(store)
                    timings: dict[str, list[tuple[float, float]]] = {"file": [], "pg": []}
                    for seq in range(1, args.repeats + 1):
                        timings["file"].append(await _checkpoint(files, exported, seq))
                        timings["pg"].append(await _checkpoint(rows, exported, seq))
                    size = files.path.stat().st_size
                    print(f"{markets} markets: state {size / 1000:.0f} kB")
                    for name, pairs in timings.items():
                        cpu = _summary([c for c, _ in pairs])
                        wall = _summary([w for _, w in pairs])
                        print(f"  {name:4} checkpoint: CPU {cpu}; wall {wall}")
                    for name, keeper in (("file", files), ("pg", rows)):
                        us = await _journal_cpu(keeper, markets, args.journal_rounds) * 1e6
                        extra = ""
                        if isinstance(keeper, PostgresEngineState):
                            extra = f" ({keeper.journal.writes} transactions)"
                        print(f"  {name:4} journal: {us:.1f} us CPU a snapshot{extra}")
                    await rows.close()
        finally:
            await store.close()
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
