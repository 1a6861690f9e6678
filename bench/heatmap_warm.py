"""The warmed heatmap with new open interest placed by the real shape: chosen on the first
half of the measured maps, judged on the second.

    .venv/bin/python bench/heatmap_warm.py            # ~20 s CPU; --data the shared data/real

The warmed model (60 days of hourly rows, as the verdict line of ``bench/heatmap_real.py``)
places every open-interest increase through the leverage tiers. The candidates place it
(``opened_share`` of it, the rest through the tiers) at liquidation log-distances from each
entry drawn from the first-sight gamma fitted on the 131 real positions of 2026-01-04
(``HeatmapConfig(opened=FIRST_SIGHT)``); sweeps, turnover and closes are unchanged.

Protocol (pre-registered in docs/heatmap.md, section 6): the measured maps are split by time,
**choice** 2026-01-26 .. 02-08 and **judge** 02-09 .. 02-22 (a model is fed every row either
way; only its scores are split). Candidate A is fixed in advance (share 1, turnover 10 %/h,
the default). Candidate B is the grid point with the best BTC+ETH mean Spearman on the choice
half. Both are then scored on the judge half and on the full set, beside the current warmed
model, the first sight alone (a fresh model fed the newest row: ``bench/heatmap_prior.py``'s
``H`` = 0) and the 1/distance prior; intervals are 95 % bootstrap over snapshots, as there.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
from pathlib import Path

import numpy as np

import heatmap_measured as hm
import heatmap_prior as hp
from purpleflea.engine.heatmap import FIRST_SIGHT, HeatmapConfig

SPLIT = int(dt.datetime(2026, 2, 9, tzinfo=dt.UTC).timestamp() * 1000)
SHARES = (0.25, 0.5, 0.75, 1.0)
TURNOVERS = (0.03, 0.1, 0.3)
PAIR = ("BTC", "ETH")

Scores = dict[str, list[float | None]]  # per coin, one per measured snapshot


def candidate(share: float, turnover: float) -> HeatmapConfig:
    return HeatmapConfig(opened=FIRST_SIGHT, opened_share=share, turnover_per_hour=turnover)


def warmed(
    hourly: dict[str, hm.Hourly], snaps: dict[str, list[hm.Measured]], config: HeatmapConfig
) -> Scores:
    return {c: hp.scores(hm.model_maps(hourly[c], snaps[c], config, c), snaps[c]) for c in snaps}


def values(
    scores: Scores, snaps: dict[str, list[hm.Measured]], coins: tuple[str, ...], part: str
) -> np.ndarray:
    """Scores of ``coins`` in ``part`` ("choice", "judge" or "all"), snapshot by snapshot."""
    out = []
    for coin in coins:
        for value, snap in zip(scores[coin], snaps[coin], strict=True):
            if value is None:
                continue
            if part == "all" or (part == "choice") == (snap.ts < SPLIT):
                out.append(value)
    return np.array(out)


def paired(
    a: Scores, b: Scores, snaps: dict[str, list[hm.Measured]], coins: tuple[str, ...], part: str
) -> np.ndarray:
    both = {
        c: [
            x - y if x is not None and y is not None else None
            for x, y in zip(a[c], b[c], strict=True)
        ]
        for c in coins
    }
    return values(both, snaps, coins, part)


def cell(v: np.ndarray) -> str:
    low, high = hm.bootstrap(v)
    return f"{v.mean():+.3f} ({low:+.3f} .. {high:+.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="the shared data/real folder")
    args = parser.parse_args()
    here = Path(__file__).resolve().parents[1]
    root = Path(args.data) if args.data else here.parent / "shared" / "data" / "real"
    measured, hourly = hm.load_measured(root), hm.load_hourly(root)
    snaps = {
        coin: sorted((m for m in measured if m.coin == coin), key=lambda m: m.ts)
        for coin in hm.COINS
    }
    snaps = {c: s for c, s in snaps.items() if s}
    coins = tuple(snaps)

    print("### Choice half (2026-01-26 .. 02-08): grid, BTC+ETH mean Spearman\n")
    print("| opened_share | " + " | ".join(f"turnover {t:g}/h" for t in TURNOVERS) + " |")
    print("|---|" + "---|" * len(TURNOVERS))
    grid: dict[tuple[float, float], Scores] = {}
    for share in SHARES:
        row = []
        for turnover in TURNOVERS:
            got = grid[share, turnover] = warmed(
                hourly, {c: snaps[c] for c in PAIR}, candidate(share, turnover)
            )
            row.append(f"{values(got, snaps, PAIR, 'choice').mean():.3f}")
        print(f"| {share:g} | " + " | ".join(row) + " |")
    best = max(grid, key=lambda key: float(values(grid[key], snaps, PAIR, "choice").mean()))
    print(
        f"\nCandidate B (best on the choice half): opened_share {best[0]:g}, turnover {best[1]:g}/h"
    )

    rows: dict[str, Scores] = {
        "warmed, tiers (previous default)": warmed(hourly, snaps, hm.PREVIOUS),
        "A: warmed, shape 1, turnover 0.1": warmed(hourly, snaps, candidate(1.0, 0.1)),
        f"B: warmed, shape {best[0]:g}, turnover {best[1]:g}": warmed(
            hourly, snaps, candidate(*best)
        ),
        "first sight alone": {
            c: hp.scores(hp.recent_maps(hourly[c], snaps[c], HeatmapConfig(), c, 0), snaps[c])
            for c in coins
        },
        "distance prior": {c: hp.scores(hm.distance_maps(snaps[c]), snaps[c]) for c in coins},
    }
    groups = [(c, (c,)) for c in coins] + [("BTC+ETH", PAIR)]
    names = list(rows)
    for part, title in (("judge", "Judge half (02-09 .. 02-22)"), ("all", "All 137")):
        print(f"\n### {title}: mean Spearman (95 % bootstrap)\n")
        print("| estimator | " + " | ".join(label for label, _ in groups) + " |")
        print("|---|" + "---|" * len(groups))
        for name in names:
            cells = [cell(values(rows[name], snaps, members, part)) for _, members in groups]
            print(f"| {name} | " + " | ".join(cells) + " |")
        for a, b in itertools.product(names[1:3], (names[0], names[3])):
            cells = []
            for _, members in groups:
                diff = paired(rows[a], rows[b], snaps, members, part)
                cells.append(f"{cell(diff)}, wins {float((diff > 0).mean()):.0%}")
            print(f"| {a[:1]} minus {b} (paired) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
