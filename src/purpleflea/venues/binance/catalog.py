"""Binance COIN-M's contract sizes (USD-M quantities are coins and need none)."""

from __future__ import annotations

from purpleflea.model import Instrument
from purpleflea.venues._catalog import inverse, json_body, rows, size
from purpleflea.venues.binance.constants import COINM
from purpleflea.venues.venue import CatalogSource


def parse_coinm(body: bytes) -> list[Instrument]:
    """``GET dapi/v1/exchangeInfo``: ``symbols[].contractSize`` is USD per contract."""
    found = []
    for row in rows(COINM, json_body(COINM, body).get("symbols"), "symbols"):
        contract = size(COINM, str(row.get("symbol")), row.get("contractSize"))
        if contract is not None:
            found.append(inverse(COINM, str(row["symbol"]), contract))
    return found


SOURCES = (CatalogSource(COINM, "https://dapi.binance.com/dapi/v1/exchangeInfo", parse_coinm),)
