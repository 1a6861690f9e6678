"""Bitget UTA v3: aggregated liquidations of its USDT, coin and USDC futures."""

from __future__ import annotations

from purpleflea.venues.bitget import connection
from purpleflea.venues.bitget.constants import COVERAGE, DISPLAY_NAME, EXCHANGE, PRICE, SIM
from purpleflea.venues.bitget.normalizer import market, normalize
from purpleflea.venues.venue import Absent, Exchange, Venue


def market_name(symbol: str) -> str | None:
    return market(symbol).name


VENUE = Venue(
    name="bitget",
    display_name=DISPLAY_NAME,
    exchanges=(
        Exchange(
            id=EXCHANGE,
            display_name=DISPLAY_NAME,
            coverage=COVERAGE,
            price=PRICE,
            normalize=normalize,
            connections=connection.connections,
            market=market_name,
            sim=SIM,
        ),
    ),
    catalog=Absent(
        "liquidations come in quote amounts: no contract sizes needed, one topic per product type"
    ),
    open_interest=Absent(
        "no open-interest poller yet: the heatmap reads the venues with bulk endpoints. For "
        "one: the ticker's holdingAmount and GET api/v2/mix/market/open-interest agree (33,564 "
        "BTC, a public comparison of 2026-09-16) in base coin; whether that is one side is "
        "undocumented (Coinglass showed 40 % less, unexplained)"
    ),
    history=Absent("no Tardis or recorder rules written yet"),
    repair=Absent(
        "GET /api/v3/market/liquidations (public, cursor-paged, the last 3 days, delayed; "
        "5 requests/s per IP) lists rows whose amount unit the docs leave unstated (readers "
        "take it as base coin) while the channel's amount is quote coin and its pushes are "
        "aggregates: the live id (symbol, ts, side, amount, price) cannot be rebuilt from a "
        "row, so a repaired copy would not deduplicate against what the channel delivered"
    ),
)

__all__ = ["EXCHANGE", "VENUE", "market", "normalize"]
