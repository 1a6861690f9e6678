"""Gate's REST payloads through our catalog and open-interest parsers."""

from __future__ import annotations

import json

import pytest

from purpleflea.model import Instrument
from purpleflea.venues.gate import catalog, open_interest

# GET futures/usdt/contracts recorded 2023-05-24 (bmoscon/cryptofeed sample_data/
# GATEIO_FUTURES.0; 302 rows, all "direct"), three rows cut to the fields our parsers read.
CONTRACTS_2023_05_24 = b"""[
{"name":"BTC_USDT","type":"direct","quanto_multiplier":"0.0001","mark_price":"26704.26","position_size":169531691,"in_delisting":false},
{"name":"ETH_USDT","type":"direct","quanto_multiplier":"0.01","mark_price":"1815.33","position_size":21977529,"in_delisting":false},
{"name":"DOGE_USDT","type":"direct","quanto_multiplier":"10","mark_price":"0.071083","position_size":7033035,"in_delisting":false}
]"""

# Two answers recorded in 2026-09 by one public client (its tests, found through the code
# index, which does not name the repository; "from real responses, unrelated fields removed"):
# the BTC_USDT contract (funding_next_apply 2026-09-19 16:00) and the bulk tickers' BTC_USDT.
CONTRACT_2026_09 = b"""[{"name":"BTC_USDT","type":"direct","status":"trading",
"in_delisting":false,"mark_price":"81241","index_price":"81273.55","position_size":328743040,
"quanto_multiplier":"0.0001"}]"""
TICKER_TOTAL_SIZE_2026_09 = 642_640_562


def _catalog() -> dict[str, Instrument]:
    return {i.symbol: i for i in catalog.parse(CONTRACTS_2023_05_24)}


def test_recorded_contract_list_gives_coins_per_contract() -> None:
    assert {s: (i.kind, i.contract_size) for s, i in _catalog().items()} == {
        "BTC_USDT": ("linear", 0.0001),
        "ETH_USDT": ("linear", 0.01),
        "DOGE_USDT": ("linear", 10.0),
    }


def test_open_interest_is_the_long_side_of_the_contract_list() -> None:
    [source] = open_interest.SOURCES
    assert source.urls == ("https://api.gateio.ws/api/v4/futures/usdt/contracts?limit=100",)
    readings = {r.symbol: r for r in source.parse(CONTRACTS_2023_05_24, _catalog())}
    assert readings["BTC_USDT"].open_interest == pytest.approx(16953.1691)
    assert readings["BTC_USDT"].mark_price == 26704.26
    assert readings["DOGE_USDT"].open_interest == pytest.approx(70330350.0)


def test_the_tickers_total_size_counts_both_sides() -> None:
    # We read the tickers' total_size as one side: twice BTC_USDT's open interest.
    [reading] = open_interest.parse(CONTRACT_2026_09, _catalog())
    assert reading.open_interest == pytest.approx(32874.304)  # position_size x 0.0001
    assert TICKER_TOTAL_SIZE_2026_09 * 0.0001 / reading.open_interest == pytest.approx(2, rel=0.03)


def _rows(count: int) -> bytes:
    names = [f"C{n}_USDT" for n in range(count)]
    return json.dumps(
        [{"name": n, "type": "direct", "quanto_multiplier": "1"} for n in names]
    ).encode()


def test_contract_lists_are_read_in_documented_pages() -> None:
    # Gate documents limit (default 100) and offset on futures/{settle}/contracts since API
    # 4.47.0 (gateio/gateapi-python, 2024-04-18); it lists 600-odd USDT contracts. A full
    # page asks for the next, a short one ends the list, and a longer one (the 302 rows of
    # 2023-05-24, asked without a limit) shows the limit was not applied: nothing more to ask.
    first = catalog.url("usdt")
    assert [s.url for s in catalog.SOURCES] == [catalog.url(x) for x in ("usdt", "btc", "usd1")]
    assert all(s.next_page is catalog.next_page for s in catalog.SOURCES)
    second = catalog.next_page(first, _rows(100))
    assert second == first + "&offset=100"
    assert catalog.next_page(second, _rows(100)) == first + "&offset=200"
    assert catalog.next_page(second, _rows(37)) is None
    assert catalog.next_page(first, _rows(302)) is None
    assert open_interest.SOURCES[0].next_page is catalog.next_page
