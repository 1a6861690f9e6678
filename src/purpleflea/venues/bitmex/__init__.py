"""BitMEX: liquidation orders resting in the book, sized from its instrument list."""

from __future__ import annotations

from purpleflea.venues.bitmex import catalog, connection, history, open_interest
from purpleflea.venues.bitmex.constants import COVERAGE, DISPLAY_NAME, EXCHANGE, PRICE, SIM
from purpleflea.venues.bitmex.normalizer import market, normalize
from purpleflea.venues.venue import Absent, Exchange, Venue


def market_name(symbol: str) -> str | None:
    return market(symbol)[0].name


VENUE = Venue(
    name="bitmex",
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
        "GET /api/v1/liquidation lists only the liquidation orders resting in the book now "
        "(the REST explorer's 'Active Liquidations'), not past ones; the live ids are those "
        "orders' orderID, which no public trade history carries"
    ),
)

__all__ = ["EXCHANGE", "VENUE", "market", "normalize"]
