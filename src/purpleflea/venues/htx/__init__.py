"""HTX: liquidation orders of its linear and coin-margined swaps (gzip frames)."""

from __future__ import annotations

from purpleflea.venues.htx import catalog, connection, open_interest, repair
from purpleflea.venues.htx.constants import COVERAGE, DISPLAY_NAME, EXCHANGE, PRICE, SIM
from purpleflea.venues.htx.normalizer import market, normalize
from purpleflea.venues.venue import Absent, Exchange, Venue


def market_name(symbol: str) -> str | None:
    found = market(symbol)
    return found.name if found else None


VENUE = Venue(
    name="htx",
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
    history=Absent(
        "Tardis sizes its liquidations in contracts, which need the instrument list of the day; "
        "no recorder of our own exists"
    ),
    repair=repair.SOURCE,
)

__all__ = ["EXCHANGE", "VENUE", "market", "normalize"]
