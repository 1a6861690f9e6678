"""What the engine journal costs: CPU per snapshot told through it, bytes, and its replay.

    .venv/bin/python bench/engine_journal.py [--markets 275] [--rounds 40] [--repeats 5]

Each round sends one snapshot of every market (one listing each, a random walk of the mark
and the open interest) through the heatmap feed into the cascade engine, as the server does,
once with the engine told directly (as before the journal) and once through
:class:`JournaledFuel` with the journal flushed after every snapshot (as
``Pipeline.on_snapshot`` flushes it), into a file in a temporary folder; the two are
interleaved, ``--repeats`` times each, and the CPU (``time.process_time``) per snapshot of
each is printed with the bytes the journal wrote, and the journal's part alone (the same
records told and flushed a snapshot at a time, no heatmap or engine). Then the journal is
read back after its marker and replayed into a fresh engine, timed per record. The engine is
the pure-Python one unless PURPLEFLEA_PURE_ENGINE is unset (then the compiled one, if built).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PURPLEFLEA_PURE_ENGINE", "1")

from purpleflea.engine import CascadeEngine
from purpleflea.engine.heatmap_feed import HeatmapFeed
from purpleflea.model import MarketSnapshot
from purpleflea.server.engine_journal import (
    EngineJournal,
    Fuel,
    JournaledFuel,
    OpenInterest,
    Tick,
)

T0 = 1_760_000_000_000


def _snapshots(markets: int, rounds: int, seed: int) -> list[list[MarketSnapshot]]:
    rng = random.Random(seed)
    marks = [rng.uniform(0.1, 60_000.0) for _ in range(markets)]
    sizes = [rng.uniform(1e6, 1e9) for _ in range(markets)]
    out = []
    for r in range(rounds):
        batch = []
        for m in range(markets):
            marks[m] *= 1 + rng.gauss(0, 0.004)
            sizes[m] *= 1 + rng.gauss(0, 0.01)
            batch.append(
                MarketSnapshot(
                    exchange="binance_usdm",
                    symbol=f"M{m}USDT",
                    market=f"M{m}-PERP",
                    ts=T0 + r * 60_000,
                    mark_price=marks[m],
                    open_interest=sizes[m] / marks[m],
                    open_interest_usd=sizes[m],
                )
            )
        out.append(batch)
    return out


def _run(rounds: list[list[MarketSnapshot]], journal: EngineJournal | None) -> float:
    """CPU seconds for every snapshot of ``rounds`` through a fresh feed and engine."""
    engine = CascadeEngine()
    feed = HeatmapFeed(fuel=engine)
    if journal is not None:
        journal.begin(1, 0)
        feed.fuel = JournaledFuel(engine, journal, lambda: 0)
    began = time.process_time()
    for batch in rounds:
        for snapshot in batch:
            feed.on_snapshot(snapshot)
            if journal is not None:
                journal.flush()
    spent = time.process_time() - began
    if journal is not None:
        journal.close()
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=275)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rounds = _snapshots(args.markets, args.rounds, seed=1)
    count = args.markets * args.rounds
    plain: list[float] = []
    journaled: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        journal = EngineJournal(Path(folder) / "db.sqlite.engine")
        for _ in range(args.repeats):
            plain.append(_run(rounds, None))
            journaled.append(_run(rounds, journal))
        size = journal.path.stat().st_size
        records = journal.after(1)
        assert records is not None
        alone = []
        for _ in range(args.repeats):  # the journal's part alone: its records told, flushed
            journal.begin(2, 0)
            began = time.process_time()
            at = 0
            while at < len(records):
                for record in records[at : at + 3]:  # one snapshot's three calls
                    journal.told(record)
                journal.flush()
                at += 3
            alone.append(time.process_time() - began)
        journal.close()
        journal.begin(1, 0)  # the measured run's records again, for the read back below
        for record in records:
            journal.told(record)
        journal.close()
        assert records is not None
        kinds = {
            kind.__name__: sum(isinstance(r, kind) for r in records)
            for kind in (Fuel, OpenInterest, Tick)
        }
        began = time.process_time()
        for _ in range(args.repeats):
            read = journal.after(1)
            assert read is not None
        read_s = (time.process_time() - began) / args.repeats
        engine = CascadeEngine()
        began = time.process_time()
        for record in records:
            if isinstance(record, Fuel):
                engine.set_fuel(record.market, record.side, record.ratio)
            elif isinstance(record, OpenInterest):
                engine.set_open_interest(record.market, record.usd, record.instrument)
        apply_s = time.process_time() - began
    us = 1e6 / count
    print(
        f"{args.markets} markets x {args.rounds} rounds = {count:,} snapshots, "
        f"{args.repeats} interleaved repeats (load {os.getloadavg()[0]:.1f}, "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC)"
    )
    print(
        "told directly:   "
        + ", ".join(f"{s * us:.1f}" for s in plain)
        + f" us CPU a snapshot (median {statistics.median(plain) * us:.1f})"
    )
    print(
        "through journal: "
        + ", ".join(f"{s * us:.1f}" for s in journaled)
        + f" us CPU a snapshot (median {statistics.median(journaled) * us:.1f})"
    )
    print(
        "journal alone (3 records told and one write a snapshot): "
        + ", ".join(f"{s * us:.1f}" for s in alone)
        + f" us CPU a snapshot (median {statistics.median(alone) * us:.1f})"
    )
    print(
        f"journal: {size:,} bytes, {size / count:.1f} a snapshot, records {kinds}; "
        f"read back {read_s / len(records) * 1e6:.2f} us a record, "
        f"replayed {apply_s / len(records) * 1e6:.2f} us a record"
    )


if __name__ == "__main__":
    main()
