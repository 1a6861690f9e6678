"""What the seq mark (store/seqmark.py) costs the pipeline at crash rates.

Run (from the repository root)::

    .venv/bin/python bench/seqmark.py                    # 200,000 events, batches of 100
    .venv/bin/python bench/seqmark.py --events 50000     # a quick look

The tracker's pipeline (no cascade engine, the in-process bus, a SQLite store in a fresh
temporary folder) takes ``--events`` events in batches of ``--batch`` (each batch one plan:
submitted, then drained, as the flush loop takes a crash's backlog), three ways, alternated
``--rounds`` times in this one process so machine load hits each alike:

- ``none``: no mark (the release before);
- ``ahead=10000``: the default, one mark write (fsync of the file and of its folder) per
  10,000 seqs;
- ``ahead=1``: a write for every batch (what a mark without reserving ahead would cost).

Reported per event: process CPU (user+sys, ``time.process_time``: the fsyncs' own wait is
not CPU) and wall time (which holds the fsyncs' wait: the event loop does not wait for them,
they run on a worker thread, but the next batch is not stored before its mark is written),
and the mark writes. Then one mark write alone, ``--writes`` times in a fresh folder: its
median wall time (the fsyncs' wait) and CPU, the figure a reservation of ``ahead`` seqs
spreads over that many events (the pipeline runs differ by more than 21 writes' worth of noise).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from purpleflea.bus.local import LocalBus
from purpleflea.model import VenueLiquidation
from purpleflea.server.pipeline import Pipeline
from purpleflea.store.seqmark import SeqMark
from purpleflea.store.sqlite import SQLiteStore

_ids = itertools.count()
T0 = 1_760_000_000_000


def _events(count: int) -> list[VenueLiquidation]:
    out = []
    for _ in range(count):
        n = next(_ids)
        out.append(
            VenueLiquidation(
                id=f"bench:{n}",
                exchange="sim",
                symbol="BTCUSDT",
                market="BTC-PERP",
                side="long",
                price=60_000.0,
                quantity=0.5,
                size_usd=30_000.0,
                ts=T0 + n,
            )
        )
    return out


async def _run(
    folder: Path, ahead: int | None, events: int, batch: int
) -> tuple[float, float, int]:
    db = folder / "history.sqlite"
    mark = None if ahead is None else SeqMark.beside(db, ahead=ahead)
    pipeline = Pipeline(SQLiteStore(db), LocalBus(), seq_mark=mark)
    await pipeline.start(warm_events=0)
    batches = [_events(batch) for _ in range(events // batch)]
    cpu, wall = time.process_time(), time.perf_counter()
    for chunk in batches:
        for event in chunk:
            pipeline.submit(event, received_at=T0)
        await pipeline.drain()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await pipeline.stop()
    await pipeline.store.close()
    return cpu, wall, 0 if mark is None else mark.writes


def _one_write(writes: int) -> tuple[float, float]:
    """Median wall and CPU seconds of one mark write (file fsync, rename, folder fsync)."""
    walls, cpus = [], []
    with tempfile.TemporaryDirectory(prefix="pf-seqmark-") as folder:
        mark = SeqMark(Path(folder) / "history.sqlite.seqmark", ahead=1)
        for seq in range(1, writes + 1):
            cpu, wall = time.process_time(), time.perf_counter()
            mark.reserve(seq * 2, stored=seq)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--writes", type=int, default=500)
    args = parser.parse_args()
    ways: list[tuple[str, int | None]] = [("none", None), ("ahead=10000", 10_000), ("ahead=1", 1)]
    results: dict[str, list[tuple[float, float, int]]] = {name: [] for name, _ in ways}
    for _ in range(args.rounds):
        for name, ahead in ways:
            with tempfile.TemporaryDirectory(prefix="pf-seqmark-") as folder:
                results[name].append(
                    asyncio.run(_run(Path(folder), ahead, args.events, args.batch))
                )
    print(
        f"# {args.events:,} events in batches of {args.batch}, {args.rounds} rounds, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print("| mark | CPU us/event (median) | wall us/event (median) | mark writes |")
    print("| --- | ---: | ---: | ---: |")
    for name, _ in ways:
        runs = results[name]
        cpu = statistics.median(r[0] for r in runs) / args.events * 1e6
        wall = statistics.median(r[1] for r in runs) / args.events * 1e6
        print(f"| {name} | {cpu:.2f} | {wall:.2f} | {runs[0][2]:,} |")
    wall, cpu = _one_write(args.writes)
    print(
        f"\none mark write (median of {args.writes}): {wall * 1e3:.2f} ms wall, "
        f"{cpu * 1e6:.0f} us CPU; per event at ahead=10000: {wall / 10_000 * 1e6:.3f} us wall, "
        f"{cpu / 10_000 * 1e6:.4f} us CPU"
    )


if __name__ == "__main__":
    main()
