"""Measured account positions: what a venue that publishes every account's positions tells.

A venue whose public API lists an account's open positions with the exchange's own liquidation
price lets us *measure* where liquidations sit instead of estimating it (the heatmap model's
assumption). These structs carry what a position sampler reads; they are pure data, shared by
the venue parsers, the sampler (ingest) and the measured map (engine).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from purpleflea.model import PriceBuckets, Side

MarginMode = Literal["cross", "isolated"]


class Position(msgspec.Struct, frozen=True, kw_only=True):
    """One open position of one account, in our units.

    ``size`` is in coins (always > 0; ``side`` says the direction), prices are USD per coin,
    ``notional_usd`` is the exchange's position value at its mark. ``liquidation_price`` is
    the exchange's own, ``None`` when the account cannot be liquidated on this position (a
    cross account whose equity covers any move).
    """

    account: str
    exchange: str
    symbol: str
    market: str
    side: Side
    size: float
    entry_price: float
    margin: MarginMode
    leverage: float
    liquidation_price: float | None
    notional_usd: float


class SeenTrade(msgspec.Struct, frozen=True, kw_only=True):
    """One public trade: its market, price (USD per coin), time (ms) and both accounts;
    ``symbol`` is the venue's own name of what traded (``""``: not told)."""

    market: str
    price: float
    ts: int
    users: tuple[str, ...]
    symbol: str = ""


class MarketContext(msgspec.Struct, frozen=True, kw_only=True):
    """A market's mark price and one side's open interest (coins and USD) on one venue."""

    market: str
    mark_price: float
    open_interest: float
    open_interest_usd: float


class MeasuredMap(PriceBuckets, frozen=True, kw_only=True):
    """Sampled notional (USD) per liquidation-price bucket for longs and shorts of one market.

    Bucket ``i`` covers ``[prices[i], prices[i] + bucket_size)``. Positions whose liquidation
    price lies outside the buckets, or that have none, count in ``sampled_usd`` and
    ``coverage`` but in no bucket.
    """

    #: sampled notional / (2 x open interest), capped at 1 (see ``coverage_uncapped``).
    coverage: float
    #: The same ratio uncapped: above 1 says the sample overcounts (stale positions, marks).
    coverage_uncapped: float
    sampled_usd: float
    open_interest_usd: float
    accounts: int
    positions: int
    #: Always ``"measured"``: tells it apart from the estimated heatmap in one response type.
    source: Literal["measured"] = "measured"


class MeasuredInputs(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one market's measured map is cut from, at ``ts``: the sampled positions of
    that market (in the sampler's order, which fixes the float sums) and its mark and open
    interest. What the ingest node relays to API nodes, so they cut the same map."""

    market: str
    ts: int
    mark_price: float
    open_interest_usd: float
    positions: tuple[Position, ...]
