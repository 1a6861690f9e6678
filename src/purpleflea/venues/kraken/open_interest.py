"""Kraken Futures' tickers: mark price and open interest, as coins.

``GET derivatives/api/v3/tickers`` lists every contract and index with ``markPrice`` and
``openInterest`` in contracts, sized as the trade feed's ``qty`` is (the normalizer's rule):
``PI_``/``FI_`` inverse contracts of ``contractSize`` USD from the catalog, else Kraken's
documented 1 USD (``catalog.by_documented_rule``; a ``PI_XBTUSD``
ticker of 2023-04-14 recorded in ccxt/ccxt PR #17503 had ``openInterest`` 30,590,973 at a
mark of 30,253.6: USD, not coins), ``PF_``/``FF_`` contracts of one coin. Indices
(``in_``/``rr_`` symbols) name no market and are skipped; symbols are spelled as the
catalog's are (``catalog.product_id``: an all-lower-case one upper-cased, ``PF_AAPLxUSD``
kept).

Whether ``openInterest`` counts a matched long and short once or twice is not documented (the
REST ticker schema, as api-evangelist/kraken mirrors it in 2026, gives the field no
description; Kraken's API reference says only "The current open interest of the
instrument"). A recorded value settles it by arithmetic: that ``PI_XBTUSD`` ticker of
2023-04-14 has ``openInterest`` 30,590,973, an **odd** number of contracts that are whole (1
USD each, amount precision 1). Every open contract has one long and one short holder, so a
count of both sides is twice the longs' whole count, always even: 30,590,973 is one side. It
is read as one side for every product (``PF_`` sizes are fractional, so parity cannot show
it there; the field and its description are the same).
"""

from __future__ import annotations

from purpleflea.model import Catalog
from purpleflea.venues._open_interest import as_list, in_real_coins, json_body, reading
from purpleflea.venues.kraken.catalog import error_answer, product_id
from purpleflea.venues.kraken.constants import EXCHANGE

# The trade feed's rule for a size in contracts (PF_ coins even without a catalog entry).
from purpleflea.venues.kraken.normalizer import _sizes as sizes_of_contracts
from purpleflea.venues.kraken.normalizer import market
from purpleflea.venues.venue import PollSource, Reading

BASE_URL = "https://futures.kraken.com"


def parse(body: bytes, instruments: Catalog) -> list[Reading]:
    """``GET derivatives/api/v3/tickers``: ``tickers[]`` with ``symbol``, ``markPrice`` and
    ``openInterest`` (contracts, converted to coins with the catalog)."""
    found = []
    for row in as_list(EXCHANGE, json_body(EXCHANGE, body).get("tickers")):
        symbol = row.get("symbol")
        symbol = product_id(symbol) if isinstance(symbol, str) else symbol
        found_reading = reading(symbol, row.get("markPrice"), row.get("openInterest"))
        named = market(found_reading.symbol) if found_reading else None
        if found_reading is None or named is None:
            continue
        coins = sizes_of_contracts(
            found_reading.symbol,
            named[1],
            found_reading.open_interest,
            found_reading.mark_price,
            instruments,
        ).quantity
        if coins is not None:  # None: a contract no catalog entry nor documented rule sizes
            coined = found_reading._replace(open_interest=coins)
            found.append(in_real_coins(coined, named[0].multiplier))
    return found


def source(base_url: str = BASE_URL) -> PollSource:
    """Every contract's ticker in one request."""
    return PollSource(
        EXCHANGE, (f"{base_url}/derivatives/api/v3/tickers",), parse, error=error_answer
    )


SOURCES = (source(),)
