"""Heatmap accuracy against the simulator's true positions.

Run (one command, from the repository root)::

    .venv/bin/python bench/heatmap_eval.py

The simulator (``purpleflea.sim``) runs ``--hours`` of simulated time for each ``--seeds``
seed. Its open-interest snapshots (every minute, one per exchange listing) go to a
:class:`HeatmapModel` with the default configuration, together with the low and high of the
simulator's mark price since the previous snapshot (a live operator has the mark-price stream
too). Nothing else reaches the model: not the simulator's leverage mix, sizes, sides or
positions.

Every ``--every`` minutes after ``--warmup`` hours, for the top ``--top`` markets (the
universe is ordered by open interest) plus every ``--tail-step``-th market beyond them, the
model's default heatmap (mark +/- 20 %) is compared with the truth's notional at risk on the
same buckets (``Truth.notional_at_risk``):

- Pearson correlation of the whole heatmap (long and short buckets side by side) and of each
  side alone;
- earth mover's distance between the estimated and true *shapes* of each side (both normalized
  to 1), in percent of the mark price: how far, on average, estimated notional would have to
  move to sit where the true notional is;
- the ratio of estimated to true notional in the view.

A naive baseline is scored next to the model: a model that only ever saw the latest snapshot
(all open interest placed as at a first sight, ``--first-sight``). It shows what the history
of open-interest changes and sweeps adds. Prints Markdown.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from purpleflea.engine.heatmap import (
    DEFAULT_TIERS,
    FIRST_SIGHT,
    RETAIL_TIERS,
    HeatmapConfig,
    HeatmapModel,
)
from purpleflea.model import MarketSnapshot, Side
from purpleflea.sim.process import SimConfig, Simulator

SIDES: tuple[Side, ...] = ("long", "short")
TIERS = {"default": DEFAULT_TIERS, "retail": RETAIL_TIERS}
#: How open interest found at first sight is placed: the fitted shape (the default) or the
#: earlier flat spread of entries within 3 % of the mark.
FIRST_SIGHTS = {"fitted": FIRST_SIGHT, "flat": None}


@dataclass
class Scores:
    pearson: list[float] = field(default_factory=list)
    pearson_side: dict[Side, list[float]] = field(default_factory=lambda: {"long": [], "short": []})
    emd_pct: dict[Side, list[float]] = field(default_factory=lambda: {"long": [], "short": []})
    ratio: dict[Side, list[float]] = field(default_factory=lambda: {"long": [], "short": []})

    def add(
        self, estimate: dict[Side, np.ndarray], truth: dict[Side, np.ndarray], bucket_pct: float
    ) -> None:
        whole_est = np.concatenate([estimate["long"], estimate["short"]])
        whole_true = np.concatenate([truth["long"], truth["short"]])
        self.pearson.append(pearson(whole_est, whole_true))
        for side in SIDES:
            est, true = estimate[side], truth[side]
            self.pearson_side[side].append(pearson(est, true))
            if est.sum() > 0 and true.sum() > 0:
                gap = np.cumsum(est / est.sum() - true / true.sum())
                self.emd_pct[side].append(float(np.abs(gap).sum() * bucket_pct))
                self.ratio[side].append(float(est.sum() / true.sum()))

    def rows(self, name: str) -> list[str]:
        def mean(values: list[float]) -> str:
            finite = [v for v in values if np.isfinite(v)]
            return f"{np.mean(finite):.3f}" if finite else "-"

        def median(values: list[float]) -> str:
            finite = [v for v in values if np.isfinite(v)]
            return f"{np.median(finite):.3f}" if finite else "-"

        return [
            f"| {name} | {len(self.pearson)} | {mean(self.pearson)} | {median(self.pearson)} "
            f"| {mean(self.pearson_side['long'])} | {mean(self.pearson_side['short'])} "
            f"| {mean(self.emd_pct['long'])} | {mean(self.emd_pct['short'])} "
            f"| {median(self.ratio['long'])} | {median(self.ratio['short'])} |"
        ]


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def evaluate(
    args: argparse.Namespace,
    seed: int,
    results: dict[tuple[float | None, str], Scores],
    per_market: dict[tuple[float | None, str], Scores],
) -> None:
    sim = Simulator(SimConfig(seed=seed, n_markets=args.markets))
    names = sim.market_names
    scored = list(range(min(args.top, len(names))))
    scored += list(range(args.top, len(names), args.tail_step))
    fed = {names[i] for i in scored}
    index = np.array(scored)
    config = HeatmapConfig(
        tiers=TIERS[args.tiers],
        first_sight=FIRST_SIGHTS[args.first_sight],
        opened=FIRST_SIGHT if args.opened_share > 0 else None,
        opened_share=args.opened_share,
        turnover_per_hour=args.turnover,
    )
    model = HeatmapModel(config)
    latest: dict[str, dict[tuple[str, str], MarketSnapshot]] = {}
    low = high = sim.marks()[index].copy()
    minutes = 0
    end = sim.now_ms + int(args.hours * 3_600_000)
    for step in sim.steps():
        marks = sim.marks()[index]
        low, high = np.minimum(low, marks), np.maximum(high, marks)
        if not step.snapshots:
            continue
        ranges = {
            names[i]: (float(lo), float(hi)) for i, lo, hi in zip(scored, low, high, strict=True)
        }
        for snapshot in step.snapshots:
            if snapshot.market in fed:
                lo, hi = ranges[snapshot.market]
                model.on_snapshot(snapshot, low=lo, high=hi)
                latest.setdefault(snapshot.market, {})[snapshot.exchange, snapshot.symbol] = (
                    snapshot
                )
        low = high = marks.copy()
        minutes += 1
        if minutes >= args.warmup * 60 and minutes % args.every == 0:
            for rank in scored:
                group = "top" if rank < args.top else "tail"
                market = names[rank]
                naive = HeatmapModel(config)  # the baseline: only the latest snapshots
                for snapshot in latest[market].values():
                    naive.on_snapshot(snapshot)
                for bucket in args.bucket_pct:
                    score(sim, model, market, results[bucket, f"{group} model"], bucket)
                    score(sim, naive, market, results[bucket, f"{group} naive"], bucket)
                    if group == "top":
                        score(sim, model, market, per_market[bucket, market], bucket)
        if step.ts >= end:
            return


def score(
    sim: Simulator, model: HeatmapModel, market: str, scores: Scores, bucket_pct: float | None
) -> None:
    """Score the view mark +/- 20 %: the model's default heatmap (``bucket_pct`` None) or
    buckets of ``bucket_pct`` % of the mark."""
    if bucket_pct is None:
        heat = model.heatmap(market)
    else:
        mark = sim.mark(market)
        heat = model.heatmap(
            market, low=mark * 0.8, high=mark * 1.2, bucket=mark * bucket_pct / 100
        )
    edges = np.array([*heat.prices, heat.prices[-1] + heat.bucket_size])
    estimate = {"long": np.array(heat.long_usd), "short": np.array(heat.short_usd)}
    truth = {side: sim.truth.notional_at_risk(market, side, edges) for side in SIDES}
    scores.add(estimate, truth, heat.bucket_size / heat.mark_price * 100)


HEADER = (
    "| {what} | samples | Pearson (whole map) mean | median | Pearson longs "
    "| Pearson shorts | EMD longs (% of price) | EMD shorts | est/true longs "
    "| est/true shorts |\n|---|---|---|---|---|---|---|---|---|---|"
)


def bucket_name(bucket: float | None) -> str:
    return "default view (~0.4 % buckets)" if bucket is None else f"{bucket:g} % buckets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--warmup", type=float, default=6.0, help="hours before scoring")
    parser.add_argument("--every", type=int, default=30, help="minutes between scorings")
    parser.add_argument("--markets", type=int, default=275)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--tail-step", type=int, default=10)
    parser.add_argument(
        "--tiers", choices=sorted(TIERS), default="default", help="the model's leverage mix"
    )
    parser.add_argument(
        "--first-sight",
        choices=sorted(FIRST_SIGHTS),
        default="fitted",
        help="how open interest found at first sight is placed (the naive baseline is only that)",
    )
    parser.add_argument(
        "--opened-share",
        type=float,
        default=HeatmapConfig().opened_share,
        help="share of new open interest placed by the first-sight shape (0: the tiers, "
        "the default until 2026-12-08, with --turnover 0.1)",
    )
    parser.add_argument("--turnover", type=float, default=HeatmapConfig().turnover_per_hour)
    parser.add_argument(
        "--bucket-pct",
        type=float,
        nargs="+",
        default=[None, 1.0],
        help="bucket widths (%% of the mark) over mark +/- 20 %%; default: the model's default "
        "view (~0.4 %% buckets) and 1 %%",
    )
    args = parser.parse_args()
    groups = [f"{g} {n}" for g in ("top", "tail") for n in ("model", "naive")]
    results = {(b, g): Scores() for b in args.bucket_pct for g in groups}
    per_market: dict[tuple[float | None, str], Scores] = defaultdict(Scores)
    started = time.perf_counter()
    for seed in args.seeds:
        evaluate(args, seed, results, per_market)
    print(
        f"Seeds {args.seeds}, {args.hours:g} h simulated each, scored every {args.every} min "
        f"after {args.warmup:g} h; top {args.top} markets and every {args.tail_step}th beyond; "
        f"leverage mix: {args.tiers}; first sight: {args.first_sight}; opened by the shape: "
        f"{args.opened_share:g}; turnover {args.turnover:g}/h; "
        f"{time.perf_counter() - started:.0f} s."
    )
    for bucket in args.bucket_pct:
        print(f"\n{bucket_name(bucket)}:\n")
        print(HEADER.format(what="markets, estimator"))
        for group in groups:
            print("\n".join(results[bucket, group].rows(group)))
    for bucket in args.bucket_pct:
        print(f"\nPer market (top {args.top}, model), {bucket_name(bucket)}:\n")
        print(HEADER.format(what="market"))
        for (b, market), scores in per_market.items():
            if b == bucket:
                print("\n".join(scores.rows(market)))


if __name__ == "__main__":
    main()
