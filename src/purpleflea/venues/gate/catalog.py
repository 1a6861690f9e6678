"""Gate futures' contract lists, USDT-, BTC- and USD1-settled."""

from __future__ import annotations

from purpleflea.model import Instrument
from purpleflea.venues._catalog import inverse, json_body, linear, rows, size
from purpleflea.venues.gate.constants import EXCHANGE
from purpleflea.venues.venue import CatalogSource


def parse(body: bytes) -> list[Instrument]:
    """``GET futures/{settle}/contracts``: ``quanto_multiplier`` coins per contract.

    ``type: inverse`` contracts (BTC-settled BTC_USD) are one USD each.
    """
    found = []
    for row in rows(EXCHANGE, json_body(EXCHANGE, body), "body"):
        symbol = str(row.get("name"))
        if row.get("type") == "inverse":
            found.append(inverse(EXCHANGE, symbol, 1.0))
            continue
        contract = size(EXCHANGE, symbol, row.get("quanto_multiplier"))
        if contract is not None:
            found.append(linear(EXCHANGE, symbol, contract))
    return found


SOURCES = (
    CatalogSource(EXCHANGE, "https://api.gateio.ws/api/v4/futures/usdt/contracts", parse),
    CatalogSource(EXCHANGE, "https://api.gateio.ws/api/v4/futures/btc/contracts", parse),
    CatalogSource(EXCHANGE, "https://api.gateio.ws/api/v4/futures/usd1/contracts", parse),
)
