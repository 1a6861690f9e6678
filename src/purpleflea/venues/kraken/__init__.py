"""Kraken Futures: trades of type ``liquidation`` on its ``trade`` feed."""

from __future__ import annotations

from purpleflea.venues.kraken import catalog, connection, history, open_interest, repair
from purpleflea.venues.kraken.constants import COVERAGE, DISPLAY_NAME, EXCHANGE, PRICE, SIM
from purpleflea.venues.kraken.normalizer import market, normalize
from purpleflea.venues.venue import Exchange, Venue


def market_name(symbol: str) -> str | None:
    found = market(symbol)
    return found[0].name if found else None


VENUE = Venue(
    name="kraken",
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
    repair=repair.SOURCE,
)

__all__ = ["EXCHANGE", "VENUE", "market", "normalize"]
