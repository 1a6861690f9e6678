"""How good can any open-interest heatmap be on the simulator? A Bayes oracle as the yardstick.

    .venv/bin/python bench/heatmap_oracle.py --seeds 1 2 --hours 24 --every 30

The heatmap's goal is a Pearson correlation of at least 0.8 with the simulator's true notional
at risk per bucket. This script asks whether that is reachable at all. The **oracle** is told
far more than any heatmap can know: every open cohort's exact size, side, entry price, opening
time and the price path since it opened, and the simulator's own leverage rule for the
market (its BTC mix, the size-leverage law, vol-scaling and tiers, whale margins, holding
times). Only each cohort's leverage is withheld. It places every cohort at each leverage tier
it could have, weighted by the posterior probability of that tier (Bayes: the mix, times the
likelihood of the cohort's size at that leverage, times the probability that a position of
that leverage is still held at its age, times zero where the price path has already crossed
that tier's liquidation price). That posterior mean is what a perfect estimator can know
without the individual leverages; no model fed only open interest and marks knows as much.

The same samples score the shipped :class:`HeatmapModel` (as in ``bench/heatmap_eval.py``:
the model's default view, mark +/- 20 % in ~0.4 % round buckets, and 1 % buckets), so the two
rows compare directly. The oracle reads the simulator's private parameters: it is a
measurement of the truth's limits, never a model to ship.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from purpleflea.engine.heatmap import HeatmapModel
from purpleflea.model import Side
from purpleflea.sim import traders
from purpleflea.sim.process import SimConfig, Simulator

SIDES: tuple[Side, ...] = ("long", "short")
_erfc = np.vectorize(math.erfc, otypes=[np.float64])
# The simulator's cohort-size law (sim/traders.py): y = min(0.375 * (1 + Pareto(1.6)), 30).
_ALPHA, _Y_MIN, _Y_MAX = 1.6, 0.6 / 1.6, 30.0
_LIFE_MEDIAN_MS, _LIFE_SIGMA, _LIFE_MIN_MS = 3 * 3_600_000.0, 1.2, 60_000.0


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


class Oracle:
    """The posterior-mean notional at risk of one simulator's open cohorts."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        book = sim.book
        self.low = np.zeros(book.qty.size)  # per slot: lowest / highest mark since it opened
        self.high = np.zeros(book.qty.size)
        self.cohort = np.zeros(book.qty.size, dtype=np.int64)

    def fold(self, market_low: np.ndarray, market_high: np.ndarray) -> None:
        """The block since the last snapshot traded within these per-market bounds; cohorts
        opened at its start (entry = the mark then) start their path there."""
        book = self.sim.book
        fresh = book.cohort_id != self.cohort
        self.cohort = book.cohort_id.copy()
        self.low[fresh] = book.entry[fresh]
        self.high[fresh] = book.entry[fresh]
        m = book.market
        np.minimum(self.low, market_low[m], out=self.low)
        np.maximum(self.high, market_high[m], out=self.high)

    def notional_at_risk(
        self, market: str, side: Side, edges: np.ndarray, *, sizes: bool = True
    ) -> np.ndarray:
        """The posterior mean per bucket; ``sizes=False`` leaves out what each cohort's size
        says about its leverage (the oracle then knows the cohorts but only the leverage mix)."""
        sim, book = self.sim, self.sim.book
        m = sim.market_index[market]
        sl = slice(book.seg[m], book.seg[m + 1])
        sign = 1 if side == "long" else -1
        pick = book.alive(sim.now_ms)[sl] & (book.side[sl] == sign)
        qty, entry = book.qty[sl][pick], book.entry[sl][pick]
        age = (sim.now_ms - book.opened_ms[sl][pick]).astype(np.float64)
        path = (self.low if sign > 0 else self.high)[sl][pick]
        usd = qty * entry
        scale = float(sim._cohort_usd[m])
        cap = float(sim._cohort_cap[m])
        whale = usd > 8.0 * scale
        mmr = float(sim._mmr[m]) * np.where(whale, 2.0, 1.0)
        btc = traders._LEVERAGE
        prior = traders._LEVERAGE_P
        grow = (10.0 / btc) ** traders._LEVERAGE_SIZE_EXP
        # Leverage and liquidation price of every cohort at every tier: (cohorts, tiers).
        lev = traders.leverage_for(
            np.broadcast_to(btc, (usd.size, btc.size)),
            np.full((usd.size, 1), float(sim._base_vol[m])),
            mmr[:, None],
            np.full((usd.size, 1), float(sim._max_lev[m])),
        )
        liq = entry[:, None] * (1.0 + sign * (mmr[:, None] - 1.0 / lev))
        # Likelihood of the cohort's size at each tier (a density, or the mass of a cap).
        y = usd[:, None] / (scale * grow[None, :])
        density = np.where(
            (y >= _Y_MIN) & (y < _Y_MAX),
            _ALPHA / _Y_MIN * (y / _Y_MIN) ** (-_ALPHA - 1) / (scale * grow[None, :]),
            0.0,
        )
        at_cap = usd >= cap * (1 - 1e-9)
        threshold = cap / (scale * grow[None, :])
        cap_mass = np.where(
            threshold <= _Y_MIN,
            1.0,
            np.where(threshold <= _Y_MAX, (threshold / _Y_MIN) ** -_ALPHA, 0),
        )
        top = np.abs(y - _Y_MAX) < 1e-6 * _Y_MAX  # the size law's own cap, a point mass too
        mass = np.where(top, (_Y_MAX / _Y_MIN) ** -_ALPHA, 0.0)
        like = np.where(
            at_cap[:, None], cap_mass, np.where(top.any(axis=1)[:, None], mass, density)
        )
        # Still held at its age, and not liquidated by the path since it opened.
        median = _LIFE_MEDIAN_MS * (10.0 / btc) ** 0.5
        held = np.where(
            age[:, None] <= _LIFE_MIN_MS,
            1.0,
            # P(lifetime > age) for a log-normal lifetime: 1 - Phi(z) = erfc(z / sqrt 2) / 2.
            0.5
            * _erfc(
                (np.log(np.maximum(age, 1.0))[:, None] - np.log(median))
                / (_LIFE_SIGMA * math.sqrt(2.0))
            ),
        )
        alive = liq < path[:, None] if sign > 0 else liq > path[:, None]
        post = prior[None, :] * (like if sizes else 1.0) * held * alive
        total = post.sum(axis=1, keepdims=True)
        post = np.divide(post, total, out=np.zeros_like(post), where=total > 0)
        counts, _ = np.histogram(
            liq.ravel(), bins=edges, weights=(post * qty[:, None] * liq).ravel()
        )
        return counts.astype(np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--warmup", type=float, default=6.0, help="hours before scoring")
    parser.add_argument("--every", type=int, default=30, help="minutes between scorings")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    started = time.perf_counter()
    rows: dict[tuple[str, str], list[float]] = {}
    per_market: dict[tuple[str, str], list[float]] = {}
    for seed in args.seeds:
        sim = Simulator(SimConfig(seed=seed))
        oracle = Oracle(sim)
        names = sim.market_names[: args.top]
        model = HeatmapModel()
        low = high = sim.marks().copy()
        minutes = 0
        end = sim.now_ms + int(args.hours * 3_600_000)
        for step in sim.steps():
            marks = sim.marks()
            low, high = np.minimum(low, marks), np.maximum(high, marks)
            if not step.snapshots:
                continue
            oracle.fold(low, high)
            for snapshot in step.snapshots:
                if snapshot.market in names:
                    m = sim.market_index[snapshot.market]
                    model.on_snapshot(snapshot, low=float(low[m]), high=float(high[m]))
            low = high = marks.copy()
            minutes += 1
            if minutes >= args.warmup * 60 and minutes % args.every == 0:
                for market in names:
                    mark = sim.mark(market)
                    views = {
                        "default view": model.heatmap(market),
                        "1 % buckets": model.heatmap(
                            market, low=mark * 0.8, high=mark * 1.2, bucket=mark / 100
                        ),
                    }
                    for view, heat in views.items():
                        edges = np.array([*heat.prices, heat.prices[-1] + heat.bucket_size])
                        truth = [sim.truth.notional_at_risk(market, s, edges) for s in SIDES]
                        estimates = {
                            "oracle, sizes known": [
                                oracle.notional_at_risk(market, s, edges) for s in SIDES
                            ],
                            "oracle, sizes unknown": [
                                oracle.notional_at_risk(market, s, edges, sizes=False)
                                for s in SIDES
                            ],
                            "model": [np.array(heat.long_usd), np.array(heat.short_usd)],
                        }
                        whole = np.concatenate(truth)
                        for who, est in estimates.items():
                            r = pearson(np.concatenate(est), whole)
                            rows.setdefault((view, who), []).append(r)
                            per_market.setdefault((view, f"{market} {who}"), []).append(r)
            if step.ts >= end:
                break
    took = time.perf_counter() - started
    print(
        f"Seeds {args.seeds}, {args.hours:g} h each, scored every {args.every} min after "
        f"{args.warmup:g} h, top {args.top} markets; {took:.0f} s.\n"
    )
    print("| view | estimator | samples | Pearson (whole map) mean | median |")
    print("|---|---|---|---|---|")
    for (view, who), values in rows.items():
        finite = [v for v in values if math.isfinite(v)]
        print(
            f"| {view} | {who} | {len(finite)} | {np.mean(finite):.3f} | {np.median(finite):.3f} |"
        )
    print("\n| view | market, estimator | mean Pearson |\n|---|---|---|")
    for (view, key), values in per_market.items():
        finite = [v for v in values if math.isfinite(v)]
        print(f"| {view} | {key} | {np.mean(finite):.3f} |")


if __name__ == "__main__":
    main()
