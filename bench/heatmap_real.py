"""Heatmap backtest on real data: do realized liquidations follow the predicted clusters?

Run (one command, from the repository root)::

    .venv/bin/python bench/heatmap_real.py

Input (never copied into the repository; ``--data`` or ``$PURPLEFLEA_SHARED/data/real``):

- Binance USD-M BTCUSDT 5-minute candles + open interest, the union of the three
  ``coinglass_BTC_regime_binance_5m_14d.csv`` versions (deduplicated on ``timestamp``): each
  candle becomes one snapshot at its close (mark = close, open interest = OI USD / close, the
  candle's low and high as the path since the previous snapshot).
- Coinglass 30-minute BTC liquidations (Binance + Bybit + OKX, long/short USD) from
  ``7f7b2bc/coinglass_BTC_regime_30m_0.05y.csv``, for the bars it has at 30-minute spacing.

For every 30-minute bar of the overlap the model has seen only candles that closed at or before
the bar's open (no look-ahead). Its default heatmap view (mark +/- 20 %) names the clusters;
the bar *crossed a long cluster* when the perp's low inside the bar reached the top of a
predicted long cluster (and a short cluster when the high reached its bottom). The script
compares realized long (short) liquidation USD in crossing and non-crossing bars, with a
one-sided Mann-Whitney test and a permutation test on the mean, then repeats the comparison
inside terciles of the bar's adverse move (a bar that falls further liquidates more longs
whatever the model says; the terciles ask whether the clusters add anything to that). It also
reports the Spearman correlation of the predicted notional the bar swept (``fuel`` between the
bar's open and its low) with the realized liquidations, next to the adverse move's.

Then the measures of issue #22, each in its own module: top-decile zones against realized
liquidations (``heatmap_decile.py``: these Binance bars and Hyperliquid's daily totals), the
model against measured Hyperliquid liquidation maps (``heatmap_measured.py``), and cross-margin
placement against 134 real positions (``heatmap_cross.py``).

Writes the charts ``docs/img/heatmap_real.png``, ``heatmap_decile.png``,
``heatmap_measured.png`` and ``heatmap_cross.png``, prints a Markdown summary, and ends with
one line: ``real-data verdict: top-decile precision P (Wilson 95% lower L, random 0.10);
measured-map Spearman S vs baseline B (persistence C)`` (P: the Binance BTC bars, both sides;
S, B, C: means over the BTC and ETH measured snapshots; B the better naive baseline).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import heatmap_cross
import heatmap_measured
from heatmap_decile import (
    PRECISION_HEADER,
    RANDOM,
    heavy,
    hits,
    nearest_hits,
    precision_row,
    top_decile,
    wilson,
    zone_hits,
)
from purpleflea.engine.heatmap import DEFAULT_TIERS, RETAIL_TIERS, HeatmapConfig, HeatmapModel
from purpleflea.model import MarketSnapshot

REPO = Path(__file__).resolve().parents[1]
SOURCE = "ismethanhtung_btc-liquidations-analysis"
CANDLE_FILES = (
    "e2966c8/coinglass_BTC_regime_binance_5m_14d.csv",
    "d3b7eb4/coinglass_BTC_regime_binance_5m_14d.csv",
    "7f7b2bc/coinglass_BTC_regime_binance_5m_14d.csv",
)
BARS_FILE = "7f7b2bc/coinglass_BTC_regime_30m_0.05y.csv"
FIVE_MIN, HALF_HOUR = 300_000, 1_800_000
MARKET = "BTC-PERP"


def data_dir(given: str | None) -> Path:
    if given:
        return Path(given)
    shared = os.environ.get("PURPLEFLEA_SHARED")
    return (Path(shared) if shared else REPO.parent / "shared") / "data" / "real"


def load_candles(root: Path) -> dict[str, np.ndarray]:
    rows: dict[int, tuple[float, ...]] = {}
    for name in CANDLE_FILES:
        with open(root / SOURCE / name, newline="") as handle:
            for row in csv.DictReader(handle):
                ts = int(row["timestamp"])
                rows.setdefault(
                    ts,
                    (
                        float(row["price_open"]),
                        float(row["price_high"]),
                        float(row["price_low"]),
                        float(row["price_close"]),
                        float(row["oi_close"]),
                    ),
                )
    order = sorted(rows)
    table = np.array([rows[ts] for ts in order])
    return {
        "ts": np.array(order, dtype=np.int64),
        "open": table[:, 0],
        "high": table[:, 1],
        "low": table[:, 2],
        "close": table[:, 3],
        "oi_usd": table[:, 4],
    }


def load_bars(root: Path) -> dict[str, np.ndarray]:
    """The Coinglass bars at 30-minute spacing (the file appends 5-minute rows without
    liquidations after them)."""
    with open(root / SOURCE / BARS_FILE, newline="") as handle:
        rows = list(csv.DictReader(handle))
    ts = np.array([int(r["timestamp"]) for r in rows], dtype=np.int64)
    keep = np.ones(len(ts), dtype=bool)
    step = np.diff(ts)
    first_five = int(np.argmax(step == FIVE_MIN)) if (step == FIVE_MIN).any() else len(ts)
    keep[first_five + 1 :] = False
    longs = np.array([float(r["liquidation_long_usd"]) for r in rows])
    shorts = np.array([float(r["liquidation_short_usd"]) for r in rows])
    return {"ts": ts[keep], "long": longs[keep], "short": shorts[keep]}


@dataclass
class BarPrediction:
    ts: int
    mark: float
    low: float
    high: float
    long_top: float | None  # top of the highest predicted long cluster (nearest the mark)
    short_bottom: float | None
    long_fuel: float  # predicted long notional between the mark and the bar's low
    short_fuel: float
    long_hit: bool  # the bar's low lies in a top-decile long zone (heatmap_decile)
    short_hit: bool
    long_near: bool  # ... in the tenth of the view's buckets nearest below the mark
    short_near: bool
    view_low: float  # the default view's first bucket, its size and count (zone-centric test)
    bucket: float
    buckets: int
    long_zones: np.ndarray  # indices of the top-decile buckets
    short_zones: np.ndarray


#: ``--tiers``: "default" is the served model (new open interest placed by the first-sight
#: shape, turnover 0.3/h); "tiers" the default until 2026-12-08 (through ``DEFAULT_TIERS``,
#: turnover 0.1/h); "retail" that with the earlier retail mix.
TIERS = {
    "default": HeatmapConfig(),
    "tiers": HeatmapConfig(tiers=DEFAULT_TIERS, opened=None, turnover_per_hour=0.1),
    "retail": HeatmapConfig(tiers=RETAIL_TIERS, opened=None, turnover_per_hour=0.1),
}


def run(
    candles: dict[str, np.ndarray],
    bars: dict[str, np.ndarray],
    grid: np.ndarray,
    config: HeatmapConfig,
) -> tuple[list[BarPrediction], np.ndarray, np.ndarray]:
    """Replay candles; before each bar, read the model. Returns predictions and, for the
    chart, long and short USD on ``grid`` (one column per bar)."""
    model = HeatmapModel(config)
    fed = 0
    closes = candles["ts"] + FIVE_MIN
    predictions: list[BarPrediction] = []
    long_cols, short_cols = [], []
    for bar_ts in bars["ts"]:
        while fed < len(closes) and closes[fed] <= bar_ts:
            close = float(candles["close"][fed])
            snapshot = MarketSnapshot(
                exchange="binance_usdm",
                symbol="BTCUSDT",
                market=MARKET,
                ts=int(closes[fed]),
                mark_price=close,
                open_interest=float(candles["oi_usd"][fed]) / close,
                open_interest_usd=float(candles["oi_usd"][fed]),
            )
            model.on_snapshot(
                snapshot, low=float(candles["low"][fed]), high=float(candles["high"][fed])
            )
            fed += 1
        inside = (candles["ts"] >= bar_ts) & (candles["ts"] < bar_ts + HALF_HOUR)
        if fed == 0 or inside.sum() < 6:
            continue
        heat = model.heatmap(MARKET)
        mark = heat.mark_price
        low, high = float(candles["low"][inside].min()), float(candles["high"][inside].max())
        long_tops = [c.high for c in heat.clusters if c.side == "long" and c.high <= mark * 1.001]
        short_bottoms = [
            c.low for c in heat.clusters if c.side == "short" and c.low >= mark * 0.999
        ]
        predictions.append(
            BarPrediction(
                ts=int(bar_ts),
                mark=mark,
                low=low,
                high=high,
                long_top=max(long_tops) if long_tops else None,
                short_bottom=min(short_bottoms) if short_bottoms else None,
                long_fuel=model.fuel(MARKET, "long", mark, (mark - low) / mark * 100)
                if low < mark
                else 0.0,
                short_fuel=model.fuel(MARKET, "short", mark, (high - mark) / mark * 100)
                if high > mark
                else 0.0,
                long_hit=hits(heat, "long", low),
                short_hit=hits(heat, "short", high),
                long_near=nearest_hits(heat, "long", low),
                short_near=nearest_hits(heat, "short", high),
                view_low=heat.prices[0],
                bucket=heat.bucket_size,
                buckets=len(heat.prices),
                long_zones=top_decile(heat, "long"),
                short_zones=top_decile(heat, "short"),
            )
        )
        step = grid[1] - grid[0]
        chart = model.heatmap(MARKET, low=float(grid[0]), high=float(grid[-1]) + step, bucket=step)
        long_cols.append(chart.long_usd)
        short_cols.append(chart.short_usd)
    return predictions, np.array(long_cols).T, np.array(short_cols).T


def ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties averaged."""
    order = np.argsort(values, kind="mergesort")
    ranked = np.empty(len(values))
    ranked[order] = np.arange(1, len(values) + 1)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranked)
    return np.asarray(sums[inverse] / counts[inverse])


def mann_whitney_greater(a: np.ndarray, b: np.ndarray) -> float:
    """One-sided p that ``a`` tends to exceed ``b`` (normal approximation, tie-corrected)."""
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        return float("nan")
    both = np.concatenate([a, b])
    r = ranks(both)
    u = r[:n1].sum() - n1 * (n1 + 1) / 2
    _, counts = np.unique(both, return_counts=True)
    n = n1 + n2
    tie = (counts**3 - counts).sum() / (n * (n - 1))
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie))
    z = (u - n1 * n2 / 2 - 0.5) / sigma
    return 0.5 * math.erfc(z / math.sqrt(2))


def permutation_greater(a: np.ndarray, b: np.ndarray, rounds: int = 10_000) -> float:
    """One-sided permutation p for mean(a) - mean(b) (seeded, so the report repeats)."""
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    rng = np.random.default_rng(7)
    both = np.concatenate([a, b])
    observed = a.mean() - b.mean()
    hits = 0
    for _ in range(rounds):
        rng.shuffle(both)
        hits += both[: len(a)].mean() - both[len(a) :].mean() >= observed
    return (hits + 1) / (rounds + 1)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(ranks(x), ranks(y))[0, 1])


def compare(label: str, crossed: np.ndarray, realized: np.ndarray) -> list[str]:
    a, b = realized[crossed], realized[~crossed]
    mean = lambda v: f"${v.mean() / 1e6:.2f}M" if len(v) else "-"  # noqa: E731
    median = lambda v: f"${np.median(v) / 1e6:.2f}M" if len(v) else "-"  # noqa: E731
    return [
        f"| {label} | {len(a)} | {mean(a)} | {median(a)} | {len(b)} | {mean(b)} | {median(b)} "
        f"| {mann_whitney_greater(a, b):.2g} | {permutation_greater(a, b):.2g} |"
    ]


def report(predictions: list[BarPrediction], bars: dict[str, np.ndarray], skip: int) -> str:
    by_ts = {int(t): i for i, t in enumerate(bars["ts"])}
    kept = predictions[skip:]
    index = np.array([by_ts[p.ts] for p in kept])
    long_liq, short_liq = bars["long"][index], bars["short"][index]
    crossed_long = np.array([p.long_top is not None and p.low <= p.long_top for p in kept])
    crossed_short = np.array(
        [p.short_bottom is not None and p.high >= p.short_bottom for p in kept]
    )
    down = np.array([(p.mark - p.low) / p.mark for p in kept])
    up = np.array([(p.high - p.mark) / p.mark for p in kept])
    lines = [
        f"Bars scored: {len(kept)} (30 min, {_iso(kept[0].ts)} → {_iso(kept[-1].ts)}; "
        f"the first {skip} bars are warm-up).",
        "",
        "| comparison | bars crossing | mean liq | median liq | bars not crossing | mean liq "
        "| median liq | Mann-Whitney p | permutation p |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += compare("longs: low reached a long cluster", crossed_long, long_liq)
    lines += compare("shorts: high reached a short cluster", crossed_short, short_liq)
    for side, move, crossed, realized in (
        ("longs", down, crossed_long, long_liq),
        ("shorts", up, crossed_short, short_liq),
    ):
        edges = np.quantile(move, [1 / 3, 2 / 3])
        tercile = np.searchsorted(edges, move, side="right")
        for t, name in enumerate(("small", "middle", "large")):
            pick = tercile == t
            lines += compare(f"{side}, {name} adverse move only", crossed[pick], realized[pick])
    long_fuel = np.array([p.long_fuel for p in kept])
    short_fuel = np.array([p.short_fuel for p in kept])
    lines += [
        "",
        "| Spearman correlation with realized liquidations | longs | shorts |",
        "|---|---|---|",
        f"| predicted notional swept (fuel from open to the bar's extreme) "
        f"| {spearman(long_fuel, long_liq):.3f} | {spearman(short_fuel, short_liq):.3f} |",
        f"| the bar's adverse move alone (baseline) "
        f"| {spearman(down, long_liq):.3f} | {spearman(up, short_liq):.3f} |",
        "",
        "| dollars: realized liquidations against the predicted notional swept | longs | shorts |",
        "|---|---|---|",
        f"| total realized / total predicted, all bars | {_ratio(long_liq, long_fuel)} "
        f"| {_ratio(short_liq, short_fuel)} |",
        f"| the same, the tenth of bars with the most predicted | "
        f"{_ratio(long_liq, long_fuel, top=0.1)} | {_ratio(short_liq, short_fuel, top=0.1)} |",
    ]
    return "\n".join(lines)


# -- the issue #22 measures: top-decile precision, measured maps, cross margin ------------------


@dataclass
class Precision:
    label: str
    hit: int
    total: int
    near: int  # hits of the distance baseline (nearest tenth of buckets) on the same periods

    @property
    def low(self) -> float:
        return wilson(self.hit, self.total)[0]


def decile_binance(
    predictions: list[BarPrediction], bars: dict[str, np.ndarray], skip: int
) -> list[Precision]:
    """Top-decile precision on the Binance BTC bars: the heavy bars of each side (at least the
    side's median realized liquidations), horizon one 30-minute bar."""
    by_ts = {int(t): i for i, t in enumerate(bars["ts"])}
    kept = predictions[skip:]
    index = np.array([by_ts[p.ts] for p in kept])
    out = []
    total_hit = total_n = total_near = 0
    for side, realized in (("long", bars["long"][index]), ("short", bars["short"][index])):
        pick = heavy(realized)
        hit = sum(getattr(p, f"{side}_hit") for p, k in zip(kept, pick, strict=True) if k)
        near = sum(getattr(p, f"{side}_near") for p, k in zip(kept, pick, strict=True) if k)
        out.append(Precision(f"BTC Binance 30-min bars, {side}s", hit, int(pick.sum()), near))
        total_hit, total_n, total_near = (
            total_hit + hit,
            total_n + int(pick.sum()),
            total_near + near,
        )
    out.append(Precision("BTC Binance 30-min bars, both sides", total_hit, total_n, total_near))
    return out


def zone_precision(
    predictions: list[BarPrediction], bars: dict[str, np.ndarray], skip: int, horizon: int
) -> list[str]:
    """The zone-centric reading on the Binance bars: prediction times every ``horizon`` bars
    (non-overlapping horizons), each top-decile zone a unit; random = the same over every
    bucket of the view on the side's side of the mark (below it for longs; a random tenth of
    them scores that on average)."""
    by_ts = {int(t): i for i, t in enumerate(bars["ts"])}
    kept = predictions[skip:]
    index = np.array([by_ts[p.ts] for p in kept])
    lows = np.array([p.low for p in kept])
    highs = np.array([p.high for p in kept])
    lines = [
        "| side | prediction times | zones | hits | precision | Wilson 95 % low | high "
        "| random (the side's buckets of the view) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for side in ("long", "short"):
        realized = bars[side][index]
        heavy_bar = heavy(realized)
        hit = total = 0
        every: list[float] = []
        times = range(0, len(kept) - horizon, horizon)
        for t in times:
            p = kept[t]
            future = slice(t, t + horizon)  # the prediction is read before bar t opens
            args = (lows[future], highs[future], heavy_bar[future])
            everything = p.view_low + p.bucket * np.arange(p.buckets)
            zones = getattr(p, f"{side}_zones")
            got = zone_hits(everything[zones], p.bucket, side, *args)  # type: ignore[arg-type]
            hit, total = hit + int(got.sum()), total + len(got)
            centre = everything + p.bucket / 2
            own = everything[centre <= p.mark] if side == "long" else everything[centre >= p.mark]
            every += zone_hits(own, p.bucket, side, *args).tolist()  # type: ignore[arg-type]
        low, high = wilson(hit, total)
        lines.append(
            f"| {side}s | {len(times)} | {total} | {hit} | {hit / max(total, 1):.3f} | {low:.3f} "
            f"| {high:.3f} | {np.mean(every):.3f} |"
        )
    return lines


def decile_hyperliquid(root: Path, config: HeatmapConfig) -> list[Precision]:
    """The same on Hyperliquid's daily realized totals (horizon one day)."""
    outcomes = heatmap_measured.daily_deciles(root, config)
    out = []
    for coin in heatmap_measured.COINS:
        hit = total = near = 0
        for side in ("long", "short"):
            rows = [o for o in outcomes if o.coin == coin and o.side == side]
            if not rows:
                continue
            pick = heavy([o.realized for o in rows])
            hit += sum(o.model_hit for o, k in zip(rows, pick, strict=True) if k)
            near += sum(o.nearest_hit for o, k in zip(rows, pick, strict=True) if k)
            total += int(pick.sum())
        if total:
            out.append(Precision(f"{coin} Hyperliquid days, both sides", hit, total, near))
    return out


def precision_table(rows: list[Precision]) -> str:
    lines = [PRECISION_HEADER.replace("| random |", "| random | distance baseline |")]
    lines[0] = lines[0].replace(
        "|---|---|---|---|---|---|---|", "|---|---|---|---|---|---|---|---|"
    )
    for row in rows:
        lines.append(
            precision_row(row.label, row.hit, row.total)
            + f" {row.near / row.total if row.total else float('nan'):.3f} |"
        )
    return "\n".join(lines)


MEASURED = ("model", "distance", "oi-flow", "model x distance", "persistence")


def measured_section(
    results: heatmap_measured.Results,
) -> tuple[str, float, float, float, str, tuple[float, float]]:
    """Tables of the measured-map comparison; returns them with S, B, C, B's name and the
    bootstrap interval of model minus B (BTC and ETH snapshots)."""
    both = ("BTC", "ETH")
    coins = heatmap_measured.COINS
    lines = [
        "| estimator | " + " | ".join(coins) + " | BTC+ETH Spearman | BTC+ETH EMD (% of mark) |",
        "|---|" + "---|" * (len(coins) + 2),
    ]
    for name in MEASURED:
        lines.append(
            f"| {name} | "
            + " | ".join(f"{results.mean(name, (c,)):.3f}" for c in coins)
            + f" | {results.mean(name, both):.3f} | {results.mean(name, both, 'emd'):.2f} |"
        )
    best = max(("distance", "oi-flow"), key=lambda name: results.mean(name, both))
    diff = results.paired("model", best, both)
    low, high = heatmap_measured.bootstrap(diff)
    counts = {c: sum(s is not None for s in results.scores["model"][c]) for c in coins}
    lines += [
        "",
        "Snapshots scored: " + ", ".join(f"{c} {n}" for c, n in counts.items()) + ".",
        f"Model minus the best naive baseline ({best}) on BTC and ETH: {diff.mean():+.3f} "
        f"(95 % bootstrap interval over snapshots {low:+.3f} .. {high:+.3f}; "
        f"{len(diff)} paired snapshots; the model wins {float((diff > 0).mean()):.0%} of them).",
    ]
    return (
        "\n".join(lines),
        results.mean("model", both),
        results.mean(best, both),
        results.mean("persistence", both),
        best,
        (low, high),
    )


def distance_ceiling(results: heatmap_measured.Results) -> str:
    """Why the goal is out of reach, as numbers: the best distance-only shapes (chosen in
    sample, with the truth: what a map depending only on the distance from the mark reaches
    at best), and how sparse the truth is."""
    both = ("BTC", "ETH")
    snaps = [s for c in both for s in results.snaps[c]]
    profile_l = np.mean([s.longs / s.longs.sum() for s in snaps if s.longs.sum() > 0], axis=0)
    profile_s = np.mean([s.shorts / s.shorts.sum() for s in snaps if s.shorts.sum() > 0], axis=0)
    occupied_l = np.mean([s.longs > 0 for s in snaps], axis=0)
    occupied_s = np.mean([s.shorts > 0 for s in snaps], axis=0)
    rows = []
    for label, est in (
        ("mean measured shape (in sample)", (profile_l, profile_s)),
        ("occupancy by distance (in sample)", (occupied_l, occupied_s)),
    ):
        values = [sc.spearman for s in snaps if (sc := heatmap_measured.score(est, s)) is not None]
        rows.append(f"| {label} | {np.mean(values):.3f} |")
    sparse = [int((s.longs > 0).sum()) for s in snaps] + [int((s.shorts > 0).sum()) for s in snaps]
    top = [float(np.max(v) / v.sum()) for s in snaps for v in (s.longs, s.shorts) if v.sum() > 0]
    return "\n".join(
        [
            "| a distance-only map, the best shape chosen *with* the truth | BTC+ETH Spearman |",
            "|---|---|",
            *rows,
            "",
            f"Sparsity of the truth (BTC and ETH): median {np.median(sparse):.0f} of 25 buckets "
            f"occupied per side; the largest bucket holds a median {np.median(top):.0%} of the "
            "side's notional.",
        ]
    )


def _ratio(realized: np.ndarray, predicted: np.ndarray, top: float = 1.0) -> str:
    """Sum of realized over sum of predicted, over the ``top`` share of bars by prediction."""
    order = np.argsort(-predicted, kind="stable")[: max(1, round(top * predicted.size))]
    swept = float(predicted[order].sum())
    if swept <= 0:
        return "-"
    return f"{float(realized[order].sum()) / swept:.3f} (${swept / 1e6:,.0f}M predicted)"


def _iso(ts: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M")


def chart(
    path: Path,
    predictions: list[BarPrediction],
    bars: dict[str, np.ndarray],
    grid: np.ndarray,
    longs: np.ndarray,
    shorts: np.ndarray,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = np.array([p.ts for p in predictions], dtype="datetime64[ms]")
    by_ts = {int(t): i for i, t in enumerate(bars["ts"])}
    index = np.array([by_ts[p.ts] for p in predictions])
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(13, 8), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    density = (longs + shorts) / 1e6
    top.pcolormesh(
        times,
        grid,
        density,
        shading="nearest",
        cmap="magma",
        vmax=np.quantile(density[density > 0], 0.99),
    )
    top.plot(times, [p.mark for p in predictions], color="cyan", lw=0.8, label="BTCUSDT perp")
    top.set_ylabel("price (USD)")
    top.set_title(
        "Estimated liquidation heatmap (Binance BTCUSDT OI, default leverage mix) "
        "before each 30-min bar"
    )
    top.legend(loc="upper right")
    bottom.bar(times, bars["long"][index] / 1e6, width=0.02, color="tab:red", label="longs")
    bottom.bar(times, -bars["short"][index] / 1e6, width=0.02, color="tab:green", label="shorts")
    bottom.set_ylabel("realized liq. $M\n(Coinglass, shorts < 0)")
    bottom.legend(loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def chart_measured(path: Path, results: heatmap_measured.Results) -> None:
    """Per measured snapshot, the Spearman of the model, the distance prior and persistence."""
    plt = _plt()
    fig, axes = plt.subplots(2, 1, figsize=(12, 6.5), sharex=True)
    for ax, coin in zip(axes, ("BTC", "ETH"), strict=True):
        times = np.array([s.ts for s in results.snaps[coin]], dtype="datetime64[ms]")
        for name, color in (
            ("model", "tab:purple"),
            ("distance", "tab:gray"),
            ("persistence", "tab:green"),
        ):
            values = np.array(
                [np.nan if v is None else v.spearman for v in results.scores[name][coin]]
            )
            ax.plot(
                times,
                values,
                ".-",
                lw=0.7,
                color=color,
                label=f"{name} (mean {np.nanmean(values):.2f})",
            )
        ax.axhline(0.25, color="k", lw=0.6, ls="--")
        ax.set_ylabel(f"{coin}: Spearman")
        ax.legend(loc="lower left", fontsize=8, ncol=3)
    axes[0].set_title(
        "Estimated vs measured Hyperliquid liquidation maps (top-200 wallets), "
        "per snapshot; dashed: goal 0.25"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def chart_precision(path: Path, rows: list[Precision]) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(12, 4.5))
    y = np.arange(len(rows))
    share = np.array([r.hit / r.total for r in rows])
    bounds = np.array([wilson(r.hit, r.total) for r in rows])
    ax.errorbar(
        share,
        y,
        xerr=[share - bounds[:, 0], bounds[:, 1] - share],
        fmt="o",
        color="tab:purple",
        label="model top-decile zones (Wilson 95 %)",
    )
    ax.plot(
        [r.near / r.total for r in rows],
        y,
        "s",
        color="tab:gray",
        label="distance baseline (nearest tenth)",
    )
    ax.axvline(RANDOM, color="k", ls="--", lw=0.8, label="random 0.10")
    ax.axvline(0.30, color="tab:red", ls=":", lw=0.8, label="goal: lower bound 0.30")
    ax.set_yticks(y, [r.label for r in rows], fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of heavy liquidation periods whose adverse extreme was in a zone")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def chart_cross(path: Path, errors: dict[str, np.ndarray]) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 4))
    bins = np.linspace(-10, 100, 56)
    for label, color in (("cross", "tab:purple"), ("isolated", "tab:orange")):
        ax.hist(
            np.clip(errors[label], -10, 100),
            bins,
            color=color,
            alpha=0.7,
            label=f"{label} ({len(errors[label])})",
        )
    ax.set_xlabel(
        "isolated formula's error at the own leverage, % of the exchange's price (clipped at 100)"
    )
    ax.set_ylabel("positions")
    ax.set_title(
        "131 real Hyperliquid BTC positions with a liquidation price (2026-01-04); "
        "> 0: the formula puts it too near the entry",
        fontsize=10,
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="the shared data/real folder")
    parser.add_argument("--warmup-bars", type=int, default=48, help="bars not scored (24 h)")
    parser.add_argument(
        "--tiers",
        choices=sorted(TIERS),
        default="default",
        help="the model: the served default, the previous default's tiers, or the retail mix",
    )
    parser.add_argument("--chart", default=str(REPO / "docs" / "img" / "heatmap_real.png"))
    args = parser.parse_args()
    root = data_dir(args.data)
    candles, bars = load_candles(root), load_bars(root)
    start, end = candles["ts"][0] + FIVE_MIN, candles["ts"][-1]
    overlap = (bars["ts"] >= start) & (bars["ts"] + HALF_HOUR <= end)
    bars = {key: value[overlap] for key, value in bars.items()}
    grid = np.arange(55_000, 90_000, 250.0)
    predictions, longs, shorts = run(candles, bars, grid, TIERS[args.tiers])
    print(
        f"Candles: {len(candles['ts'])} (5 min, deduplicated); bars: {len(bars['ts'])}; "
        f"leverage mix: {args.tiers}\n"
    )
    print("### All bars after warm-up\n")
    print(report(predictions, bars, args.warmup_bars))
    print("\n### Every bar (no warm-up)\n")
    print(report(predictions, bars, 0))
    chart(Path(args.chart), predictions, bars, grid, longs, shorts)
    print(f"\nChart: {args.chart}")
    img = Path(args.chart).parent
    config = TIERS[args.tiers]

    print("\n### Top-decile zones against realized liquidations (heatmap_decile.py)\n")
    precision = decile_binance(predictions, bars, args.warmup_bars)
    precision += decile_hyperliquid(root, config)
    print(precision_table(precision))
    print(
        "\nThe issue's zone-centric reading on the same bars (horizon 24 h = 48 bars; a zone "
        "hits when price first reaches it in a heavy liquidation bar of the side):\n"
    )
    print("\n".join(zone_precision(predictions, bars, args.warmup_bars, 48)))
    chart_precision(img / "heatmap_decile.png", precision)

    print("\n### Measured Hyperliquid maps (heatmap_measured.py)\n")
    results = heatmap_measured.evaluate(root, {"model": config})
    table, s_model, b_best, c_persist, _, _ = measured_section(results)
    print(table)
    print()
    print(distance_ceiling(results))
    chart_measured(img / "heatmap_measured.png", results)

    print("\n### Cross margin: 134 real Hyperliquid BTC positions (heatmap_cross.py)\n")
    cross_table, errors = heatmap_cross.report(heatmap_cross.load(root))
    print(cross_table)
    chart_cross(img / "heatmap_cross.png", errors)
    print(f"\nCharts: {img}/heatmap_decile.png, heatmap_measured.png, heatmap_cross.png\n")

    verdict = next(r for r in precision if r.label.endswith("both sides"))
    print(
        f"real-data verdict: top-decile precision {verdict.hit / verdict.total:.2f} "
        f"(Wilson 95% lower {verdict.low:.2f}, random {RANDOM:.2f}); measured-map Spearman "
        f"{s_model:.2f} vs baseline {b_best:.2f} (persistence {c_persist:.2f})"
    )


if __name__ == "__main__":
    main()
