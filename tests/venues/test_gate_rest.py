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


# GET futures/btc/contracts as one public client recorded it (crypto-crawler's offline table
# of that endpoint's quanto_multiplier per contract, code index id 27237064358; the BTC-settled
# list then held 23 contracts): BTC_USD (multiplier 0, the inverse one) beside ETH_USD 0.000001,
# BNB_USD 0.0000001, XRP_USD 0.001, ADA_USD 0.01. Those multipliers shrink as the coin's USD
# price does, so they cannot be coins per contract (0.000001 ETH a contract): they are BTC per
# contract per 1 USD of price, Gate's quanto ("Multiplier used in converting from invoicing to
# settlement currency", gateapi Contract). Marks here are illustrative; the fields are the
# endpoint's own (type inverse/direct, quanto_multiplier, mark_price).
BTC_SETTLED = b"""[
{"name":"BTC_USD","type":"inverse","quanto_multiplier":"0","mark_price":"60000"},
{"name":"ETH_USD","type":"direct","quanto_multiplier":"0.000001","mark_price":"3000"},
{"name":"XRP_USD","type":"direct","quanto_multiplier":"0.001","mark_price":"0.5"}
]"""


def test_btc_settled_direct_contracts_are_quantos_in_btc() -> None:
    from purpleflea.venues import gate

    [btc_source] = [s for s in catalog.SOURCES if "/futures/btc/" in s.url]
    rows = {i.symbol: i for i in btc_source.parse(BTC_SETTLED)}
    assert (rows["BTC_USD"].kind, rows["BTC_USD"].contract_size) == ("inverse", 1.0)
    eth = rows["ETH_USD"]
    assert (eth.kind, eth.contract_size, eth.settle_usd) == ("quanto", 0.000001, 60000.0)
    frame = {
        "channel": "futures.public_liquidates",
        "event": "update",
        "result": {"contract": "ETH_USD", "price": "3000", "time": 1_718_000_000_000, "size": -1e3},
    }
    [event] = gate.normalize(json.dumps(frame).encode(), rows)
    # 1,000 contracts x 0.000001 BTC per USD of price x 3,000 = 3 BTC, at 60,000 USD each.
    assert event.size_usd == pytest.approx(180_000.0)
    assert event.quantity == pytest.approx(60.0)  # 180,000 USD of ETH at 3,000
    assert (event.market, event.side) == ("ETH-PERP", "long")


def test_a_btc_settled_quanto_without_btc_price_stays_unsized() -> None:
    from purpleflea.venues import gate

    [btc_source] = [s for s in catalog.SOURCES if "/futures/btc/" in s.url]
    # A later page of the list (offset=100) need not carry BTC_USD: no BTC price, no guess.
    rows = {i.symbol: i for i in btc_source.parse(BTC_SETTLED.replace(b"BTC_USD", b"BTC_XXX"))}
    assert rows["ETH_USD"].settle_usd is None
    frame = {
        "channel": "futures.public_liquidates",
        "event": "update",
        "result": {"contract": "ETH_USD", "price": "3000", "time": 1_718_000_000_000, "size": 5},
    }
    [event] = gate.normalize(json.dumps(frame).encode(), rows)
    assert (event.quantity, event.size_usd) == (None, None)


def test_usd_settled_lists_keep_direct_contracts_linear() -> None:
    for source in catalog.SOURCES:
        if "/futures/btc/" in source.url:
            continue
        [row] = source.parse(b'[{"name":"ETH_USD1","type":"direct","quanto_multiplier":"0.01"}]')
        assert (row.kind, row.contract_size) == ("linear", 0.01)
