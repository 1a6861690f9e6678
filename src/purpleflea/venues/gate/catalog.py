"""Gate futures' contract lists, USDT-, BTC- and USD1-settled."""

from __future__ import annotations

import json

from purpleflea.model import Instrument
from purpleflea.venues._catalog import inverse, json_body, linear, rows, size
from purpleflea.venues._paging import query_value, with_query
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


#: Rows per page of ``futures/{settle}/contracts``, asked explicitly: Gate documents ``limit``
#: ("Maximum number of records returned in a single list", default 100) and ``offset`` on it
#: since API 4.47.0 (gateio/gateapi-python, 2024-04-18), so a request without them may get
#: the first 100 of its 600-odd USDT contracts.
PAGE = 100


def next_page(url: str, body: bytes) -> str | None:
    """The page after ``url`` when this one is full (``PAGE`` rows); None otherwise.

    A longer answer means the limit was not applied and the list is whole.
    """
    try:
        listed = json.loads(body)
    except ValueError:
        return None
    if not isinstance(listed, list) or len(listed) != PAGE:
        return None
    offset = int(query_value(url, "offset") or 0) + PAGE
    return with_query(url, "offset", str(offset))


def url(settle: str) -> str:
    return f"https://api.gateio.ws/api/v4/futures/{settle}/contracts?limit={PAGE}"


SOURCES = tuple(
    CatalogSource(EXCHANGE, url(settle), parse, next_page) for settle in ("usdt", "btc", "usd1")
)
