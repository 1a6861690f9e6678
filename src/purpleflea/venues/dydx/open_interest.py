"""dYdX v4's markets: oracle price and open interest in coins.

``openInterest`` is the chain's perpetual ``OpenInterest``, "Total size of open long
contracts" (dydxprotocol v4-chain, perpetuals proto), which the indexer copies on every
``OpenInterestUpdate`` event: one side.
"""

from __future__ import annotations

from purpleflea.model import Catalog
from purpleflea.venues._open_interest import PollError, json_body, keep, reading
from purpleflea.venues.dydx.catalog import URL
from purpleflea.venues.dydx.constants import EXCHANGE
from purpleflea.venues.venue import PollSource, Reading


def parse(body: bytes, instruments: Catalog) -> list[Reading]:
    """``GET v4/perpetualMarkets``: ``markets{ticker: {oraclePrice, openInterest}}`` (coins)."""
    del instruments
    markets = json_body(EXCHANGE, body).get("markets")
    if not isinstance(markets, dict):
        raise PollError(f"{EXCHANGE} open interest: 'markets' is not an object")
    return keep(
        [
            reading(ticker, row.get("oraclePrice"), row.get("openInterest"))
            for ticker, row in markets.items()
            if isinstance(row, dict)
        ]
    )


SOURCES = (PollSource(EXCHANGE, (URL,), parse),)
