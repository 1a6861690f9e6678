"""OKX v5: liquidation orders of its swaps and dated futures, sized from its instrument list."""

from __future__ import annotations

from purpleflea.venues.okx import catalog, connection, open_interest, repair
from purpleflea.venues.okx.constants import COVERAGE, DISPLAY_NAME, EXCHANGE, PRICE, SIM
from purpleflea.venues.okx.normalizer import CHANNEL, market, normalize
from purpleflea.venues.venue import Absent, Exchange, Venue


def market_name(inst_id: str) -> str | None:
    found = market(inst_id)
    return found.name if found else None


VENUE = Venue(
    name="okx",
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
        "Tardis sizes OKX liquidations in contracts, which need the instrument list of the "
        "day; no recorder of our own exists"
    ),
    repair=repair.SOURCE,
)

__all__ = ["CHANNEL", "EXCHANGE", "VENUE", "market", "normalize"]
