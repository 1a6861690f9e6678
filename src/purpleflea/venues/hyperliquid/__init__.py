"""Hyperliquid: liquidation fills of watched addresses or a node's fills; no public feed."""

from __future__ import annotations

from purpleflea.venues.hyperliquid import open_interest, positions
from purpleflea.venues.hyperliquid.constants import COVERAGE, DISPLAY_NAME, EXCHANGE, PRICE
from purpleflea.venues.hyperliquid.normalizer import (
    market,
    normalize_fill,
    normalize_node_fills,
    normalize_user_events,
    normalize_user_fills,
)
from purpleflea.venues.venue import Absent, Exchange, Venue

# EXCHANGES.md trap 13: no websocket subscription and no flag in public trades carry
# liquidations; only fills of known addresses or a node's output do, read by the functions
# above rather than by a stream normalizer.
_NO_PUBLIC_FEED = Absent(
    "no public liquidation feed (EXCHANGES.md trap 13): events come from the fills of watched "
    "addresses or a node's node_fills output"
)


def market_name(coin: str) -> str | None:
    found = market(coin)
    return found.name if found else None


VENUE = Venue(
    name="hyperliquid",
    display_name=DISPLAY_NAME,
    exchanges=(
        Exchange(
            id=EXCHANGE,
            display_name=DISPLAY_NAME,
            coverage=COVERAGE,
            price=PRICE,
            normalize=_NO_PUBLIC_FEED,
            connections=_NO_PUBLIC_FEED,
            market=market_name,
            sim=Absent("the market simulator does not list it"),
        ),
    ),
    catalog=Absent("sizes are coins and there is no per-instrument subscription"),
    open_interest=open_interest.SOURCES,
    history=Absent("no Tardis or recorder rules written yet"),
    repair=Absent("no public liquidation feed or history: events are sampled per account"),
    positions=positions.SAMPLING,
)

__all__ = [
    "EXCHANGE",
    "VENUE",
    "market",
    "normalize_fill",
    "normalize_node_fills",
    "normalize_user_events",
    "normalize_user_fills",
]
