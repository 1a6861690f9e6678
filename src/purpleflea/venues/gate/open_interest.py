"""Gate's USDT futures contracts: mark price and one side's open interest, as coins.

``GET futures/usdt/contracts`` gives each contract's ``mark_price`` and ``position_size``,
documented as "Current total long position size": one side, in contracts. The tickers'
``total_size`` ("Contract total size") is not one side: recorded beside a contract list of the
same day (2026-09) it was 1.95 times ``position_size`` (642,640,562 against 328,743,040 BTC_USDT
contracts), and on 2026-08-19 it matched Gate's own ``open_interest_usd``, which counts both
sides as Bybit's ``openInterest`` does.
"""

from __future__ import annotations

from purpleflea.model import Catalog
from purpleflea.venues._open_interest import as_list, json_body, reading
from purpleflea.venues.gate import catalog
from purpleflea.venues.gate.constants import EXCHANGE
from purpleflea.venues.venue import PollSource, Reading

URL = catalog.url("usdt")


def parse(body: bytes, instruments: Catalog) -> list[Reading]:
    """One page of ``GET futures/usdt/contracts``: ``position_size`` contracts x quanto
    multiplier = coins."""
    found = []
    for row in as_list(EXCHANGE, json_body(EXCHANGE, body)):
        found_reading = reading(row.get("name"), row.get("mark_price"), row.get("position_size"))
        instrument = instruments.get(found_reading.symbol) if found_reading else None
        if found_reading is None or instrument is None or instrument.kind != "linear":
            continue
        found.append(
            found_reading._replace(
                open_interest=found_reading.open_interest * instrument.contract_size
            )
        )
    return found


SOURCES = (PollSource(EXCHANGE, (URL,), parse, next_page=catalog.next_page),)
