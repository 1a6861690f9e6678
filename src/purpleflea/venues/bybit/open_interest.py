"""Bybit's tickers, linear and inverse: mark price and one side's open interest.

Bybit documents ``openInterest`` as both sides and ``singleOpenInterest`` as one (docs commit
c416bd5b, 2026-06-09; EXCHANGES.md trap 14): the single side is read, and half of
``openInterest`` where a ticker lacks it (recorded pairs are exactly 2:1, e.g. BTCUSDT
59,972.256 and 29,986.128 on 2026-08-14; the inverse example of the tickers page has only
``openInterest``). Inverse contracts (``BTCUSD``, ``BTCUSDH26``) count open interest in USD,
turned into coins at the mark. A bundled symbol (``1000PEPEUSDT``, ``SHIB1000USDT``) quotes
its mark per bundle and its open interest in bundles; both are turned into real coins, the
unit of its market (``PEPE-PERP``) everywhere else.
"""

from __future__ import annotations

from typing import Any

from purpleflea.model import Catalog
from purpleflea.venues._open_interest import (
    as_list,
    in_real_coins,
    json_body,
    num,
    reading,
)
from purpleflea.venues.bybit.catalog import error_answer
from purpleflea.venues.bybit.constants import EXCHANGE
from purpleflea.venues.bybit.normalizer import market
from purpleflea.venues.venue import PollSource, Reading


def _one_side(row: dict[str, Any]) -> float | None:
    single = num(row.get("singleOpenInterest"))
    if single is not None:
        return single
    both = num(row.get("openInterest"))
    return None if both is None else both / 2


def parse(body: bytes, instruments: Catalog) -> list[Reading]:
    """``GET v5/market/tickers?category=linear|inverse``: ``result.list[]``."""
    del instruments
    rows = as_list(EXCHANGE, (json_body(EXCHANGE, body).get("result") or {}).get("list"))
    found = []
    for row in rows:
        found_reading = reading(row.get("symbol"), row.get("markPrice"), _one_side(row))
        if found_reading is None:
            continue
        name, kind = market(found_reading.symbol)
        if kind == "inverse":
            found_reading = found_reading._replace(
                open_interest=found_reading.open_interest / found_reading.mark_price
            )
        found.append(in_real_coins(found_reading, name.multiplier))
    return found


_TICKERS = "https://api.bybit.com/v5/market/tickers?category="
SOURCES = (
    PollSource(EXCHANGE, (f"{_TICKERS}linear",), parse, error=error_answer),
    PollSource(EXCHANGE, (f"{_TICKERS}inverse",), parse, error=error_answer),
)
