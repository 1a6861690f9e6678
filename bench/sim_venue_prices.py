"""Simulated OKX liquidation prices against real OKX ``bkPx`` (issue 20, realism).

    nice -n 10 .venv/bin/python bench/sim_venue_prices.py [--seeds 3] [--days 2]

Real data (local validation only; shared/data/real/SOURCES.md 5b): OKX's filled liquidation
orders of 2026-03-04/05 (``0xknxwledge_group-m-finm33150-final/liquidations.parquet``, read as
``bench/cascade_real_venues.py`` reads it; ``price`` is ``bkPx``) and OKX's hourly perpetual
candles of the same file set (``candles.parquet``).

Figures per coin (BTC, ETH, SOL, DOGE), real OKX against the simulator's ``okx`` events and,
as the fill reference, its ``binance_usdm`` events:

- **beyond the hour's range**: how far the price lies past its hour's candle in the
  liquidation's direction (a long's under the low, a short's over the high; negative: inside
  the range), in percent; and the share of orders past it. A fill cannot lie past the range
  (but for the venue's basis); a bankruptcy price lies past it whenever the market did not
  reach it that hour. The market's price at the order's moment is not in an hourly candle, so
  this is the one distance both sides measure alike (the simulator's candles are built the
  same way, from its ``okx`` listing's price at every step);
- **consecutive, same market and side, within 10 s**: ``|price / previous - 1|`` p50 and p90
  (percent), and the same against the **nearest** of the previous six orders within 10 s
  (interleaved tracks: positions of other leverage and tier quoted side by side).

The simulation is the history configuration (1 s steps, 5-minute blocks) of the first 20
markets, seeds 0.. ``--seeds``-1, ``--days`` each.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from purpleflea.sim import Simulator
from purpleflea.sim.history import blocks, history_config

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
FILES = REAL / "0xknxwledge_group-m-finm33150-final"
COINS = ("BTC", "ETH", "SOL", "DOGE")
HOUR_MS = 3_600_000
WINDOW_MS = 10_000
TRACKS = 6

#: (coin, side +1 long / -1 short, ts ms, price)
Order = tuple[str, int, int, float]
#: (coin, hour start ms) -> (low, high)
Candles = dict[tuple[str, int], tuple[float, float]]


def real_orders() -> list[Order]:
    out: list[Order] = []
    for rec in pq.read_table(FILES / "liquidations.parquet").to_pylist():
        if rec["venue"] != "okx" or rec["coin"] not in COINS:
            continue
        side = 1 if rec["side"] == "sell" else -1  # OKX's order side: a sell closes a long
        out.append((rec["coin"], side, int(rec["timestamp"].timestamp() * 1000), rec["price"]))
    return sorted(out, key=lambda o: o[2])


def real_candles() -> Candles:
    out: Candles = {}
    for rec in pq.read_table(FILES / "candles.parquet").to_pylist():
        if rec["venue"] == "okx" and rec["coin"] in COINS:
            out[(rec["coin"], int(rec["timestamp"].timestamp() * 1000))] = (rec["l"], rec["h"])
    return out


def simulated(seed: int, days: float) -> tuple[dict[str, list[Order]], Candles]:
    """The simulator's ``okx`` and ``binance_usdm`` orders of the four coins, and hourly
    candles of its ``okx`` listing's price (the mark times OKX's basis) at block ends."""
    sim = Simulator(history_config(seed=seed, n_markets=20))
    names = [n.removesuffix("-PERP") for n in sim.market_names]
    wanted = [names.index(c) for c in COINS]
    listing = {
        (m, lst.exchange): i for m in wanted for i, lst in enumerate(sim.markets[m].listings)
    }
    okx = [listing[m, "okx"] for m in wanted]
    orders: dict[str, list[Order]] = defaultdict(list)
    candles: Candles = {}
    for raw in blocks(sim, days):
        for i in np.flatnonzero(np.isin(raw.market, wanted)).tolist():
            m, li = int(raw.market[i]), int(raw.listing[i])
            exchange = sim.markets[m].listings[li].exchange
            if exchange in ("okx", "binance_usdm"):
                orders[exchange].append(
                    (names[m], int(raw.side[i]), int(raw.ts[i]), float(raw.price[i]))
                )
        # Every step's mark of the block (a block never spans two hours: 5 minutes), times
        # OKX's basis: the hour's range as a candle of every trade would have it.
        hour = (raw.end_ms - 1) // HOUR_MS * HOUR_MS
        for coin, m, li in zip(COINS, wanted, okx, strict=True):
            path = sim._marks[:, m] * np.exp(sim._quoted_basis[m, li])
            low, high = candles.get((coin, hour), (np.inf, 0.0))
            candles[(coin, hour)] = (min(low, float(path.min())), max(high, float(path.max())))
    return orders, candles


def beyond(orders: list[Order], candles: Candles) -> dict[str, np.ndarray]:
    """Per coin: each order's distance past its hour's range, percent (see the docstring)."""
    out: dict[str, list[float]] = defaultdict(list)
    for coin, side, ts, price in orders:
        span = candles.get((coin, ts // HOUR_MS * HOUR_MS))
        if span is None:
            continue
        low, high = span
        out[coin].append(100 * ((low - price) / price if side > 0 else (price - high) / price))
    return {coin: np.array(v) for coin, v in out.items()}


def steps(orders: list[Order]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per coin: ``|price / previous - 1|`` (percent) of consecutive orders of one market and
    side within 10 s, and against the nearest of the previous six within 10 s."""
    last: dict[tuple[str, int], list[tuple[int, float]]] = defaultdict(list)
    consecutive: dict[str, list[float]] = defaultdict(list)
    nearest: dict[str, list[float]] = defaultdict(list)
    for coin, side, ts, price in sorted(orders, key=lambda o: o[2]):
        recent = [(t, p) for t, p in last[(coin, side)] if ts - t <= WINDOW_MS]
        if recent:
            consecutive[coin].append(100 * abs(price / recent[-1][1] - 1))
            nearest[coin].append(100 * min(abs(price / p - 1) for _, p in recent))
        last[(coin, side)] = [*recent, (ts, price)][-TRACKS:]
    return (
        {c: np.array(v) for c, v in consecutive.items()},
        {c: np.array(v) for c, v in nearest.items()},
    )


def row(label: str, orders: list[Order], candles: Candles) -> None:
    past = beyond(orders, candles)
    consecutive, nearest = steps(orders)
    for coin in COINS:
        b, c, n = past.get(coin), consecutive.get(coin), nearest.get(coin)
        if b is None or b.size == 0:
            continue
        cells = [
            f"{b.size:,}",
            f"{np.mean(b > 0):.0%}",
            f"{np.percentile(b, 50):.2f} / {np.percentile(b, 90):.2f}",
        ]
        for v in (c, n):
            cells.append(
                "-"
                if v is None or v.size == 0
                else f"{np.percentile(v, 50):.3f} / {np.percentile(v, 90):.3f} ({v.size:,})"
            )
        print(f"| {label} | {coin} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--days", type=float, default=2.0)
    args = parser.parse_args()
    print(
        "| source | coin | orders | past the hour's range | past it, p50 / p90 % | "
        "consecutive <= 10 s, p50 / p90 % (pairs) | nearest of previous 6, p50 / p90 % |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    row("real OKX (bkPx)", real_orders(), real_candles())
    sims: dict[str, list[Order]] = defaultdict(list)
    candles: Candles = {}
    for seed in range(args.seeds):
        orders, seed_candles = simulated(seed, args.days)
        # Seeds' clocks coincide: shift each seed's hours apart so candles stay its own.
        shift = seed * 1000 * HOUR_MS
        for exchange, listed in orders.items():
            sims[exchange] += [(c, s, t + shift, p) for c, s, t, p in listed]
        candles.update({(c, h + shift): v for (c, h), v in seed_candles.items()})
    row("sim okx", sims["okx"], candles)
    row("sim binance_usdm (fills)", sims["binance_usdm"], candles)
    print(f"\nsim: seeds 0-{args.seeds - 1}, {args.days:g} days each, 20 markets, history config")


if __name__ == "__main__":
    main()
