"""BitMEX's instrument list: inverse, quanto and linear contract terms."""

from __future__ import annotations

from purpleflea.model import Instrument
from purpleflea.venues._catalog import inverse, json_body, linear, quanto, rows, size
from purpleflea.venues.bitmex.constants import EXCHANGE
from purpleflea.venues.venue import CatalogSource

URL = "https://www.bitmex.com/api/v1/instrument/active"


def parse(body: bytes) -> list[Instrument]:
    """``GET api/v1/instrument/active``.

    Inverse (XBTUSD): one contract is one USD. Quanto (ETHUSD): ``multiplier`` satoshis per
    contract per 1.0 of price. Linear (SOLUSDT): ``underlyingToPositionMultiplier`` contracts
    per coin.
    """
    listed = rows(EXCHANGE, json_body(EXCHANGE, body), "body")
    # Quanto contracts settle in XBT: their USD size needs XBT's price, which the same list
    # carries as XBTUSD's mark (refreshed with the catalog; a quanto without it stays unsized).
    xbt_usd = next(
        (
            size(EXCHANGE, "XBTUSD", r.get("markPrice"))
            for r in listed
            if r.get("symbol") == "XBTUSD"
        ),
        None,
    )
    found = []
    for row in listed:
        symbol = str(row.get("symbol"))
        if row.get("isInverse"):
            found.append(inverse(EXCHANGE, symbol, 1.0))
        elif row.get("isQuanto"):
            contract = size(EXCHANGE, symbol, abs(float(row.get("multiplier") or 0)) * 1e-8)
            if contract is not None:
                found.append(quanto(EXCHANGE, symbol, contract, xbt_usd))
        else:
            per_coin = size(EXCHANGE, symbol, row.get("underlyingToPositionMultiplier"))
            if per_coin is not None:
                found.append(linear(EXCHANGE, symbol, 1.0 / per_coin))
    return found


SOURCES = (CatalogSource(EXCHANGE, URL, parse),)
