"""The measured liquidation map: notional by the positions' *own* liquidation prices.

Where the heatmap model (:mod:`purpleflea.engine.heatmap`) estimates liquidation prices from
open interest under an assumed leverage mix, a venue that publishes every account's positions
with the exchange's liquidation price lets us sum what the sampled accounts actually hold. It
is exact for those accounts and says how much of the market they are:

    coverage = (sampled long notional + sampled short notional) / (2 x open interest)

(open interest is one side, and every long faces a short, so sampling every account would
give 1). Positions valued at different moments' marks, and open interest polled at another,
can still push the ratio past 1: ``coverage`` is capped there, as the API promises a share,
and ``coverage_uncapped`` keeps the raw ratio so the cap never hides an overcount. Pure:
positions, mark and open interest in; the map out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from purpleflea.engine.heatmap import MAX_BUCKETS, _round_size
from purpleflea.model import Heatmap
from purpleflea.positions import MeasuredInputs, MeasuredMap, Position


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
    ratio = sampled / (2 * open_interest_usd) if open_interest_usd > 0 else 0.0
    return MeasuredMap(
        market=market,
        ts=ts,
        mark_price=mark_price,
        bucket_size=size,
        prices=tuple((start + i) * size for i in range(count)),
        long_usd=tuple(longs),
        short_usd=tuple(shorts),
        coverage=min(1.0, ratio),
        coverage_uncapped=ratio,
        sampled_usd=sampled,
        open_interest_usd=open_interest_usd,
        accounts=len(accounts),
        positions=held,
    )


def cut(
    inputs: MeasuredInputs,
    *,
    low: float | None = None,
    high: float | None = None,
    bucket: float | None = None,
) -> MeasuredMap:
    """:func:`measured_map` of captured ``inputs``: the one path from a sampler's state (on
    the node that samples, or relayed to another) to the map a client asked for."""
    return measured_map(
        inputs.market,
        inputs.positions,
        mark_price=inputs.mark_price,
        open_interest_usd=inputs.open_interest_usd,
        ts=inputs.ts,
        low=low,
        high=high,
        bucket=bucket,
    )


def _ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman rank correlation of two equally long series; None when either is constant."""
    if len(a) != len(b):
        raise ValueError(f"spearman: series of {len(a)} and {len(b)} values")
    ra, rb = _ranks(a), _ranks(b)
    mean = (len(a) + 1) / 2
    da, db = [r - mean for r in ra], [r - mean for r in rb]
    norm = math.sqrt(sum(x * x for x in da) * sum(y * y for y in db))
    return None if norm == 0 else sum(x * y for x, y in zip(da, db, strict=True)) / norm


def agreement(estimated: Heatmap, measured: MeasuredMap) -> float | None:
    """How well the estimate ranks the buckets the measured map fills: the mean over sides of
    the Spearman correlation of their bucket notionals (a side the measured map leaves empty is
    not scored). Both maps must share their buckets (ask the estimate for the measured map's
    ``low``, ``high`` and ``bucket``). None when no side can be scored."""
    if estimated.prices != measured.prices:
        raise ValueError(
            f"agreement {measured.market}: the maps' buckets differ ({len(estimated.prices)} "
            f"from {estimated.prices[:1]} vs {len(measured.prices)} from {measured.prices[:1]})"
        )
    scores = [
        score
        for guess, truth in (
            (estimated.long_usd, measured.long_usd),
            (estimated.short_usd, measured.short_usd),
        )
        if any(truth)
        for score in [spearman(guess, truth)]
        if score is not None
    ]
    return sum(scores) / len(scores) if scores else None
