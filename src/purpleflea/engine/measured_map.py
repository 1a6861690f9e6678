"""The measured liquidation map: notional by the positions' *own* liquidation prices.

Where the heatmap model (:mod:`purpleflea.engine.heatmap`) estimates liquidation prices from
open interest under an assumed leverage mix, a venue that publishes every account's positions
with the exchange's liquidation price lets us sum what the sampled accounts actually hold. It
is exact for those accounts and says how much of the market they are:

    coverage = (sampled long notional + sampled short notional) / (2 x open interest)

(open interest is one side, and every long faces a short, so sampling every account would
give 1; marks moving between polls can push the ratio past 1, so it is capped there). Pure:
positions, mark and open interest in; the map out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from purpleflea.engine.heatmap import MAX_BUCKETS, _round_size
from purpleflea.positions import MeasuredMap, Position


def measured_map(
    market: str,
    positions: Iterable[Position],
    *,
    mark_price: float,
    open_interest_usd: float,
    ts: int,
    range_pct: float = 20.0,
    buckets: int = 100,
    low: float | None = None,
    high: float | None = None,
    bucket: float | None = None,
) -> MeasuredMap:
    """The map of ``market`` from ``positions`` (others' markets are skipped), buckets from
    ``low`` to ``high`` (default: the mark +/- ``range_pct`` %), ``bucket`` wide (default a
    round size near the range / ``buckets``), as the estimated heatmap's are."""
    if not (math.isfinite(mark_price) and mark_price > 0):
        raise ValueError(f"measured map {market}: mark_price must be positive, got {mark_price}")
    if not (math.isfinite(open_interest_usd) and open_interest_usd >= 0):
        raise ValueError(
            f"measured map {market}: open_interest_usd must be >= 0, got {open_interest_usd}"
        )
    if not 0 < range_pct < 100:
        raise ValueError(f"measured map {market}: range_pct must be in (0, 100), got {range_pct}")
    for name, value in (("low", low), ("high", high), ("bucket", bucket)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError(f"measured map {market}: {name} must be positive, got {value}")
    top = high if high is not None else mark_price * (1 + range_pct / 100)
    bottom = low if low is not None else mark_price * (1 - range_pct / 100)
    if bottom >= top:
        raise ValueError(f"measured map {market}: low {bottom} must be below high {top}")
    size = bucket if bucket is not None else _round_size((top - bottom) / max(buckets, 1))
    if not (math.isfinite(size) and size > 0) or (top - bottom) / size > MAX_BUCKETS:
        raise ValueError(f"measured map {market}: bucket {size} is not a usable width")
    start = math.floor(bottom / size)
    count = max(math.ceil(top / size) - start, 1)
    longs, shorts = [0.0] * count, [0.0] * count
    sampled, held, accounts = 0.0, 0, set()
    for position in positions:
        if position.market != market:
            continue
        sampled += position.notional_usd
        held += 1
        accounts.add(position.account)
        if position.liquidation_price is None:
            continue
        index = math.floor(position.liquidation_price / size) - start
        if 0 <= index < count:
            (longs if position.side == "long" else shorts)[index] += position.notional_usd
    coverage = min(1.0, sampled / (2 * open_interest_usd)) if open_interest_usd > 0 else 0.0
    return MeasuredMap(
        market=market,
        ts=ts,
        mark_price=mark_price,
        bucket_size=size,
        prices=tuple((start + i) * size for i in range(count)),
        long_usd=tuple(longs),
        short_usd=tuple(shorts),
        coverage=coverage,
        sampled_usd=sampled,
        open_interest_usd=open_interest_usd,
        accounts=len(accounts),
        positions=held,
    )
