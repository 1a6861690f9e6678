"""Does the served simulator's memory stop growing? The live market in-process, without a server.

    .venv/bin/python bench/sim_soak.py --days 7                 # the simulator alone
    .venv/bin/python bench/sim_soak.py --days 1 --heatmap       # plus the server's heatmap model
    .venv/bin/python bench/sim_soak.py --days 1 --trace         # plus tracemalloc per hour

Drives ``SimConfig.served`` (275 markets, 2.5 s blocks, snapshots every 10 s, the crash
episode at the start) block by block as fast as it runs, doing per block what the live source
does (:func:`purpleflea.server.sources.simulated`): compute the block, capture the restart
state (``resume.capture``, the copy the server keeps), thin it as the published feed is thinned
and build every step's event structs and snapshots. Once per simulated hour it prints a row:
the book (slots holding an open position, total and per market), the reported open interest
(USD, all markets, and BTC's), what the simulator keeps besides the book (the true cascades it
has found, its open runs), the process's RSS, and with ``--trace`` the traced Python heap.

``--heatmap`` also feeds every snapshot and event price to a :class:`HeatmapFeed` (the server's
heatmap state) with a cascade engine as its fuel sink, as the server does, so each market's
view is built after each of its snapshots; the row then adds the model's grid bins (its
books' arrays, both sides) and the bytes of its views. ``--heatmap-every K`` feeds one snapshot
round in K (K=6: once a simulated minute), for runs of days: a book's grid grows only when the
mark leaves the range it has covered, which a coarser feed sees the same.

Every row also gives the widest range any market's mark has spanned since the start, in the
heatmap's 0.1 % bins (what its books must cover).
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from pathlib import Path

import numpy as np

from purpleflea.engine import CascadeEngine
from purpleflea.engine.heatmap import STEP
from purpleflea.engine.heatmap_feed import HeatmapFeed
from purpleflea.sim import SimConfig, Simulator, resume
from purpleflea.sim.book import NEVER
from purpleflea.sim.throttle import snapshot_throttle

HOUR_MS = 3_600_000


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS line in /proc/self/status")


def heatmap_size(feed: HeatmapFeed) -> tuple[int, int, float]:
    """Grid bins held by the model's books (both sides), the widest book's bins, and the
    bytes of its cached views (MB)."""
    model = feed.model
    books = [book for per in model._books.values() for book in per.values()]
    bins = sum(book.long.size + book.short.size for book in books)
    widest = max((book.long.size for book in books), default=0)
    views = sum(v.long_cdf.nbytes + v.short_cdf.nbytes for v in model._views.values())
    return bins, widest, views / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=7.0, help="simulated days (default 7)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markets", type=int, default=275)
    parser.add_argument("--every", type=float, default=1.0, help="simulated hours per row")
    parser.add_argument("--heatmap", action="store_true", help="feed the server's heatmap model")
    parser.add_argument(
        "--heatmap-every", type=int, default=1, help="feed one snapshot round in this many"
    )
    parser.add_argument("--trace", action="store_true", help="tracemalloc's traced heap per row")
    args = parser.parse_args()

    if args.trace:
        # Started before anything is built: a heap traced from the middle of a run counts each
        # replaced copy (the restart state, a view) made after the start as growth.
        tracemalloc.start()
    sim = Simulator(SimConfig.served(seed=args.seed, n_markets=args.markets))
    thin = snapshot_throttle(sim).thin
    feed = HeatmapFeed(fuel=CascadeEngine()) if args.heatmap else None
    latest: list[resume.SimState] = []
    book, start = sim.book, sim.now_ms
    every_ms = int(args.every * HOUR_MS)
    next_row = start
    end = start + int(args.days * 24 * HOUR_MS)
    cols = [
        "sim h",
        "open positions",
        "per market min/med/max",
        "reported OI $B",
        "BTC OI $B",
        "true cascades",
        "open runs",
        "mark range bins (widest)",
        "RSS MB",
    ]
    if args.trace:
        cols.append("traced MB")
    if feed is not None:
        cols += ["heatmap bins", "widest book", "views MB"]
    print(f"seed {args.seed}, {args.markets} markets, {int(book.seg[-1]):,} slots")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---:|" * len(cols))
    wall = time.perf_counter()
    low = high = sim.marks().copy()
    rounds = 0
    while sim.now_ms < end:
        raw = sim.next_block()
        latest[:] = [resume.capture(sim)]
        low, high = np.minimum(low, sim.marks()), np.maximum(high, sim.marks())
        for step in sim.block_steps(thin(raw)):
            if feed is None:
                continue
            if step.snapshots:
                rounds += 1
            if rounds % args.heatmap_every:
                continue
            for event in step.liquidations:
                if event.price is not None:
                    feed.note_price(event.market, event.price)
            for snapshot in step.snapshots:
                feed.on_snapshot(snapshot)
        if sim.now_ms < next_row:
            continue
        next_row += every_ms
        gc.collect()
        alive = (book.qty > 0) & (book.gone_ms == NEVER)
        per_market = np.add.reduceat(alive.astype(np.int64), book.seg[:-1])
        usd = sim.market_open_interest(sim.now_ms)
        oi = usd[0] if usd is not None else np.full(1, np.nan)
        row = [
            f"{(sim.now_ms - start) / HOUR_MS:.1f}",
            f"{int(alive.sum()):,}",
            f"{per_market.min()}/{int(np.median(per_market))}/{per_market.max()}",
            f"{oi.sum() / 1e9:.1f}",
            f"{oi[0] / 1e9:.2f}",
            f"{len(sim.runs.cascades):,}",
            f"{len(sim.runs._open)}",
            f"{np.log(high / low).max() / STEP:,.0f}",
            f"{rss_mb():.0f}",
        ]
        if args.trace:
            row.append(f"{tracemalloc.get_traced_memory()[0] / 1e6:.1f}")
        if feed is not None:
            bins, widest, views = heatmap_size(feed)
            row += [f"{bins:,}", f"{widest:,}", f"{views:.1f}"]
        print("| " + " | ".join(row) + " |", flush=True)
    print(f"{args.days:g} simulated days in {time.perf_counter() - wall:.0f} s of wall time")


if __name__ == "__main__":
    main()
