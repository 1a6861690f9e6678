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

Writes the chart ``docs/img/heatmap_real.png`` and prints a Markdown summary.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


TIERS = {"default": DEFAULT_TIERS, "retail": RETAIL_TIERS}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="the shared data/real folder")
    parser.add_argument("--warmup-bars", type=int, default=48, help="bars not scored (24 h)")
    parser.add_argument(
        "--tiers", choices=sorted(TIERS), default="default", help="the model's leverage mix"
    )
    parser.add_argument("--chart", default=str(REPO / "docs" / "img" / "heatmap_real.png"))
    args = parser.parse_args()
    root = data_dir(args.data)
    candles, bars = load_candles(root), load_bars(root)
    start, end = candles["ts"][0] + FIVE_MIN, candles["ts"][-1]
    overlap = (bars["ts"] >= start) & (bars["ts"] + HALF_HOUR <= end)
    bars = {key: value[overlap] for key, value in bars.items()}
    grid = np.arange(55_000, 90_000, 250.0)
    predictions, longs, shorts = run(candles, bars, grid, HeatmapConfig(tiers=TIERS[args.tiers]))
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


if __name__ == "__main__":
    main()
