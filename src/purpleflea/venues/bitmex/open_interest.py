"""BitMEX's instruments: mark price and open interest in contracts, converted to coins."""

from __future__ import annotations

from purpleflea.model import Catalog
from purpleflea.venues._open_interest import as_list, json_body, reading
from purpleflea.venues.bitmex.catalog import URL
from purpleflea.venues.bitmex.constants import EXCHANGE
from purpleflea.venues.venue import PollSource, Reading


def parse(body: bytes, instruments: Catalog) -> list[Reading]:
    """``GET api/v1/instrument/active``: ``openInterest`` contracts, ``markPrice``."""
    found = []
    for row in as_list(EXCHANGE, json_body(EXCHANGE, body)):
        found_reading = reading(row.get("symbol"), row.get("markPrice"), row.get("openInterest"))
        if found_reading is None:
            continue
        instrument = instruments.get(found_reading.symbol)
        if instrument is None or instrument.kind == "quanto":
            continue  # coins unknown without the contract terms
        if instrument.kind == "inverse":
            coins = (
                found_reading.open_interest * instrument.contract_size / found_reading.mark_price
            )
        else:
            coins = found_reading.open_interest * instrument.contract_size
        found.append(found_reading._replace(open_interest=coins))
    return found


SOURCES = (PollSource(EXCHANGE, (URL,), parse),)
