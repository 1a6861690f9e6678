"""Bybit's REST payloads through our open-interest and catalog parsers."""

from __future__ import annotations

import json

import pytest

from purpleflea.venues.bybit import catalog, open_interest

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
    [reading] = open_interest.parse(body, {})
    assert (reading.symbol, reading.mark_price) == ("BTCUSDT", 63560.80)
    assert reading.open_interest == 29986.128
    assert reading.open_interest * reading.mark_price == pytest.approx(1905942284.58, rel=1e-4)


# The inverse answer of GET v5/market/tickers?category=inverse&symbol=BTCUSD as Bybit's tickers
# page prints it (bybit-exchange/docs docs/v5/market/tickers.mdx, 2026-07 snapshot), cut to
# the fields read: openInterest 240,113,967 USD is both sides (openInterestValue 2,089.79 BTC
# = 240,113,967 / 114,898.43) and the row has no singleOpenInterest.
INVERSE_DOC = {
    "symbol": "BTCUSD",
    "lastPrice": "120635.50",
    "indexPrice": "114890.92",
    "markPrice": "114898.43",
    "openInterest": "240113967",
    "openInterestValue": "2089.79",
}


def _inverse_body(*rows: dict[str, str]) -> bytes:
    return json.dumps({"retCode": 0, "result": {"category": "inverse", "list": rows}}).encode()


def test_inverse_open_interest_is_polled_one_side_in_coins() -> None:
    inverse = [s for s in open_interest.SOURCES if s.urls[0].endswith("category=inverse")]
    assert len(inverse) == 1  # BTCUSD's open interest was never polled
    [reading] = inverse[0].parse(_inverse_body(INVERSE_DOC), {})
    assert reading.open_interest == pytest.approx(240113967 / 2 / 114898.43)  # 1,044.9 BTC


def test_an_inverse_future_counts_usd_like_its_perpetual() -> None:
    # A month-coded inverse future (Bybit's BTCUSDH26 naming; the normalizer's market rule),
    # with the single side present: USD, turned into coins at the mark, not read as coins.
    future = {"symbol": "BTCUSDH26", "markPrice": "100000", "singleOpenInterest": "5000000"}
    [reading] = open_interest.parse(_inverse_body(future), {})
    assert reading.open_interest == pytest.approx(50.0)


# The pre-market answer of GET v5/market/instruments-info?category=linear&status=PreLaunch as
# Bybit's instruments page prints it (bybit-exchange/docs docs/v5/market/instrument.mdx, added
# 2025-01-02, its "time" 1735810114435), cut to the fields read: BIOUSDT trades in its
# continuous-trading phase while its status is PreLaunch, and a one-row page has a cursor.
PRELAUNCH_DOC = {
    "retCode": 0,
    "result": {
        "category": "linear",
        "list": [
            {
                "symbol": "BIOUSDT",
                "contractType": "LinearPerpetual",
                "status": "PreLaunch",
                "isPreListing": True,
                "preListingInfo": {"curAuctionPhase": "ContinuousTrading"},
            }
        ],
        "nextPageCursor": "first%3DBIOUSDT%26last%3DBIOUSDT",
    },
    "time": 1735810114435,
}
PRELAUNCH_URL = (
    "https://api.bybit.com/v5/market/instruments-info?limit=1000&category=linear&status=PreLaunch"
)


def test_a_pre_market_perpetual_is_listed() -> None:
    [instrument] = catalog.parse(json.dumps(PRELAUNCH_DOC).encode())
    assert (instrument.symbol, instrument.kind) == ("BIOUSDT", "linear")
    assert PRELAUNCH_URL in [source.url for source in catalog.SOURCES]


def test_the_cursor_is_sent_back_verbatim_until_an_empty_page() -> None:
    first = json.dumps(PRELAUNCH_DOC).encode()
    following = catalog.next_page(PRELAUNCH_URL, first)
    assert following == PRELAUNCH_URL + "&cursor=first%3DBIOUSDT%26last%3DBIOUSDT"
    # A second cursor replaces the first instead of piling up.
    assert catalog.next_page(following, first) == following
    empty = {"retCode": 0, "result": {"category": "linear", "list": [], "nextPageCursor": "x"}}
    assert catalog.next_page(following, json.dumps(empty).encode()) is None
    last = dict(PRELAUNCH_DOC, result=dict(PRELAUNCH_DOC["result"], nextPageCursor=""))
    assert catalog.next_page(PRELAUNCH_URL, json.dumps(last).encode()) is None
