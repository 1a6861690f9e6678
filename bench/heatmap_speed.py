"""Heatmap refresh cost: every market's snapshot applied and its heatmap recomputed, per cycle.

Run (one command, from the repository root)::

    .venv/bin/python bench/heatmap_speed.py

A cycle is what the server does once per poll: one :meth:`HeatmapModel.on_snapshot` per
instrument (``--exchanges`` instruments per market, 1 by default) and one
:meth:`HeatmapModel.heatmap` per market (the default view, so every market's summed view is
rebuilt). Markets are synthetic: ``--markets`` coins with prices spread from 1e-5 to 1e5 USD,
each a random walk (0.3 % per cycle) with a candle range and open interest drifting 1 % per
cycle. The model is warmed up for ``--warmup`` cycles first, so books hold the history of a
long-running server, then ``--cycles`` are timed with ``time.process_time`` (CPU, not wall).

Single requests are timed after that: ``heatmap(market)`` right after a snapshot (the summed
view is rebuilt: the worst case) and again from the cached view, plus ``fuel``. Prints
Markdown, with the grid bins the books hold at the end (each bin two float64: longs, shorts).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time

import numpy as np

from purpleflea.engine.heatmap import FIRST_SIGHT, HeatmapConfig, HeatmapModel
from purpleflea.model import MarketSnapshot


class Walk:
    """One instrument's synthetic mark, candle range and open interest."""

    def __init__(self, rng: random.Random, market: str, exchange: str, price: float) -> None:
        self.rng, self.market, self.exchange = rng, market, exchange
        self.mark, self.coins, self.ts = price, 1e7 / price, 0

    def step(self) -> tuple[MarketSnapshot, float, float]:
        rng = self.rng
        start = self.mark
        self.mark *= 1 + rng.gauss(0, 0.003)
        low = min(start, self.mark) * (1 - abs(rng.gauss(0, 0.001)))
        high = max(start, self.mark) * (1 + abs(rng.gauss(0, 0.001)))
        self.coins *= 1 + rng.gauss(0, 0.01)
        self.ts += 60_000
        snapshot = MarketSnapshot(
            exchange=self.exchange,
            symbol=self.market,
            market=self.market,
            ts=self.ts,
            mark_price=self.mark,
            open_interest=self.coins,
            open_interest_usd=self.coins * self.mark,
        )
        return snapshot, low, high


def cycle(model: HeatmapModel, walks: list[Walk], markets: list[str]) -> None:
    for walk in walks:
        snapshot, low, high = walk.step()
        model.on_snapshot(snapshot, low=low, high=high)
    for market in markets:
        model.heatmap(market)


def percentiles(values: list[float]) -> str:
    ms = np.array(values) * 1000
    return (
        f"median {np.median(ms):.2f} ms, p99 {np.quantile(ms, 0.99):.2f} ms, max {ms.max():.2f} ms"
    )


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} logical CPUs (shared with other jobs), "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--markets", type=int, default=275)
    parser.add_argument("--exchanges", type=int, default=1, help="instruments per market")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument(
        "--opened-share",
        type=float,
        default=HeatmapConfig().opened_share,
        help="share of new open interest placed by the first-sight shape (0: the tiers, "
        "the default until 2026-12-08)",
    )
    args = parser.parse_args()

    rng = random.Random(1)
    markets = [f"C{i:03d}-PERP" for i in range(args.markets)]
    prices = np.logspace(-5, 5, args.markets)
    walks = [
        Walk(rng, market, f"ex{e}", float(price))
        for market, price in zip(markets, prices, strict=True)
        for e in range(args.exchanges)
    ]
    model = HeatmapModel(
        HeatmapConfig(
            opened=FIRST_SIGHT if args.opened_share > 0 else None, opened_share=args.opened_share
        )
    )
    for _ in range(args.warmup):
        for walk in walks:
            snapshot, low, high = walk.step()
            model.on_snapshot(snapshot, low=low, high=high)

    cycles = []
    for _ in range(args.cycles):
        started = time.process_time()
        cycle(model, walks, markets)
        cycles.append(time.process_time() - started)

    rebuilt, cached, fuel = [], [], []
    for i in range(args.requests):
        walk = walks[rng.randrange(len(walks))]
        snapshot, low, high = walk.step()
        model.on_snapshot(snapshot, low=low, high=high)
        started = time.perf_counter()
        heat = model.heatmap(walk.market)
        rebuilt.append(time.perf_counter() - started)
        started = time.perf_counter()
        model.heatmap(walk.market)
        cached.append(time.perf_counter() - started)
        started = time.perf_counter()
        model.fuel(walk.market, "long" if i % 2 else "short", heat.mark_price, 2.0)
        fuel.append(time.perf_counter() - started)

    print(f"Machine: {machine()}\n")
    print(
        f"Markets {args.markets}, instruments per market {args.exchanges}, warm-up "
        f"{args.warmup} cycles, timed {args.cycles} cycles, {args.requests} requests.\n"
    )
    print("| measure | result |\n|---|---|")
    print(
        f"| CPU per refresh cycle ({len(walks)} on_snapshot + {args.markets} heatmap) "
        f"| {percentiles(cycles)} |"
    )
    print(f"| one heatmap request, view rebuilt after a snapshot (wall) | {percentiles(rebuilt)} |")
    print(f"| one heatmap request, cached view (wall) | {percentiles(cached)} |")
    print(f"| one fuel() call (wall) | {percentiles(fuel)} |")
    print(f"| grid bins held by the books at the end | {held_bins(model):,} |")


def held_bins(model: HeatmapModel) -> int:
    return sum(len(book.long) for books in model._books.values() for book in books.values())


if __name__ == "__main__":
    main()
