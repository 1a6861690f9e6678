"""BitMEX's REST payloads through our catalog and open-interest parsers."""

from __future__ import annotations

import pytest

from purpleflea.venues.bitmex import catalog, open_interest
from purpleflea.venues.venue import Reading

# GET api/v1/instrument/active recorded 2021-07-22 (bmoscon/cryptofeed sample_data/BITMEX.0),
# four of its 34 rows cut to the fields our parsers read: the inverse XBTUSD, the quanto ETHUSD
# (100 XBt per 1 USD of ETH price per contract), an XRP future quoted in XBT and the EUR
# perpetual.
INSTRUMENTS_2021_07_22 = b"""[
{"symbol":"XBTUSD","typ":"FFWCSX","quoteCurrency":"USD","settlCurrency":"XBt","isInverse":true,"isQuanto":false,"multiplier":-100000000,"underlyingToPositionMultiplier":null,"openInterest":574264600,"markPrice":32184.89},
{"symbol":"ETHUSD","typ":"FFWCSX","quoteCurrency":"USD","settlCurrency":"XBt","isInverse":false,"isQuanto":true,"multiplier":100,"underlyingToPositionMultiplier":null,"openInterest":1403475,"markPrice":2003.93},
{"symbol":"XRPU21","typ":"FFCCSX","quoteCurrency":"XBT","settlCurrency":"XBt","isInverse":false,"isQuanto":false,"multiplier":100000000,"underlyingToPositionMultiplier":1,"openInterest":2326060,"markPrice":1.816e-05},
{"symbol":"XBTEUR","typ":"FFWCSX","quoteCurrency":"EUR","settlCurrency":"XBt","isInverse":true,"isQuanto":false,"multiplier":-100000000,"underlyingToPositionMultiplier":null,"openInterest":3298900,"markPrice":27464.48}
]"""


def _readings() -> dict[str, Reading]:
    listed = {i.symbol: i for i in catalog.parse(INSTRUMENTS_2021_07_22)}
    [source] = open_interest.SOURCES
    return {r.symbol: r for r in source.parse(INSTRUMENTS_2021_07_22, listed)}


def test_open_interest_of_the_recorded_list_in_coins_at_usd_marks() -> None:
    readings = _readings()
    assert readings["XBTUSD"].open_interest == pytest.approx(574264600 / 32184.89)  # 17,843 BTC
    # ETHUSD, BitMEX's second market, was dropped as "quanto": each contract is 100 XBt per
    # USD of ETH price, so 100e-8 x 32,184.89 = 0.0322 ETH at XBTUSD's mark: 45,170 ETH.
    eth = readings["ETHUSD"]
    assert eth.open_interest == pytest.approx(1403475 * 1e-6 * 32184.89)
    assert eth.mark_price == 2003.93


def test_marks_not_in_usd_are_not_open_interest_readings() -> None:
    # XRPU21's mark is 1.816e-05 XBT and XBTEUR's 27,464.48 EUR: delivered as marks they sat
    # beside USD marks, and their USD open interest was XBT or EUR.
    readings = _readings()
    assert "XRPU21" not in readings
    assert "XBTEUR" not in readings
