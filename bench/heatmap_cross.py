"""Cross margin: how the model places liquidation prices, against 134 real Hyperliquid positions.

The model places every position at the isolated-margin liquidation price of its assumed
leverage tier (``long = entry (1 - 1/L) / (1 - mmr)``). On a cross-margined account the whole
account's equity backs the position, so the exchange's liquidation price follows the
account's *effective* leverage (notional / equity), not the leverage setting. The check
(``wangrdotcom_wangrcli/whales_btc.json``, 2026-01-04, 131 positions with a liquidation
price): (1) the isolated formula with each position's own leverage setting against the
exchange's ``liquidation_px``; (2) the distribution of the liquidation distance from entry,
by notional, that the default mix assumes against the real one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from purpleflea.engine.heatmap import DEFAULT_TIERS

WHALES = "wangrdotcom_wangrcli/whales_btc.json"
#: Hyperliquid's maintenance margin is half the initial margin at the asset's maximum
#: leverage (BTC: 40x), i.e. 1.25 %.
BTC_MAINTENANCE = 1 / (2 * 40)


@dataclass
class Position:
    long: bool
    cross: bool
    leverage: float
    entry: float
    liquidation: float
    notional: float  # USD at entry

    @property
    def distance(self) -> float:
        """Liquidation distance from entry, a fraction (negative: beyond entry)."""
        ratio = self.liquidation / self.entry
        return 1 - ratio if self.long else ratio - 1

    def isolated(self, maintenance: float = BTC_MAINTENANCE) -> float:
        """The isolated-margin liquidation price at this position's own leverage setting."""
        if self.long:
            return self.entry * (1 - 1 / self.leverage) / (1 - maintenance)
        return self.entry * (1 + 1 / self.leverage) / (1 + maintenance)


def load(root: Path) -> list[Position]:
    rows = json.loads((root / WHALES).read_text())["active_whales"]
    out = []
    for row in rows:
        pos = row["position"]
        if pos["liquidation_px"] is None:
            continue
        out.append(
            Position(
                long=row["side"] == "LONG",
                cross=pos["leverage_type"] == "cross",
                leverage=float(pos["leverage_value"]),
                entry=float(pos["entry_px"]),
                liquidation=float(pos["liquidation_px"]),
                notional=abs(float(pos["size"])) * float(pos["entry_px"]),
            )
        )
    return out


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs: list[float]) -> np.ndarray:
    order = np.argsort(values)
    cum = np.cumsum(weights[order]) / weights.sum()
    return np.asarray(values[order][np.searchsorted(cum, qs)])


def mix_distances() -> tuple[np.ndarray, np.ndarray]:
    """The default mix's liquidation distances from entry (longs) and their notional shares."""
    d = np.array([1 - (1 - 1 / t.leverage) / (1 - t.maintenance) for t in DEFAULT_TIERS])
    w = np.array([t.weight for t in DEFAULT_TIERS])
    return d, w / w.sum()


QS = [0.1, 0.25, 0.5, 0.75, 0.9]


def report(positions: list[Position]) -> tuple[str, dict[str, np.ndarray]]:
    """Markdown tables, and the per-position errors (% of the real price) for the chart."""
    errors: dict[str, np.ndarray] = {}
    lines = [
        "| positions | n | error of the isolated formula at the own leverage, % of the real "
        "price: median | 10th pct | 90th pct | median of abs | real distance from entry "
        "(median) | isolated formula's distance (median) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, pick in (
        ("cross", [p for p in positions if p.cross]),
        ("isolated", [p for p in positions if not p.cross]),
        ("all", positions),
    ):
        err = np.array([(p.isolated() - p.liquidation) / p.liquidation * 100 for p in pick])
        signed = np.array([e if p.long else -e for e, p in zip(err, pick, strict=True)])
        errors[label] = signed
        real = np.array([p.distance for p in pick]) * 100
        iso = np.array(
            [1 - p.isolated() / p.entry if p.long else p.isolated() / p.entry - 1 for p in pick]
        )
        lines.append(
            f"| {label} | {len(pick)} | {np.median(signed):+.1f} | {np.quantile(signed, 0.1):+.1f} "
            f"| {np.quantile(signed, 0.9):+.1f} | {np.median(np.abs(err)):.1f} "
            f"| {np.median(real):.1f} % | {np.median(iso) * 100:.1f} % |"
        )
    real = np.array([p.distance for p in positions]) * 100
    weight = np.array([p.notional for p in positions])
    cross = np.array([p.cross for p in positions])
    d, w = mix_distances()
    lines += [
        "",
        "Signed error > 0: the formula puts the liquidation *nearer* the entry than the exchange "
        "does (too early).",
        "",
        "| liquidation distance from entry, by notional (%) | 10th | 25th | median | 75th | 90th |",
        "|---|---|---|---|---|---|",
        "| real, cross positions | "
        + " | ".join(f"{v:.1f}" for v in weighted_quantiles(real[cross], weight[cross], QS))
        + " |",
        "| real, isolated positions | "
        + " | ".join(f"{v:.1f}" for v in weighted_quantiles(real[~cross], weight[~cross], QS))
        + " |",
        "| the model's default mix (longs) | "
        + " | ".join(f"{v:.1f}" for v in weighted_quantiles(d * 100, w, QS))
        + " |",
    ]
    return "\n".join(lines), errors
