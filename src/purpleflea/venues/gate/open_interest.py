"""Gate's USDT futures tickers: mark price and open interest in contracts, as coins."""

from __future__ import annotations

from purpleflea.model import Catalog
from purpleflea.venues._open_interest import as_list, json_body, reading
from purpleflea.venues.gate.constants import EXCHANGE
from purpleflea.venues.venue import PollSource, Reading


def parse(body: bytes, instruments: Catalog) -> list[Reading]:
    """``GET futures/usdt/tickers``: ``total_size`` contracts x quanto multiplier = coins."""
    found = []
    for row in as_list(EXCHANGE, json_body(EXCHANGE, body)):
        found_reading = reading(row.get("contract"), row.get("mark_price"), row.get("total_size"))
        instrument = instruments.get(found_reading.symbol) if found_reading else None
        if found_reading is None or instrument is None or instrument.kind != "linear":
            continue
        found.append(
            found_reading._replace(
                open_interest=found_reading.open_interest * instrument.contract_size
            )
        )
    return found


SOURCES = (PollSource(EXCHANGE, ("https://api.gateio.ws/api/v4/futures/usdt/tickers",), parse),)
