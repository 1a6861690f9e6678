"""Kraken Futures' instrument list: ``PI_``/``FI_`` inverse and ``PF_``/``FF_`` linear."""

from __future__ import annotations

from purpleflea.model import Instrument
from purpleflea.venues._catalog import inverse, json_body, linear, rows, size
from purpleflea.venues.kraken.constants import EXCHANGE
from purpleflea.venues.venue import CatalogSource


def parse(body: bytes) -> list[Instrument]:
    """``GET derivatives/api/v3/instruments``: ``PI_``/``FI_`` are inverse USD contracts.

    Symbols are upper-cased: the list has spelled them in lower case (``pi_xbtusd``, recorded
    2021) while the trade feed's ``product_id`` is always upper case (``PI_XBTUSD``), the key
    the normalizer looks up.
    """
    found = []
    for row in rows(EXCHANGE, json_body(EXCHANGE, body).get("instruments"), "instruments"):
        symbol = str(row.get("symbol")).upper()
        contract = size(EXCHANGE, symbol, row.get("contractSize", 1))
        if contract is None:
            continue
        if symbol.startswith(("PI_", "FI_")):
            found.append(inverse(EXCHANGE, symbol, contract))
        elif symbol.startswith(("PF_", "FF_")):
            found.append(linear(EXCHANGE, symbol, contract))
    return found


SOURCES = (
    CatalogSource(EXCHANGE, "https://futures.kraken.com/derivatives/api/v3/instruments", parse),
)
