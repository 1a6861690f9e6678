"""Could realized liquidations teach the heatmap each market's leverage mix? A study (issue #22,
item 3) on held-out simulator seeds, scored against the Bayes oracle in the same run.

    .venv/bin/python bench/heatmap_learn.py --seeds 3 4 --hours 24 --every 30   # ~3 min

Candidates: the default mix and the same ladder shifted ``s`` tiers toward lower leverage
(``s`` = -1, 0, 1, 2; the simulator gives volatile coins less leverage, snapped to tiers, which
a shift of the ladder keeps on the tiers' lines). Each candidate is a full
:class:`HeatmapModel` fed the same snapshots. **Learner** (Bayesian model averaging, no
look-ahead): before each snapshot is applied, each candidate predicts the notional the interval
swept (its ``fuel`` from the previous mark to the interval's low for longs, high for shorts);
the realized liquidations of the interval (the simulator's published events, in units of
``--unit`` USD) are scored under a Poisson likelihood with mean ``c x predicted`` (``c``, the
share of notional at risk that is actually liquidated, profiled per candidate); the posterior
(uniform prior) weights the candidates' maps. **Hindsight**: the best candidate per market
chosen with the truth, the ceiling of any learner choosing among these candidates.

Scores as in ``bench/heatmap_oracle.py`` (default view, Pearson of the whole map with the
simulator's true notional at risk; every ``--every`` minutes after ``--warmup`` hours; top
``--top`` markets). The oracle is told every position but its leverage, and the size-leverage
law (its 0.80 on seeds 1 and 2 is the yardstick of issue #22: goal 85 % of it).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from heatmap_oracle import SIDES, Oracle, pearson
from purpleflea.engine.heatmap import DEFAULT_TIERS, HeatmapConfig, HeatmapModel, LeverageTier
from purpleflea.sim.process import SimConfig, Simulator

SHIFTS = (-1, 0, 1, 2)


def shifted(steps: int) -> tuple[LeverageTier, ...]:
    """The default ladder with every weight moved ``steps`` tiers toward lower leverage (the
    ends keep what would fall off)."""
    weights = [0.0] * len(DEFAULT_TIERS)
    for i, tier in enumerate(DEFAULT_TIERS):
        weights[min(max(i - steps, 0), len(weights) - 1)] += tier.weight
    return tuple(
        LeverageTier(t.leverage, max(w, 1e-6), t.maintenance)
        for t, w in zip(DEFAULT_TIERS, weights, strict=True)
    )


def posterior(stats: list[tuple[float, float, float]]) -> np.ndarray:
    """Candidate weights from (sum realized, sum predicted, sum realized x log predicted)."""
    loglik = []
    for realized, predicted, cross in stats:
        c = realized / predicted if predicted > 0 else 1.0
        loglik.append(cross + realized * math.log(max(c, 1e-12)) - c * predicted)
    values = np.array(loglik)
    weights = np.exp(values - values.max())
    return np.asarray(weights / weights.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 4])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--warmup", type=float, default=6.0)
    parser.add_argument("--every", type=int, default=30)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--unit", type=float, default=1e5, help="USD per Poisson count")
    args = parser.parse_args()
    started = time.perf_counter()
    scores: dict[tuple[str, str], list[float]] = {}
    names: list[str] = []
    for seed in args.seeds:
        sim = Simulator(SimConfig(seed=seed))
        oracle = Oracle(sim)
        names = sim.market_names[: args.top]
        wanted = set(names)
        models = {
            s: HeatmapModel(HeatmapConfig(tiers=shifted(s), opened=None, turnover_per_hour=0.1))
            for s in SHIFTS
        }
        stats = {(m, s): [0.0, 0.0, 0.0] for m in names for s in SHIFTS}
        realized = {(m, side): 0.0 for m in names for side in SIDES}
        previous: dict[str, float] = {}
        low = high = sim.marks().copy()
        minutes = 0
        end = sim.now_ms + int(args.hours * 3_600_000)
        for step in sim.steps():
            for event in step.liquidations:
                if event.market in wanted and event.size_usd:
                    realized[(event.market, event.side)] += event.size_usd / args.unit
            marks = sim.marks()
            low, high = np.minimum(low, marks), np.maximum(high, marks)
            if not step.snapshots:
                continue
            oracle.fold(low, high)
            for market, mark in previous.items():  # read before the snapshot is applied
                m = sim.market_index[market]
                moves = {"long": (mark - low[m]) / mark, "short": (high[m] - mark) / mark}
                for s, model in models.items():
                    acc = stats[(market, s)]
                    for side in SIDES:
                        pct = min(moves[side] * 100, 99.0)
                        swept = model.fuel(market, side, mark, pct) / args.unit if pct > 0 else 0
                        got = realized[(market, side)]
                        acc[0] += got
                        acc[1] += swept
                        acc[2] += got * math.log(swept + 0.01)
            realized = dict.fromkeys(realized, 0.0)
            for snapshot in step.snapshots:
                if snapshot.market in wanted:
                    m = sim.market_index[snapshot.market]
                    for model in models.values():
                        model.on_snapshot(snapshot, low=float(low[m]), high=float(high[m]))
            previous = {market: float(marks[sim.market_index[market]]) for market in names}
            low = high = marks.copy()
            minutes += 1
            if minutes >= args.warmup * 60 and minutes % args.every == 0:
                for market in names:
                    base = models[0].heatmap(market)
                    edges = np.array([*base.prices, base.prices[-1] + base.bucket_size])
                    truth = np.concatenate(
                        [sim.truth.notional_at_risk(market, s, edges) for s in SIDES]
                    )
                    told = [oracle.notional_at_risk(market, s, edges) for s in SIDES]
                    scores.setdefault((market, "oracle"), []).append(
                        pearson(np.concatenate(told), truth)
                    )
                    maps = {}
                    for s, model in models.items():
                        heat = model.heatmap(
                            market,
                            low=float(edges[0]),
                            high=float(edges[-1]),
                            bucket=base.bucket_size,
                        )
                        maps[s] = np.concatenate([heat.long_usd, heat.short_usd])
                        scores.setdefault((market, f"shift {s}"), []).append(
                            pearson(maps[s], truth)
                        )
                    weights = posterior([tuple(stats[(market, s)]) for s in SHIFTS])  # type: ignore[misc]
                    learned = sum(w * maps[s] for w, s in zip(weights, SHIFTS, strict=True))
                    scores.setdefault((market, "learner"), []).append(pearson(learned, truth))
            if step.ts >= end:
                break

    def mean(who: str, market: str) -> float:
        return float(np.nanmean(scores[(market, who)]))

    oracle_mean = float(np.mean([mean("oracle", m) for m in names]))
    print(
        f"Seeds {args.seeds}, {args.hours:g} h each, every {args.every} min after "
        f"{args.warmup:g} h, top {args.top} markets; {time.perf_counter() - started:.0f} s.\n"
    )
    print("| estimator | Pearson (whole map, default view) | share of the oracle |")
    print("|---|---|---|")
    print(f"| oracle, sizes known | {oracle_mean:.3f} | 100 % |")
    for who in [f"shift {s}" for s in SHIFTS] + ["learner"]:
        value = float(np.mean([mean(who, m) for m in names]))
        label = "model (default mix)" if who == "shift 0" else who
        print(f"| {label} | {value:.3f} | {value / oracle_mean:.0%} |")
    best = float(np.mean([max(mean(f"shift {s}", m) for s in SHIFTS) for m in names]))
    print(f"| hindsight: best shift per market | {best:.3f} | {best / oracle_mean:.0%} |")


if __name__ == "__main__":
    main()
