"""Cascade engine vs the simulator's true cascades: precision, recall, lead time, AUC.

    .venv/bin/python bench/cascade_eval.py --seed 2 --hours 240          # held-out report
    .venv/bin/python bench/cascade_eval.py --seed 1 --hours 240 --grid   # tune (another seed)

The final simulator has ~2-9 true cascades a day over 275 markets, so 24 h gives too few to
measure a rate; 240 simulated hours (10 days, ~1-1.5M events) give 25-90.

Detection: a true cascade (market, side, start..end) is detected when a ``started`` alert of
that market and side fires in [start, end + 10 s], or one is already active at its start.
An alert is a true positive when it starts inside a true cascade of its market and side
(start - 90 s .. end + 10 s: the engine may rightly fire on the run's first events).
Lead time is alert time minus the true start. AUC: for every event, the score against "a true
cascade of this market and side has events in the next 5 minutes".
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import time
from dataclasses import dataclass, replace

import numpy as np

from purpleflea.engine import CascadeConfig, CascadeEngine
from purpleflea.sim.process import SimConfig, Simulator
from purpleflea.sim.truth import TrueCascade

MATCH_BEFORE_MS = 90_000
MATCH_AFTER_MS = 10_000
HORIZON_MS = 300_000


@dataclass
class Recording:
    markets: np.ndarray
    sides: np.ndarray
    ts: np.ndarray
    sizes: np.ndarray
    prices: np.ndarray
    exchanges: list[str]
    names: tuple[str, ...]
    truth: list[TrueCascade]


def record(seed: int, hours: float) -> Recording:
    """Run the simulator and keep its events as arrays (so a grid replays without re-simulating)."""
    sim = Simulator(SimConfig(seed=seed))
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("m", "s", "t", "u", "p", "x")}
    exchange_ids: dict[str, int] = {}
    for _ in range(int(hours * 60)):
        raw = sim.next_block()
        parts["m"].append(raw.market)
        parts["s"].append(raw.side)
        parts["t"].append(raw.ts)
        parts["u"].append(raw.price * raw.quantity)
        parts["p"].append(raw.price)
        ex = [
            exchange_ids.setdefault(sim.markets[m].listings[li].exchange, len(exchange_ids))
            for m, li in zip(raw.market.tolist(), raw.listing.tolist(), strict=True)
        ]
        parts["x"].append(np.asarray(ex, dtype=np.int64))
    truth = sim.truth.cascades()  # those known to be over by the end of the run
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    names = list(exchange_ids)
    return Recording(
        cat["m"],
        cat["s"],
        cat["t"],
        cat["u"],
        cat["p"],
        [names[i] for i in cat["x"]],
        sim.market_names,
        truth,
    )


def replay(
    rec: Recording, config: CascadeConfig
) -> tuple[np.ndarray, list[tuple[str, str, int, int]]]:
    """Scores of every event and (market, side, started, exhausted) of every alert."""
    engine = CascadeEngine(config)
    observe = engine.observe
    names = rec.names
    scores = np.empty(rec.ts.size, dtype=np.int8)
    opened: dict[str, tuple[str, str, int]] = {}
    spans: list[tuple[str, str, int, int]] = []

    def handle(alerts: list) -> None:  # type: ignore[type-arg]
        for a in alerts:
            if a.status == "started":
                opened[a.id] = (a.market, a.side, a.updated_at)
            elif a.status == "exhausted":
                market, side, at = opened.pop(a.id)
                spans.append((market, side, at, a.updated_at))

    second = int(rec.ts[0]) // 1000
    rows = zip(
        rec.markets.tolist(),
        rec.sides.tolist(),
        rec.sizes.tolist(),
        rec.prices.tolist(),
        rec.ts.tolist(),
        rec.exchanges,
        strict=True,
    )
    for i, (m, s, u, p, t, x) in enumerate(rows):
        if t // 1000 > second:
            for sec in range(second + 1, t // 1000 + 1):
                alerts = engine.tick(sec * 1000)
                if alerts:
                    handle(alerts)
            second = t // 1000
        scores[i] = observe(names[m], "long" if s > 0 else "short", u, p, t, x)
        if engine.has_alerts():
            handle(engine.drain_alerts())
    for market, side, at in opened.values():
        spans.append((market, side, at, 1 << 62))
    return scores, spans


def evaluate(
    rec: Recording, scores: np.ndarray, spans: list[tuple[str, str, int, int]]
) -> dict[str, float]:
    by_key: dict[tuple[str, str], list[TrueCascade]] = {}
    for c in rec.truth:
        by_key.setdefault((c.market, c.side), []).append(c)
    alerts_by_key: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for market, side, start, end in spans:
        alerts_by_key.setdefault((market, side), []).append((start, end))
    for v in alerts_by_key.values():
        v.sort()
    # Precision.
    tp = 0
    for market, side, start, _ in spans:
        cs = by_key.get((market, side), [])
        if any(c.start_ms - MATCH_BEFORE_MS <= start <= c.end_ms + MATCH_AFTER_MS for c in cs):
            tp += 1
    # Recall and lead time.
    detected = 0
    leads: list[float] = []
    for c in rec.truth:
        alerts = alerts_by_key.get((c.market, c.side), [])
        starts = [a[0] for a in alerts]
        i = bisect.bisect_left(starts, c.start_ms)
        fired = i < len(alerts) and alerts[i][0] <= c.end_ms + MATCH_AFTER_MS
        active = i > 0 and alerts[i - 1][1] >= c.start_ms
        if fired or active:
            detected += 1
            leads.append(0.0 if active else (alerts[i][0] - c.start_ms) / 1000.0)
    # AUC of the score for "a true cascade of this market and side has events in (t, t+5 min]".
    label = np.zeros(rec.ts.size, dtype=bool)
    key = rec.markets * 2 + (rec.sides < 0)
    index = {name: i for i, name in enumerate(rec.names)}
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    for c in rec.truth:
        k = index[c.market] * 2 + (c.side == "short")
        lo, hi = np.searchsorted(sorted_key, [k, k + 1])
        idx = order[lo:hi]
        t = rec.ts[idx]
        label[idx[(t < c.end_ms) & (t + HORIZON_MS > c.start_ms)]] = True
    auc = _auc(scores.astype(np.float64), label)
    return {
        "alerts": float(len(spans)),
        "true_cascades": float(len(rec.truth)),
        "precision": tp / len(spans) if spans else 0.0,
        "recall": detected / len(rec.truth) if rec.truth else 0.0,
        "lead_median_s": float(np.median(leads)) if leads else float("nan"),
        "lead_p90_s": float(np.percentile(leads, 90)) if leads else float("nan"),
        "auc_5min": auc,
    }


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted half."""
    pos, neg = int(label.sum()), int((~label).sum())
    if not pos or not neg:
        return float("nan")
    ranks = np.empty(score.size)
    order = np.argsort(score, kind="mergesort")
    sorted_scores = score[order]
    # Average ranks for ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[label].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


GRID = {
    "rate_gain": [0.55, 0.7],
    "level_gain": [1.0, 1.5],
    "level_tol_pct": [0.08, 0.15],
    "accel_gain": [0.0, 0.6],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--hours", type=float, default=240.0)
    parser.add_argument("--grid", action="store_true", help="tune over GRID on this seed")
    args = parser.parse_args()
    t0 = time.perf_counter()
    rec = record(args.seed, args.hours)
    print(
        f"seed {args.seed}, {args.hours:g} h, {rec.ts.size:,} events, "
        f"{len(rec.truth):,} true cascades (simulated in {time.perf_counter() - t0:.0f} s)"
    )
    configs = [CascadeConfig()]
    if args.grid:
        keys = list(GRID)
        configs = [
            replace(CascadeConfig(), **dict(zip(keys, values, strict=True)))
            for values in itertools.product(*(GRID[k] for k in keys))
        ]
    for config in configs:
        t1 = time.perf_counter()
        scores, spans = replay(rec, config)
        took = time.perf_counter() - t1
        r = evaluate(rec, scores, spans)
        knobs = {k: getattr(config, k) for k in GRID}
        print(
            f"{knobs} alerts {r['alerts']:.0f} precision {r['precision']:.3f} recall "
            f"{r['recall']:.3f} lead median {r['lead_median_s']:.2f} s (p90 "
            f"{r['lead_p90_s']:.2f} s) AUC {r['auc_5min']:.3f} "
            f"[replay {rec.ts.size / took / 1e6:.2f} M ev/s]"
        )


if __name__ == "__main__":
    main()
