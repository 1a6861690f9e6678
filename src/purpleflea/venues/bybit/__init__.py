"""Bybit v5: every liquidation of every linear and inverse contract (``allLiquidation``)."""

from __future__ import annotations

from purpleflea.venues.bybit import catalog, connection, history, open_interest
from purpleflea.venues.bybit.constants import COVERAGE, DISPLAY_NAME, EXCHANGE, PRICE, SIM
from purpleflea.venues.bybit.normalizer import market, normalize
from purpleflea.venues.venue import Absent, Exchange, Venue


def market_name(symbol: str) -> str | None:
    return market(symbol)[0].name


VENUE = Venue(
    name="bybit",
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
    catalog=catalog.SOURCES,
    open_interest=open_interest.SOURCES,
    history=history.HISTORY,
    repair=Absent(
        "no public REST liquidation history: allLiquidation is websocket-only; the v5 "
        "market endpoints list no liquidations and GET /v5/market/recent-trade carries no "
        "liquidation flag"
    ),
)

__all__ = ["EXCHANGE", "VENUE", "market", "normalize"]
