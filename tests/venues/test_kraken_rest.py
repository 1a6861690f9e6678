"""Kraken Futures' REST tickers through our open-interest parser and poller."""

from __future__ import annotations

import json

import httpx
import pytest

from purpleflea.ingest import pollers
from purpleflea.model import Catalog, MarketSnapshot
from purpleflea.venues import registry
from purpleflea.venues.kraken import catalog, open_interest
from tests.fakes.rest import FakeRest

# The instrument list's shape (GET derivatives/api/v3/instruments), cut to the fields read:
# PI_ inverse contracts of 1 USD, PF_ multi-collateral contracts of one coin.
INSTRUMENTS = json.dumps(
    {
        "result": "success",
        "instruments": [
            {"symbol": "PI_XBTUSD", "contractSize": 1},
            {"symbol": "PF_ETHUSD", "contractSize": 1},
        ],
    }
).encode()

# PI_XBTUSD's ticker of 2023-04-14 (time 1681492461791) as recorded in ccxt/ccxt PR #17503
# (its websocket ticker; the REST tickers name the same fields, the product under "symbol"):
# openInterest 30,590,973 at a mark of 30,253.6 can only be USD contracts, not coins. The
# PF_ETHUSD row and the index row are made for this test in the documented REST shape.
TICKERS = {
    "result": "success",
    "tickers": [
        {
            "symbol": "PI_XBTUSD",
            "markPrice": 30253.61960357119,
            "openInterest": 30590973.0,
            "tag": "perpetual",
            "pair": "XBT:USD",
        },
        {"symbol": "PF_ETHUSD", "markPrice": 2000.0, "openInterest": 1500.5, "tag": "perpetual"},
        {"symbol": "in_xbtusd", "last": 30251.4},
    ],
    "serverTime": "2023-04-14T17:14:21.791Z",
}


def _catalog() -> Catalog:
    return {i.symbol: i for i in catalog.parse(INSTRUMENTS)}


def test_inverse_contracts_are_usd_and_multi_collateral_ones_coins() -> None:
    [source] = open_interest.SOURCES
    assert source.urls == ("https://futures.kraken.com/derivatives/api/v3/tickers",)
    readings = {r.symbol: r for r in source.parse(json.dumps(TICKERS).encode(), _catalog())}
    assert set(readings) == {"PI_XBTUSD", "PF_ETHUSD"}  # the index names no market
    btc = readings["PI_XBTUSD"]
    assert btc.open_interest == pytest.approx(30590973 / 30253.61960357119)  # 1,011.2 BTC
    assert btc.open_interest * btc.mark_price == pytest.approx(30590973)
    assert readings["PF_ETHUSD"].open_interest == 1500.5


def test_an_inverse_contract_missing_from_the_catalog_is_read_at_its_documented_face_value() -> (
    None
):
    # Kraken documents one face value for every inverse contract, 1 USD (catalog.
    # by_documented_rule), as the trade feed reads it. A PF_ contract counts coins without an
    # entry, as the trade feed's do; a lower-case symbol (the instrument list's 2021 spelling)
    # is upper-cased as the catalog's are.
    rows = [dict(TICKERS["tickers"][0]), dict(TICKERS["tickers"][1], symbol="pf_ethusd")]
    readings = open_interest.parse(json.dumps({"tickers": rows}).encode(), {})
    assert [(r.symbol, r.open_interest) for r in readings] == [
        ("PI_XBTUSD", pytest.approx(30590973 / 30253.61960357119)),
        ("PF_ETHUSD", 1500.5),
    ]


def test_a_tokenized_stock_ticker_keeps_the_symbol_its_liquidations_carry() -> None:
    # PF_AAPLxUSD is Kraken's spelling (the catalog's product_id, test_kraken.py): its reading
    # is filed under the symbol the trade feed's events carry, not an upper-cased PF_AAPLXUSD.
    row = {"symbol": "PF_AAPLxUSD", "markPrice": 228.4, "openInterest": 812.25}
    [reading] = open_interest.parse(json.dumps({"tickers": [row]}).encode(), {})
    assert (reading.symbol, reading.open_interest) == ("PF_AAPLxUSD", 812.25)


async def test_the_poller_delivers_snapshots_of_the_markets() -> None:
    got: list[MarketSnapshot] = []
    async with (
        FakeRest({"/derivatives/api/v3/tickers": json.dumps(TICKERS).encode()}) as rest,
        httpx.AsyncClient() as client,
    ):
        source = open_interest.source(rest.base)
        poller = pollers.Poller(source, client, got.extend, registry.market_of, _catalog())
        assert await poller.poll_once() == 60.0
    by_market = {s.market: s for s in got}
    assert set(by_market) == {"BTC-PERP", "ETH-PERP"}
    assert by_market["BTC-PERP"].open_interest_usd == pytest.approx(30590973)
    assert by_market["ETH-PERP"].open_interest_usd == pytest.approx(1500.5 * 2000.0)
    assert by_market["ETH-PERP"].exchange == "kraken_futures"
    assert rest.requests == [("GET", "/derivatives/api/v3/tickers")]
