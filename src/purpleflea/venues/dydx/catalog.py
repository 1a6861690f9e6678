"""dYdX v4's market list: the markets its per-market feed subscribes to."""

from __future__ import annotations

from purpleflea.model import Instrument
from purpleflea.venues._catalog import CatalogError, json_body, linear
from purpleflea.venues.dydx.constants import EXCHANGE
from purpleflea.venues.venue import CatalogSource

URL = "https://indexer.dydx.trade/v4/perpetualMarkets"


def parse(body: bytes) -> list[Instrument]:
    """``GET v4/perpetualMarkets``: ``markets{ticker: {status}}``, sizes in coins."""
    markets = json_body(EXCHANGE, body).get("markets")
    if not isinstance(markets, dict):
        raise CatalogError(f"{EXCHANGE} instruments: 'markets' is not an object")
    return [
        linear(EXCHANGE, str(ticker), 1.0)
        for ticker, row in markets.items()
        if isinstance(row, dict) and row.get("status", "ACTIVE") == "ACTIVE"
    ]


SOURCES = (CatalogSource(EXCHANGE, URL, parse),)
