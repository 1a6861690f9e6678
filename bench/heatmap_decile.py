"""Top-decile zones against realized liquidations (HunterKiller's method), shared helpers.

A *zone* is one bucket of the heatmap's default view (mark +/- 20 %, ~100 round buckets). Per
side, the top-decile zones are the tenth of the view's buckets holding the most notional of
that side (fewer if fewer buckets hold any). A *liquidation period* of a side is a bar (or day)
whose realized liquidations of that side are at least the side's median over the scored
periods; the heatmap read before the period opened (horizon: that one period) *hits* when the
period's adverse extreme (the low for longs, the high for shorts: where price went while that
side was being liquidated) lies in one of its top-decile zones. Precision = hits / periods,
with its Wilson 95 % interval. Choosing a tenth of the view's buckets at random contains any
given price with probability 0.10, so random scores 0.10 whatever the path; an extreme outside
the view is a miss.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from purpleflea.model import Heatmap, Side

RANDOM = 0.10


def top_decile(heat: Heatmap, side: Side) -> np.ndarray:
    """Indices of the side's top-decile buckets in ``heat``."""
    usd = np.asarray(heat.long_usd if side == "long" else heat.short_usd)
    count = max(1, round(RANDOM * len(usd)))
    order = np.argsort(-usd, kind="stable")[:count]
    return order[usd[order] > 0]


def hits(heat: Heatmap, side: Side, price: float) -> bool:
    """Whether ``price`` lies in one of the side's top-decile zones of ``heat``."""
    index = math.floor((price - heat.prices[0]) / heat.bucket_size)
    return 0 <= index < len(heat.prices) and index in set(top_decile(heat, side).tolist())


def wilson(hit: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score 95 % interval of a proportion."""
    if total == 0:
        return float("nan"), float("nan")
    p = hit / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z / (1 + z * z / total) * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return max(0.0, centre - half), min(1.0, centre + half)


def heavy(realized: Sequence[float]) -> np.ndarray:
    """The periods whose realized liquidations are at least the median (and above zero)."""
    values = np.asarray(realized, dtype=np.float64)
    return (values >= np.median(values)) & (values > 0)


def precision_row(label: str, hit: int, total: int) -> str:
    low, high = wilson(hit, total)
    share = hit / total if total else float("nan")
    return f"| {label} | {total} | {hit} | {share:.3f} | {low:.3f} | {high:.3f} | {RANDOM:.2f} |"


PRECISION_HEADER = (
    "| periods | scored | hits | precision | Wilson 95 % low | high | random |\n"
    "|---|---|---|---|---|---|---|"
)


def nearest_hits(heat: Heatmap, side: Side, price: float) -> bool:
    """The distance baseline: the tenth of the view's buckets nearest the mark on the side
    (below it for longs, above for shorts) as the zones."""
    prices = np.asarray(heat.prices)
    count = max(1, round(RANDOM * len(prices)))
    centre = prices + heat.bucket_size / 2
    if side == "long":
        candidates = np.flatnonzero(centre <= heat.mark_price)[::-1][:count]
    else:
        candidates = np.flatnonzero(centre >= heat.mark_price)[:count]
    index = math.floor((price - prices[0]) / heat.bucket_size)
    return index in set(candidates.tolist())


def zone_hits(
    lows: np.ndarray,
    size: float,
    side: Side,
    future_low: np.ndarray,
    future_high: np.ndarray,
    future_heavy: np.ndarray,
) -> np.ndarray:
    """The issue's zone-centric reading: per zone (bucket ``[low, low + size)``), whether price
    reaches it within the horizon (the ``future_*`` periods, in order) *and* the period in
    which it first does is a heavy liquidation period of the side."""
    if side == "long":  # reached once a period's low gets down to the zone's top
        reached = future_low[None, :] <= (lows + size)[:, None]
    else:
        reached = future_high[None, :] >= lows[:, None]
    first = np.argmax(reached, axis=1)
    ever = reached.any(axis=1)
    return np.asarray(ever & future_heavy[first])
