"""How long a real all-market liquidation feed stays quiet: the data watchdog's evidence.

    nice -n 10 .venv/bin/python bench/quiet_gaps.py

Real data (local validation only; shared/data/real/SOURCES.md 5b): OKX's filled liquidation
orders of 2026-03-04/05 (``0xknxwledge_group-m-finm33150-final/liquidations.parquet``, read as
``bench/cascade_real_venues.py`` reads it), 5,816 orders of five USDT swaps (BTC, ETH, SOL,
DOGE, HYPE), each coin one REST page run: a continuous record from its first row to its last.

Live, the OKX connection subscribes to every swap and future (``liquidation-orders`` by
``instType``), hundreds of contracts: the gap between consecutive liquidations of these five
coins is an upper bound on the gap between consecutive liquidations of the whole market at
the same time. Measured two ways:

- **all rows**: the gaps between consecutive orders of the union, over the whole file
  (before a coin's page starts, fewer coins are counted: a looser bound still);
- **all five**: only inside the window every coin's page covers (the latest first row to the
  earliest last row), so every gap is one of five coins at once.

Prints the count, median, p99, p99.9 and max of each, and the five longest gaps with their
UTC start; and the same for each coin alone (a connection of a few contracts). The data
watchdog's period is chosen above the max with a margin (``ALL_MARKET_DATA_TIMEOUT`` in
``venues/_connection.py``; docs/live.md, "Keeping each connection alive").
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Sequence
from pathlib import Path

from cascade_real_venues import KNX_LIQUIDATIONS, load, windows

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def gaps_s(times_ms: Sequence[int]) -> list[tuple[float, int]]:
    """``(gap in s, start ms)`` between consecutive ``times_ms`` (sorted)."""
    return [((b - a) / 1000.0, a) for a, b in itertools.pairwise(times_ms)]


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``sorted_values``."""
    if not sorted_values:
        raise ValueError("quantile of no values")
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def utc(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def report(name: str, times_ms: Sequence[int]) -> None:
    gaps = gaps_s(times_ms)
    values = sorted(g for g, _ in gaps)
    span_h = (times_ms[-1] - times_ms[0]) / 3_600_000
    print(
        f"{name}: {len(times_ms)} orders over {span_h:.1f} h ({utc(times_ms[0])} -> "
        f"{utc(times_ms[-1])} UTC), {len(values)} gaps: median {quantile(values, 0.5):.1f} s, "
        f"p99 {quantile(values, 0.99):.0f} s, p99.9 {quantile(values, 0.999):.0f} s, "
        f"max {values[-1]:.0f} s"
    )
    longest = sorted(gaps, reverse=True)[:5]
    print("  longest: " + ", ".join(f"{g:.0f} s from {utc(start)}" for g, start in longest))


def main() -> None:
    rows = load(REAL / KNX_LIQUIDATIONS, "okx")
    spans = windows(rows)
    for market in sorted(spans):
        # One coin alone: how quiet a connection of a few contracts can be (Bybit inverse).
        report(f"okx {market} alone", [r.ts for r in rows if r.market == market])
    times = [r.ts for r in rows]
    report("okx, all rows", times)
    start = max(first for first, _ in spans.values())
    end = min(last for _, last in spans.values())
    report("okx, all five coins covered", [t for t in times if start <= t <= end])


if __name__ == "__main__":
    main()
