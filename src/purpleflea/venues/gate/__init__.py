"""Gate futures: public liquidations of USDT-, BTC- and USD1-settled contracts."""

from __future__ import annotations

from purpleflea.venues.gate import catalog, connection, open_interest
from purpleflea.venues.gate.constants import COVERAGE, DISPLAY_NAME, EXCHANGE, PRICE, SIM
from purpleflea.venues.gate.normalizer import market, normalize
from purpleflea.venues.venue import Absent, Exchange, Venue


def market_name(symbol: str) -> str | None:
    found = market(symbol)
    return found.name if found else None


VENUE = Venue(
    name="gate",
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
    repair=Absent(
        "GET /futures/{settle}/liq_orders (public; from/to in whole seconds at most 3600 "
        "apart, limit default 100) gives time in seconds and the order's order_size, "
        "order_price and fill_price, while the live id is built from the channel's ms time, "
        "signed size and price (which REST price that is, is undocumented): a row cannot "
        "give the live id, so a repaired copy would not deduplicate"
    ),
)

__all__ = ["EXCHANGE", "VENUE", "market", "normalize"]
