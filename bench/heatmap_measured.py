"""Heatmap against measured Hyperliquid liquidation maps (kittycapital snapshots).

    .venv/bin/python bench/heatmap_measured.py            # the tables only
    (bench/heatmap_real.py runs it too and puts its means in the verdict line)

Truth: 137 snapshots (2026-01-26 -> 02-22) of the liquidation prices Hyperliquid reports for
the positions of its top-200 leaderboard wallets, in 50 buckets over 0.7..1.3 x the mark
(long buckets below the mark, short above; USD at entry). Only large accounts, so shapes and
places are compared, never totals.

Model input, exactly as live: Hyperliquid's hourly open interest (0xknxwledge, coins x mark) and
Binance's hourly perp candles for the coin. The row stamped ``t`` is fed as a snapshot at
``t + 1 h`` (mark = the candle's close, low/high its range), and a measured snapshot at ``T``
is compared with the model after every snapshot with ``t + 1 h <= T``: no look-ahead.
Feeding starts 60 days before the first measured snapshot.

Per snapshot and side (25 buckets, empty buckets as 0): Spearman rank correlation, and the
earth mover's distance between the normalized shapes in % of the mark (where the mass sits:
how far, on average, estimated notional would have to move to sit where the measured one
is). A side the truth leaves empty is not scored; a snapshot's score is the mean of its sides.

Baselines: ``distance`` (1/distance from the mark: closer buckets hold more), ``oi-flow``
(every hour's open-interest increase opened at the close with the fixed retail leverage mix,
decreases proportional, nothing swept), and ``persistence`` (the measured map 4 h earlier,
rebinned onto this snapshot's buckets: what knowing the real positions a little late gives,
the practical ceiling).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from purpleflea.engine.heatmap import RETAIL_TIERS, HeatmapConfig, HeatmapModel
from purpleflea.model import MarketSnapshot

KITTY = "kittycapital_liquidation-heatmap/data.json_versions"
KNX = "0xknxwledge_group-m-finm33150-final"
COINS = ("BTC", "ETH", "SOL", "HYPE", "DOGE")  # the coins with hourly open interest
HOUR = 3_600_000
BUCKETS, LOW, HIGH = 50, 0.7, 1.3
HALF = BUCKETS // 2
WARM_DAYS = 60
PERSIST_MAX_GAP_H = 6.0  # persistence pairs: consecutive snapshots at most this far apart
#: The served default until 2026-12-08: new open interest through the leverage tiers, turnover
#: 0.1/h (the studies of docs/heatmap.md sections 4-6 judged it; they keep it to reproduce).
PREVIOUS = HeatmapConfig(opened=None, turnover_per_hour=0.1)


@dataclass
class Measured:
    """One coin in one measured snapshot: USD per bucket, longs (below) and shorts (above)."""

    coin: str
    ts: int
    mark: float
    longs: np.ndarray  # HALF buckets, index 0 = furthest below the mark
    shorts: np.ndarray  # HALF buckets, index 0 = nearest above the mark


@dataclass
class Hourly:
    """One coin's hourly inputs: stamp, Binance candle and Hyperliquid open interest (USD)."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    oi_usd: np.ndarray


def _ms(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)


def load_measured(root: Path) -> list[Measured]:
    out = []
    for path in sorted((root / KITTY).glob("*_data.json")):
        data = json.loads(path.read_text())
        ts = _ms(dt.datetime.fromisoformat(data["lastUpdated"].replace("Z", "+00:00")))
        for coin in COINS:
            entry = data["data"].get(coin)
            if not entry:
                continue
            mark = float(entry["currentPrice"])
            width = (HIGH - LOW) * mark / BUCKETS
            usd = np.zeros(BUCKETS)
            for side in ("longLiquidations", "shortLiquidations"):
                for row in entry[side]:
                    index = round((float(row["price"]) - LOW * mark) / width - 0.5)
                    if 0 <= index < BUCKETS:
                        usd[index] += float(row["value"])
            out.append(Measured(coin, ts, mark, usd[:HALF].copy(), usd[HALF:].copy()))
    return out


def load_hourly(root: Path) -> dict[str, Hourly]:
    import pyarrow.parquet as pq

    oi: dict[str, dict[int, float]] = {coin: {} for coin in COINS}
    for row in pq.read_table(root / KNX / "open_interest.parquet").to_pylist():
        if row["venue"] == "hyperliquid" and row["coin"] in oi:
            oi[row["coin"]][_ms(row["timestamp"])] = float(row["oi_usd"])
    candles: dict[str, dict[int, tuple[float, float, float, float]]] = {c: {} for c in COINS}
    for row in pq.read_table(root / KNX / "candles.parquet").to_pylist():
        if row["venue"] == "binance" and row["coin"] in candles:
            candles[row["coin"]][_ms(row["timestamp"])] = (row["o"], row["h"], row["l"], row["c"])
    out = {}
    for coin in COINS:
        stamps = sorted(set(oi[coin]) & set(candles[coin]))
        table = np.array([candles[coin][t] for t in stamps])
        out[coin] = Hourly(
            ts=np.array(stamps, dtype=np.int64),
            open=table[:, 0],
            high=table[:, 1],
            low=table[:, 2],
            close=table[:, 3],
            oi_usd=np.array([oi[coin][t] for t in stamps]),
        )
    return out


# -- estimators: each returns (longs, shorts) on a measured snapshot's buckets ------------------


def edges(mark: float) -> np.ndarray:
    return mark * np.linspace(LOW, HIGH, BUCKETS + 1)


def feed_hour(model: HeatmapModel, hourly: Hourly, row: int, coin: str) -> None:
    """Apply one hourly row: a snapshot at the hour's end (its close as mark, its range as the
    path)."""
    model.on_snapshot(
        MarketSnapshot(
            exchange="hyperliquid",
            symbol=coin,
            market=f"{coin}-PERP",
            ts=int(hourly.ts[row]) + HOUR,
            mark_price=float(hourly.close[row]),
            # 0xArchive's open interest is coins x that hour's mark.
            open_interest=float(hourly.oi_usd[row]) / float(hourly.open[row]),
            open_interest_usd=float(hourly.oi_usd[row]),
        ),
        low=float(hourly.low[row]),
        high=float(hourly.high[row]),
    )


def read_map(model: HeatmapModel, coin: str, snap: Measured) -> tuple[np.ndarray, np.ndarray]:
    """The model's long and short USD on a measured snapshot's buckets."""
    grid = edges(snap.mark)
    heat = model.heatmap(
        f"{coin}-PERP", low=float(grid[0]), high=float(grid[-1]), bucket=grid[1] - grid[0]
    )
    longs = np.asarray(heat.long_usd[:BUCKETS], dtype=np.float64)
    shorts = np.asarray(heat.short_usd[:BUCKETS], dtype=np.float64)
    longs = np.pad(longs, (0, BUCKETS - len(longs)))
    shorts = np.pad(shorts, (0, BUCKETS - len(shorts)))
    return longs[:HALF], shorts[HALF:]


def model_maps(
    hourly: Hourly, snaps: list[Measured], config: HeatmapConfig, coin: str
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Replay the hours into a :class:`HeatmapModel`; read it at every measured snapshot."""
    model = HeatmapModel(config)
    start = snaps[0].ts - WARM_DAYS * 24 * HOUR
    fed = int(np.searchsorted(hourly.ts, start))
    out = []
    for snap in snaps:
        while fed < len(hourly.ts) and hourly.ts[fed] + HOUR <= snap.ts:
            feed_hour(model, hourly, fed, coin)
            fed += 1
        out.append(read_map(model, coin, snap))
    return out


def distance_maps(snaps: list[Measured]) -> list[tuple[np.ndarray, np.ndarray]]:
    centres = (np.arange(BUCKETS) + 0.5) / BUCKETS * (HIGH - LOW) + LOW
    prior = 1.0 / np.abs(centres - 1.0)
    return [(prior[:HALF].copy(), prior[HALF:].copy()) for _ in snaps]


def oiflow_maps(hourly: Hourly, snaps: list[Measured]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Naive: each hour's open-interest increase opened at the close with the retail mix at
    isolated-margin liquidation prices; decreases proportional; nothing is ever swept."""
    tiers = RETAIL_TIERS
    weight = np.array([t.weight for t in tiers]) / sum(t.weight for t in tiers)
    long_f = np.array([(1 - 1 / t.leverage) / (1 - t.maintenance) for t in tiers])
    short_f = np.array([(1 + 1 / t.leverage) / (1 + t.maintenance) for t in tiers])
    start = snaps[0].ts - WARM_DAYS * 24 * HOUR
    fed = int(np.searchsorted(hourly.ts, start))
    entries: list[float] = []
    coins: list[float] = []
    held = 0.0
    out = []
    for snap in snaps:
        while fed < len(hourly.ts) and hourly.ts[fed] + HOUR <= snap.ts:
            now = float(hourly.oi_usd[fed]) / float(hourly.open[fed])
            if now > held:
                entries.append(float(hourly.close[fed]))
                coins.append(now - held)
            elif held > 0:
                coins = [c * now / held for c in coins]
            held = now
            fed += 1
        grid = edges(snap.mark)
        e, c = np.array(entries), np.array(coins)
        longs = np.histogram(
            (e[:, None] * long_f).ravel(), grid, weights=(c[:, None] * weight).ravel()
        )[0]
        shorts = np.histogram(
            (e[:, None] * short_f).ravel(), grid, weights=(c[:, None] * weight).ravel()
        )[0]
        out.append((longs[:HALF].astype(float), shorts[HALF:].astype(float)))
    return out


def persistence_maps(snaps: list[Measured]) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """The previous measured map of the coin, its bucket centres rebinned onto this one's."""
    out: list[tuple[np.ndarray, np.ndarray] | None] = [None]
    for before, snap in itertools.pairwise(snaps):
        if (snap.ts - before.ts) / HOUR > PERSIST_MAX_GAP_H:
            out.append(None)
            continue
        old = edges(before.mark)
        centres = (old[:-1] + old[1:]) / 2
        usd = np.concatenate([before.longs, before.shorts])
        grid = edges(snap.mark)
        longs = np.histogram(centres[:HALF], grid, weights=usd[:HALF])[0]
        shorts = np.histogram(centres[HALF:], grid, weights=usd[HALF:])[0]
        out.append((longs[:HALF].astype(float), shorts[HALF:].astype(float)))
    return out


# -- scores -------------------------------------------------------------------------------------


def ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranked = np.empty(len(values))
    ranked[order] = np.arange(1, len(values) + 1)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranked)
    return np.asarray(sums[inverse] / counts[inverse])


def spearman(estimate: np.ndarray, truth: np.ndarray) -> float:
    """Rank correlation; an estimate that is flat (no ranking at all) scores 0."""
    a, b = ranks(estimate), ranks(truth)
    if a.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def emd_pct(estimate: np.ndarray, truth: np.ndarray) -> float:
    """Earth mover's distance between the normalized shapes, in % of the mark."""
    if estimate.sum() <= 0:
        return float("nan")
    a = np.cumsum(estimate / estimate.sum())
    b = np.cumsum(truth / truth.sum())
    return float(np.abs(a - b).sum() * (HIGH - LOW) / BUCKETS * 100)


@dataclass
class Score:
    spearman: float
    emd: float


def score(estimate: tuple[np.ndarray, np.ndarray], snap: Measured) -> Score | None:
    rhos, emds = [], []
    for est, truth in zip(estimate, (snap.longs, snap.shorts), strict=True):
        if truth.sum() <= 0 or np.all(truth == truth[0]):
            continue
        rhos.append(spearman(est, truth))
        emds.append(emd_pct(est, truth))
    if not rhos:
        return None
    finite = [e for e in emds if not math.isnan(e)]
    return Score(float(np.mean(rhos)), float(np.mean(finite)) if finite else float("nan"))


Estimator = Callable[[str, Hourly, list[Measured]], list[tuple[np.ndarray, np.ndarray] | None]]


@dataclass
class Results:
    """Per estimator, per coin: one score per measured snapshot (None where not scored)."""

    scores: dict[str, dict[str, list[Score | None]]]
    snaps: dict[str, list[Measured]]

    def mean(self, name: str, coins: tuple[str, ...], field: str = "spearman") -> float:
        values = [
            getattr(s, field)
            for coin in coins
            for s in self.scores[name][coin]
            if s is not None and not math.isnan(getattr(s, field))
        ]
        return float(np.mean(values)) if values else float("nan")

    def paired(self, a: str, b: str, coins: tuple[str, ...]) -> np.ndarray:
        """Per snapshot, a's Spearman minus b's, where both are scored."""
        return np.array(
            [
                sa.spearman - sb.spearman
                for coin in coins
                for sa, sb in zip(self.scores[a][coin], self.scores[b][coin], strict=True)
                if sa is not None and sb is not None
            ]
        )


def evaluate(root: Path, configs: dict[str, HeatmapConfig]) -> Results:
    measured = load_measured(root)
    hourly = load_hourly(root)
    scores: dict[str, dict[str, list[Score | None]]] = {}
    snaps_by_coin = {}
    for coin in COINS:
        snaps = sorted((m for m in measured if m.coin == coin), key=lambda m: m.ts)
        snaps_by_coin[coin] = snaps
        maps: dict[str, list[tuple[np.ndarray, np.ndarray] | None]] = {
            name: list(model_maps(hourly[coin], snaps, config, coin))
            for name, config in configs.items()
        }
        maps["distance"] = list(distance_maps(snaps))
        if "model" in maps:
            # Does the model add anything to the distance prior? Their product.
            maps["model x distance"] = [
                None if m is None else (m[0] * d[0], m[1] * d[1])
                for m, d in zip(maps["model"], maps["distance"], strict=True)
            ]
        maps["oi-flow"] = list(oiflow_maps(hourly[coin], snaps))
        maps["persistence"] = persistence_maps(snaps)
        for name, estimates in maps.items():
            scores.setdefault(name, {})[coin] = [
                score(est, snap) if est is not None else None
                for est, snap in zip(estimates, snaps, strict=True)
            ]
    return Results(scores, snaps_by_coin)


def bootstrap(diff: np.ndarray, rounds: int = 10_000, seed: int = 11) -> tuple[float, float]:
    """95 % percentile interval of the mean of ``diff`` (resampling snapshots)."""
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(rounds, len(diff)))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return float(low), float(high)


if __name__ == "__main__":
    import sys

    here = Path(__file__).resolve().parents[1]
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else here.parent / "shared" / "data" / "real"
    results = evaluate(root, {"model": HeatmapConfig()})
    for name in results.scores:
        row = [f"{results.mean(name, (c,)):.3f}" for c in COINS]
        print(
            name,
            *row,
            f"{results.mean(name, ('BTC', 'ETH')):.3f}",
            f"emd {results.mean(name, ('BTC', 'ETH'), 'emd'):.2f}",
        )


# -- realized Hyperliquid liquidations (daily totals) against top-decile zones -----------------


@dataclass
class DailyOutcome:
    """One coin, one side, one day: realized USD and whether the extreme hit the zones."""

    coin: str
    side: str
    day: int
    realized: float
    model_hit: bool
    nearest_hit: bool


def daily_deciles(root: Path, config: HeatmapConfig) -> list[DailyOutcome]:
    """The model fed the hourly inputs as live; at each day's 00:00 UTC its default view is
    read, and the day's low (high) against the top-decile long (short) zones."""
    import pyarrow.parquet as pq

    from heatmap_decile import hits, nearest_hits

    hourly = load_hourly(root)
    days: dict[tuple[str, int], tuple[float, float]] = {}
    for row in pq.read_table(root / KNX / "liquidation_volume.parquet").to_pylist():
        days[(row["coin"], _ms(row["timestamp"]))] = (
            float(row["long_usd"]),
            float(row["short_usd"]),
        )
    out = []
    for coin in COINS:
        data = hourly[coin]
        stamps = sorted(day for c, day in days if c == coin)
        if not stamps:
            continue
        model = HeatmapModel(config)
        market = f"{coin}-PERP"
        fed = int(np.searchsorted(data.ts, stamps[0] - WARM_DAYS * 24 * HOUR))
        for day in stamps:
            while fed < len(data.ts) and data.ts[fed] + HOUR <= day:
                feed_hour(model, data, fed, coin)
                fed += 1
            inside = (data.ts >= day) & (data.ts < day + 24 * HOUR)
            if inside.sum() < 20:
                continue
            heat = model.heatmap(market)
            low, high = float(data.low[inside].min()), float(data.high[inside].max())
            realized = days[(coin, day)]
            for side, extreme, usd in (("long", low, realized[0]), ("short", high, realized[1])):
                out.append(
                    DailyOutcome(
                        coin,
                        side,
                        day,
                        usd,
                        hits(heat, side, extreme),  # type: ignore[arg-type]
                        nearest_hits(heat, side, extreme),  # type: ignore[arg-type]
                    )
                )
    return out
