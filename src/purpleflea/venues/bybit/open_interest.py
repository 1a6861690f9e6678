"""Bybit's tickers: mark price and one side's open interest.

Bybit's ``openInterest`` is now documented as both sides (EXCHANGES.md trap 14), so its
``singleOpenInterest`` is preferred when present. A bundled symbol (``1000PEPEUSDT``,
``SHIB1000USDT``) quotes its mark per bundle and its open interest in bundles; both are turned
into real coins, the unit of its market (``PEPE-PERP``) everywhere else.
"""

from __future__ import annotations

from purpleflea.model import Catalog
from purpleflea.venues._open_interest import as_list, in_real_coins, json_body, keep, reading
from purpleflea.venues.bybit.constants import EXCHANGE
from purpleflea.venues.bybit.normalizer import market
from purpleflea.venues.venue import PollSource, Reading


def parse(body: bytes, instruments: Catalog) -> list[Reading]:
    """``GET v5/market/tickers?category=linear|inverse``: ``result.list[]``.

    Linear open interest is in coins; inverse (BTCUSD) in USD.
    """
    del instruments
    rows = as_list(EXCHANGE, (json_body(EXCHANGE, body).get("result") or {}).get("list"))
    found = []
    for row in rows:
        symbol = row.get("symbol")
        one_side = row.get("singleOpenInterest") or row.get("openInterest")
        found_reading = reading(symbol, row.get("markPrice"), one_side)
        if found_reading is not None and isinstance(symbol, str) and symbol.endswith("USD"):
            found_reading = found_reading._replace(
                open_interest=found_reading.open_interest / found_reading.mark_price
            )
        if found_reading is not None:
            found_reading = in_real_coins(found_reading, market(found_reading.symbol)[0].multiplier)
        found.append(found_reading)
    return keep(found)


SOURCES = (
    PollSource(EXCHANGE, ("https://api.bybit.com/v5/market/tickers?category=linear",), parse),
)
