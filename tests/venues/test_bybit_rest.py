"""Bybit's REST payloads through our open-interest parser (pinned: read right)."""

from __future__ import annotations

import json

import pytest

from purpleflea.venues.bybit import open_interest

# The BTCUSDT ticker of a live tickers.BTCUSDT snapshot of 2026-08-14 (ts 1786659827683; a
# public client's test, found through the code index, which does not name the repository),
# set in the REST answer GET v5/market/tickers?category=linear gives the same row in.
# openInterest 59,972.256 is exactly twice singleOpenInterest 29,986.128 (a probe of
# v5/market/open-interest on 2026-09-15 shows the same: 52,664.642 and 26,332.321): the first
# counts both sides (EXCHANGES.md trap 14), the heatmap wants one.
TICKER_2026_08_14 = {
    "symbol": "BTCUSDT",
    "lastPrice": "63561.60",
    "markPrice": "63560.80",
    "indexPrice": "63585.51",
    "openInterest": "59972.256",
    "openInterestValue": "3811884569.16",
    "singleOpenInterest": "29986.128",
    "singleOpenInterestValue": "1905942284.58",
    "fundingRate": "0.00005013",
}


def test_open_interest_is_one_side_in_coins() -> None:
    body = json.dumps(
        {"retCode": 0, "result": {"category": "linear", "list": [TICKER_2026_08_14]}}
    ).encode()
    [source] = open_interest.SOURCES
    [reading] = source.parse(body, {})
    assert (reading.symbol, reading.mark_price) == ("BTCUSDT", 63560.80)
    assert reading.open_interest == 29986.128
    assert reading.open_interest * reading.mark_price == pytest.approx(1905942284.58, rel=1e-4)
