"""Gate futures' contract lists, USDT-, BTC- and USD1-settled."""

from __future__ import annotations

import json

from purpleflea.model import Instrument
from purpleflea.venues._catalog import inverse, json_body, linear, rows, size
from purpleflea.venues._catalog import quanto as quanto_contract
from purpleflea.venues._paging import query_value, with_query
from purpleflea.venues.gate.constants import EXCHANGE
from purpleflea.venues.venue import CatalogSource

#: The BTC-settled family's inverse perpetual, whose mark prices its quantos' BTC.
BTC_INVERSE = "BTC_USD"


def parse(body: bytes) -> list[Instrument]:
    """``GET futures/{settle}/contracts`` of a USD-settled family (USDT, USD1):
    ``quanto_multiplier`` coins per contract; ``type: inverse`` contracts are one USD each."""
    return _parse(body, quanto=False)


def parse_btc_settled(body: bytes) -> list[Instrument]:
    """``GET futures/btc/contracts``: ``BTC_USD`` (``type: inverse``) is one USD a contract;
    every other contract of the list (``type: direct``, ``ETH_USD``) is a **quanto** settled in
    BTC, ``quanto_multiplier`` being BTC per contract per 1 USD of price, not coins.

    Gate calls the field the "Multiplier used in converting from invoicing to settlement
    currency" (gateapi ``Contract``). A recorded table of this list (crypto-crawler's offline
    copy of the endpoint, code index id 27237064358: ETH_USD 0.000001, BNB_USD 0.0000001,
    XRP_USD 0.001, ADA_USD 0.01, BTC_USD 0 among 23) shows multipliers that shrink as the
    coin's USD price grows, as BTC per USD of price must and coins per contract cannot (0.000001
    ETH a contract). Read as coins, an ETH_USD liquidation came out about BTC's USD price times
    too small. A quanto's dollars need BTC's price: the same list carries ``BTC_USD``'s
    ``mark_price``, kept as ``settle_usd`` until the next hourly refresh (a page without
    ``BTC_USD`` leaves its quantos unsized, not guessed).
    """
    return _parse(body, quanto=True)


def _parse(body: bytes, *, quanto: bool) -> list[Instrument]:
    listed = rows(EXCHANGE, json_body(EXCHANGE, body), "body")
    btc_usd = None
    if quanto:
        marks = (r.get("mark_price") for r in listed if r.get("name") == BTC_INVERSE)
        btc_usd = next((size(EXCHANGE, BTC_INVERSE, mark) for mark in marks), None)
    found = []
    for row in listed:
        symbol = str(row.get("name"))
        if row.get("type") == "inverse":
            found.append(inverse(EXCHANGE, symbol, 1.0))
            continue
        contract = size(EXCHANGE, symbol, row.get("quanto_multiplier"))
        if contract is None:
            continue
        if quanto:
            found.append(quanto_contract(EXCHANGE, symbol, contract, btc_usd))
        else:
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


SOURCES = (
    CatalogSource(EXCHANGE, url("usdt"), parse, next_page),
    CatalogSource(EXCHANGE, url("btc"), parse_btc_settled, next_page),
    CatalogSource(EXCHANGE, url("usd1"), parse, next_page),
)
