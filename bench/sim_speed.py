"""How fast the simulator writes history: 30 days x 275 markets, goal < 2 minutes.

    .venv/bin/python bench/sim_speed.py                 # all three modes, 30 days
    .venv/bin/python bench/sim_speed.py --days 3 --modes arrays

Modes, each a fresh simulator with the history configuration (1 s steps, 5 min blocks):

- ``arrays``: the simulation only (events as numpy arrays per block);
- ``events``: plus building every published ``Liquidation`` struct (what a store receives);
- ``sqlite``: ``generate_history`` into a fresh SQLite file (WAL) in a temp directory;
- ``stored``: what ``sqlite`` would store, without the store: the simulation, the snapshot
  venues' thinning and the open-interest totals of every block (the event count is the
  stored one).

Prints a markdown table to paste into bench/results/sim.md, with each mode's CPU time (user +
sys of this process and its children: on a shared machine wall time says little); the SQLite
mode also splits it between the simulation's child and this process, and times what this
process does after the last batch of events (the index build and commit: the tail that
cannot overlap the simulation). ``--hash``
also prints a digest of each stored table (events, minute and hour rollups, open interest)
of the SQLite run, so a change to the write path can show it stores exactly what it stored
before.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import platform
import resource
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from purpleflea.sim import Simulator, generate_history
from purpleflea.sim.history import blocks, history_config, published
from purpleflea.sim.throttle import snapshot_throttle
from purpleflea.store.bulk import EventColumns
from purpleflea.store.sqlite import SQLiteBulkLoad, SQLiteStore


def run_arrays(days: float, markets: int, *, structs: bool) -> tuple[int, float]:
    sim = Simulator(history_config(seed=0, n_markets=markets))
    events = 0
    started = time.perf_counter()
    for raw in blocks(sim, days):
        if structs:
            published(sim, raw, events + 1)
        events += raw.ts.size
    return events, time.perf_counter() - started


#: Each stored table in a fixed row order: what ``--hash`` digests.
TABLES = {
    "liquidations": "SELECT * FROM liquidations ORDER BY seq",
    "rollup_1m": "SELECT * FROM rollup_1m ORDER BY market, minute, exchange, side",
    "rollup_1h": "SELECT * FROM rollup_1h ORDER BY market, hour, exchange, side",
    "open_interest": "SELECT * FROM open_interest ORDER BY minute, market",
}


def digests(path: Path) -> dict[str, str]:
    """sha256 of each table's rows (their repr: floats to the last bit), 12 hex digits."""
    connection = sqlite3.connect(path)
    try:
        found: dict[str, str] = {}
        for table, sql in TABLES.items():
            digest = hashlib.sha256()
            for row in connection.execute(sql):
                digest.update(repr(row).encode())
            found[table] = digest.hexdigest()[:12]
        return found
    finally:
        connection.close()


def cpu_s(who: int | None = None) -> float:
    """CPU time so far (user + sys, every thread) of this process and of its finished
    children (the bulk history simulates in one); ``who`` one of the two alone."""
    kinds = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) if who is None else (who,)
    return sum(usage.ru_utime + usage.ru_stime for usage in map(resource.getrusage, kinds))


def run_stored(days: float, markets: int) -> tuple[int, float, float]:
    """Events the history would store, wall seconds and CPU seconds (user+sys)."""
    sim = Simulator(history_config(seed=0, n_markets=markets))
    throttle = snapshot_throttle(sim)
    events = 0
    started, cpu = time.perf_counter(), cpu_s()
    for raw in blocks(sim, days):
        events += throttle.thin(raw).ts.size
        sim.market_open_interest(raw.end_ms)
    return events, time.perf_counter() - started, cpu_s() - cpu


class LastBatch:
    """When a bulk load's last batch of events was written (wall clock, and this process's CPU:
    the child's is apart): what follows (the indexes built at its end, its commit) is the
    tail that cannot overlap the simulation."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    @contextmanager
    def watching(self) -> Iterator[None]:
        append = SQLiteBulkLoad.append

        def timed(loader: SQLiteBulkLoad, columns: EventColumns) -> None:
            append(loader, columns)
            self.wall, self.cpu = time.perf_counter(), cpu_s(resource.RUSAGE_SELF)

        SQLiteBulkLoad.append = timed  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            SQLiteBulkLoad.append = append  # type: ignore[method-assign]


def run_sqlite(
    days: float, markets: int, *, hashed: bool
) -> tuple[int, float, float, int, float, tuple[float, float]]:
    """Events, wall s, CPU s, bytes on disk of ``generate_history`` into a fresh file, the CPU
    s of its simulation's child process (the rest is this process: the writes), and the tail
    after the last batch (wall s, this process's CPU s)."""
    last = LastBatch()
    with tempfile.TemporaryDirectory() as tmp, last.watching():
        path = Path(tmp) / "bench.sqlite"

        async def go() -> int:
            store = SQLiteStore(path)
            try:
                summary = await generate_history(
                    store, days=days, n_markets=markets, progress=False
                )
                return summary.events
            finally:
                await store.close()

        started, cpu, child = time.perf_counter(), cpu_s(), cpu_s(resource.RUSAGE_CHILDREN)
        events = asyncio.run(go())
        ended, cpu = time.perf_counter(), cpu_s() - cpu
        tail = (ended - last.wall, cpu_s(resource.RUSAGE_SELF) - last.cpu)
        elapsed = ended - started
        child = cpu_s(resource.RUSAGE_CHILDREN) - child
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
        if hashed:
            print(" ".join(f"{table}={digest}" for table, digest in digests(path).items()))
    return events, elapsed, cpu, size, child, tail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--markets", type=int, default=275)
    parser.add_argument("--modes", default="arrays,events,sqlite")
    parser.add_argument("--hash", action="store_true", help="print the stored tables' digests")
    args = parser.parse_args()
    modes = args.modes.split(",")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(f"{args.days:g} days x {args.markets} markets, seed 0\n")
    print("| mode | events | wall s | CPU s | events/s | goal (< 120 s) |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for mode in modes:
        extra = ""
        if mode == "sqlite":
            events, wall, cpu, size, child, tail = run_sqlite(
                args.days, args.markets, hashed=args.hash
            )
            extra = (
                f" ({size / 1e6:,.0f} MB on disk; CPU s: child {child:.1f}, "
                f"parent {cpu - child:.1f}; after the last batch: {tail[0]:.1f} s wall, "
                f"parent CPU {tail[1]:.1f} s)"
            )
        elif mode == "stored":
            events, wall, cpu = run_stored(args.days, args.markets)
        else:
            cpu = cpu_s()
            events, wall = run_arrays(args.days, args.markets, structs=mode == "events")
            cpu = cpu_s() - cpu
        verdict = "met" if wall < 120 * args.days / 30 else "missed"
        if mode == "stored":
            verdict = "- (no store)"
        print(
            f"| {mode}{extra} | {events:,} | {wall:.1f} | {cpu:.1f} | {events / wall:,.0f} "
            f"| {verdict} |"
        )
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
