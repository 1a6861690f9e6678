"""BitMEX's instruments: mark price and open interest in contracts, converted to coins.

Contracts become coins as liquidations do (``_units.from_contracts``): inverse XBTUSD one USD
each, linear ``..USDT`` by ``underlyingToPositionMultiplier``, quanto ETHUSD ``multiplier``
XBt per USD of price at XBTUSD's mark. An instrument not quoted in USD (``XRPU21`` in XBT,
``XBTEUR`` in EUR) gives no reading: its mark is not a USD price (the normalizer's rule for
its liquidations' dollars).
"""

from __future__ import annotations

from purpleflea.model import Catalog
from purpleflea.venues._open_interest import as_list, json_body, reading
from purpleflea.venues._units import from_contracts
from purpleflea.venues.bitmex.catalog import URL
from purpleflea.venues.bitmex.constants import EXCHANGE
from purpleflea.venues.bitmex.normalizer import market
from purpleflea.venues.venue import PollSource, Reading


def parse(body: bytes, instruments: Catalog) -> list[Reading]:
    """``GET api/v1/instrument/active``: ``openInterest`` contracts, ``markPrice``."""
    found = []
    for row in as_list(EXCHANGE, json_body(EXCHANGE, body)):
        found_reading = reading(row.get("symbol"), row.get("markPrice"), row.get("openInterest"))
        if found_reading is None or not market(found_reading.symbol)[1]:
            continue
        coins = from_contracts(
            EXCHANGE,
            found_reading.open_interest,
            found_reading.mark_price,
            instruments.get(found_reading.symbol),
        ).quantity
        if coins is not None:  # None: not in the catalog, or a quanto without XBT's price
            found.append(found_reading._replace(open_interest=coins))
    return found


SOURCES = (PollSource(EXCHANGE, (URL,), parse),)
