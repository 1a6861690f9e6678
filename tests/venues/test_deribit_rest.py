"""Deribit's REST payloads through our catalog and open-interest parsers."""

from __future__ import annotations

import json

import httpx
import pytest

from purpleflea.ingest import pollers
from purpleflea.model import MarketSnapshot
from purpleflea.venues import registry
from purpleflea.venues.deribit import catalog, open_interest
from tests.fakes.rest import FakeRest

# get_instruments?currency=USDC&expired=false as recorded in bmoscon/cryptofeed
# sample_data/DERIBIT.0 (BTC_USDC-PERPETUAL created 2022-03-09), one row cut to the fields
# the catalog reads; it has "future_type" and no "instrument_type".
USDC_PERPETUAL = b"""{"result":[{"settlement_period":"perpetual","settlement_currency":"USDC",
"quote_currency":"USDC","kind":"future","is_active":true,"instrument_name":"BTC_USDC-PERPETUAL",
"future_type":"linear","contract_size":0.001,"base_currency":"BTC"}]}"""


def test_a_linear_perpetual_described_by_future_type_is_linear() -> None:
    [instrument] = catalog.parse(USDC_PERPETUAL)
    assert (instrument.symbol, instrument.kind, instrument.contract_size) == (
        "BTC_USDC-PERPETUAL",
        "linear",
        0.001,
    )
    current = USDC_PERPETUAL.replace(b'"future_type"', b'"instrument_type"')
    assert catalog.parse(current)[0].kind == "linear"


# get_instruments?currency=BTC&expired=false as recorded 2021-07-22 in bmoscon/cryptofeed
# sample_data/DERIBIT.0 (7 of its 8 BTC futures are dated), two rows cut to the fields the
# catalog reads.
BTC_FUTURES = b"""{"result":[{"settlement_period":"month","quote_currency":"USD","kind":"future",
"is_active":true,"instrument_name":"BTC-24SEP21","contract_size":10.0,"base_currency":"BTC"},
{"settlement_period":"perpetual","quote_currency":"USD","kind":"future","is_active":true,
"instrument_name":"BTC-PERPETUAL","contract_size":10.0,"base_currency":"BTC"}]}"""


def test_dated_futures_are_listed_beside_the_perpetuals() -> None:
    assert [(i.symbol, i.kind, i.contract_size) for i in catalog.parse(BTC_FUTURES)] == [
        ("BTC-24SEP21", "inverse", 10.0),
        ("BTC-PERPETUAL", "inverse", 10.0),
    ]


# get_book_summary_by_currency?currency=BTC&kind=future as the API reference prints it ("real
# example", creation_timestamp 1550230036440 = 2019-02-15; the docs.deribit.com v2 page as
# copied in public clients' docstrings), cut to the fields read: open_interest is "in USD
# units" for perpetual and inverse futures. The ETH, USDC and USDT rows are made for this test
# in the same shape ("linear futures ... the underlying base currency coin").
SUMMARIES = {
    "BTC": [
        {"instrument_name": "BTC-22FEB19", "mark_price": 3579.73, "open_interest": 0},
        {"instrument_name": "BTC-PERPETUAL", "mark_price": 3579.73, "open_interest": 183180},
        # A calendar spread (kind future_combo, listed here only to show it is skipped).
        {"instrument_name": "BTC-FS-22FEB19_PERP", "mark_price": 10.0, "open_interest": 5},
    ],
    "ETH": [{"instrument_name": "ETH-PERPETUAL", "mark_price": 4000.0, "open_interest": 8e6}],
    "USDC": [
        {"instrument_name": "SOL_USDC-PERPETUAL", "mark_price": 200.0, "open_interest": 12345.6},
        {"instrument_name": "XRP_USDC-PERPETUAL", "mark_price": None, "open_interest": 10.0},
    ],
    "USDT": [],
}


def _answer(currency: str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "result": SUMMARIES[currency], "usIn": 1}).encode()


def test_open_interest_is_usd_for_inverse_futures_and_coins_for_linear_ones() -> None:
    [source] = open_interest.SOURCES
    assert [url.rsplit("?", 1)[1] for url in source.urls] == [
        f"currency={c}&kind=future" for c in ("BTC", "ETH", "USDC", "USDT")
    ]
    body = pollers.merge_bodies([_answer(c) for c in SUMMARIES])
    readings = {r.symbol: r for r in source.parse(body, {})}
    # No mark (XRP) or no future we name (the combo): no reading.
    assert set(readings) == {"BTC-22FEB19", "BTC-PERPETUAL", "ETH-PERPETUAL", "SOL_USDC-PERPETUAL"}
    assert readings["BTC-PERPETUAL"].open_interest == pytest.approx(183180 / 3579.73)  # 51.2 BTC
    assert readings["BTC-22FEB19"].open_interest == 0.0
    assert readings["ETH-PERPETUAL"].open_interest == pytest.approx(2000.0)  # 8 M USD
    assert readings["SOL_USDC-PERPETUAL"].open_interest == 12345.6  # coins already


async def test_the_poller_asks_each_currency_and_delivers_one_batch() -> None:
    got: list[MarketSnapshot] = []
    path = "/api/v2/public/get_book_summary_by_currency"
    async with (
        FakeRest({path: lambda params: _answer(params["currency"])}) as rest,
        httpx.AsyncClient() as client,
    ):
        poller = pollers.Poller(
            open_interest.source(rest.base), client, got.extend, registry.market_of, {}
        )
        assert await poller.poll_once() == 60.0
    assert [target for _, target in rest.requests] == [
        f"{path}?currency={c}&kind=future" for c in ("BTC", "ETH", "USDC", "USDT")
    ]
    by_symbol = {s.symbol: s for s in got}
    assert by_symbol["BTC-PERPETUAL"].market == "BTC-PERP"
    assert by_symbol["BTC-PERPETUAL"].open_interest_usd == pytest.approx(183180)
    assert by_symbol["BTC-22FEB19"].market == "BTC-20190222"
    assert by_symbol["SOL_USDC-PERPETUAL"].market == "SOL-PERP"
    assert by_symbol["SOL_USDC-PERPETUAL"].open_interest_usd == pytest.approx(12345.6 * 200)
