"""HTX's REST payloads through our catalog and open-interest parsers: documented answers.

HTX prints its examples as a value tree on htx.com/en-us/opend/newApiPages; here they are the
same values as JSON (read from the rosssaunders/coincise mirror of those pages, 2025-11-30).
"""

from __future__ import annotations

import json

import httpx
import pytest

from purpleflea.ingest import pollers
from purpleflea.model import MarketSnapshot
from purpleflea.venues import registry
from purpleflea.venues.htx import catalog, open_interest
from purpleflea.venues.venue import Reading
from tests.fakes.rest import FakeRest

# "[General] Query Contract Info" (/linear-swap-api/v1/swap_contract_info), the documented
# answer of 2021-12-03: BTC's weekly, bi-weekly and quarterly USDT futures and its swap.
LINEAR_CONTRACTS_DOC = {
    "status": "ok",
    "data": [
        {
            "symbol": "BTC",
            "contract_code": code,
            "contract_size": 0.001,
            "price_tick": 0.1,
            "delivery_date": f"20{code[-6:]}" if code != "BTC-USDT" else "",
            "contract_status": 1,
            "support_margin_mode": "cross" if code != "BTC-USDT" else "all",
            "business_type": "futures" if code != "BTC-USDT" else "swap",
            "pair": "BTC-USDT",
            "contract_type": kind,
        }
        for code, kind in (
            ("BTC-USDT-211203", "this_week"),
            ("BTC-USDT-211210", "next_week"),
            ("BTC-USDT-211231", "quarter"),
            ("BTC-USDT", "swap"),
        )
    ],
    "ts": 1638517765776,
}


def test_the_linear_list_asks_for_futures_too() -> None:
    # The page: business_type "futures, swap, all (default is swap)"; "business_type is a
    # required parameter when query info of futures contract". Without it the catalog had no
    # BTC-USDT-211231, though the liquidation topic carries its orders: the list recorded
    # without it on 2022-02-19 (bmoscon/cryptofeed sample_data/HUOBI_SWAP.0) has 121 rows, all
    # business_type "swap", while HTX listed BTC-USDT futures from 2021-12.
    [linear] = [s for s in catalog.SOURCES if "/linear-swap-api/" in s.url]
    assert linear.url.endswith("swap_contract_info?business_type=all")


def test_documented_linear_futures_are_linear_with_their_swaps_size() -> None:
    rows = {i.symbol: i for i in catalog.parse(json.dumps(LINEAR_CONTRACTS_DOC).encode())}
    assert sorted(rows) == ["BTC-USDT", "BTC-USDT-211203", "BTC-USDT-211210", "BTC-USDT-211231"]
    assert {(i.kind, i.contract_size) for i in rows.values()} == {("linear", 0.001)}


# "Get Contract Info" (/api/v1/contract_contract_info, coin-margined delivery futures), the
# documented answer of 2021-08-11: "Contract Value (USD of one contract)".
DELIVERY_CONTRACTS_DOC = {
    "status": "ok",
    "data": [
        {
            "symbol": "BTC",
            "contract_code": "BTC210813",
            "contract_type": "this_week",
            "contract_size": 100,
            "price_tick": 0.01,
            "delivery_date": "20210813",
            "contract_status": 1,
        },
        {
            "symbol": "ETH",
            "contract_code": "ETH210813",
            "contract_type": "this_week",
            "contract_size": 10,
            "price_tick": 0.001,
            "delivery_date": "20210813",
            "contract_status": 1,
        },
    ],
    "ts": 1628650535608,
}


def test_documented_delivery_futures_are_usd_contracts() -> None:
    # A code without a dash was read as linear: 100 "coins" of BTC per contract.
    rows = {i.symbol: i for i in catalog.parse(json.dumps(DELIVERY_CONTRACTS_DOC).encode())}
    assert (rows["BTC210813"].kind, rows["BTC210813"].contract_size) == ("inverse", 100.0)
    assert (rows["ETH210813"].kind, rows["ETH210813"].contract_size) == ("inverse", 10.0)
    assert catalog.FUTURES_URL in {s.url for s in catalog.SOURCES}


# "[General] Get Swap Open Interest Information" (/linear-swap-api/v1/swap_open_interest), the
# documented answer of 2021-12-06 (ts 1638754059540), two of its four rows: the BTC-USDT swap
# and a weekly future. volume and amount are "Sum of both buy and sell sides".
LINEAR_OPEN_INTEREST_DOC = {
    "status": "ok",
    "data": [
        {
            "volume": 78696,
            "amount": 78.696,
            "symbol": "BTC",
            "value": 3823138.2456,
            "contract_code": "BTC-USDT",
            "business_type": "swap",
            "pair": "BTC-USDT",
            "contract_type": "swap",
        },
        {
            "volume": 10925,
            "amount": 10.925,
            "symbol": "BTC",
            "value": 530662.21,
            "contract_code": "BTC-USDT-211217",
            "business_type": "futures",
            "pair": "BTC-USDT",
            "contract_type": "next_week",
        },
    ],
    "ts": 1638754059540,
}
# "[General]Get a Batch of Market Data Overview(V2)" (/v2/linear-swap-ex/market/detail/
# batch_merged), the documented answer of 2022-04-24: close is "the latest order price".
LINEAR_TICKS_DOC = {
    "status": "ok",
    "ticks": [
        {
            "id": 1650792083,
            "ts": 1650792083179,
            "ask": [39736.6, 1285],
            "bid": [39736.5, 6070],
            "business_type": "swap",
            "contract_code": "BTC-USDT",
            "open": "39760",
            "close": "39736.6",
            "low": "39316.3",
            "high": "39971.2",
            "amount": "6891.566",
            "count": 48262,
            "vol": "273472535.834",
            "number_of": "6891566",
        }
    ],
    "ts": 1650792083179,
}
# "Get Swap Open Interest Information" (/swap-api/v1/swap_open_interest, coin-margined), the
# documented answer of 2020-10-28 (ts 1603852005954): volume and amount are "Single side";
# 129 LTC-USD contracts of 10 USD.
COIN_OPEN_INTEREST_DOC = {
    "status": "ok",
    "data": [
        {
            "volume": 129,
            "amount": 9.485294117647058,
            "symbol": "LTC",
            "contract_code": "LTC-USD",
            "trade_amount": 24.149422048261336,
            "trade_volume": 320,
            "trade_turnover": 3200,
        }
    ],
    "ts": 1603852005954,
}
# "Get a Batch of Market Data Overview(V2)" (/v2/swap-ex/market/detail/batch_merged), the
# documented BTC-USD tick of 2022-04-24, and an LTC-USD tick made for this test (the page has
# none): the two documented answers name different contracts.
COIN_TICKS = {
    "status": "ok",
    "ticks": [
        {"contract_code": "BTC-USD", "close": "39735.2", "ts": 1650792412926},
        {"contract_code": "LTC-USD", "close": "136", "ts": 1650792412926},
    ],
    "ts": 1650792412926,
}


def _merged(*bodies: dict[str, object]) -> bytes:
    return pollers.merge_bodies([json.dumps(body).encode() for body in bodies])


def test_linear_open_interest_is_half_of_both_sides_at_the_last_price() -> None:
    linear, _ = open_interest.SOURCES
    assert linear.urls == (
        "https://api.hbdm.com/linear-swap-api/v1/swap_open_interest",
        "https://api.hbdm.com/v2/linear-swap-ex/market/detail/batch_merged",
    )
    readings = linear.parse(_merged(LINEAR_OPEN_INTEREST_DOC, LINEAR_TICKS_DOC), {})
    # The weekly future has no tick in the swaps' list: no price, no reading.
    assert readings == [Reading("BTC-USDT", 39736.6, 78.696 / 2)]


def test_coin_margined_open_interest_is_one_side_already() -> None:
    _, coin = open_interest.SOURCES
    assert coin.urls == (
        "https://api.hbdm.com/swap-api/v1/swap_open_interest",
        "https://api.hbdm.com/v2/swap-ex/market/detail/batch_merged",
    )
    [reading] = coin.parse(_merged(COIN_OPEN_INTEREST_DOC, COIN_TICKS), {})
    # amount is coins: 129 contracts x 10 USD at HTX's own price, read as it is.
    assert reading == Reading("LTC-USD", 136.0, 9.485294117647058)


async def test_the_pollers_deliver_both_margins_as_snapshots_of_their_markets() -> None:
    routes = {
        "/linear-swap-api/v1/swap_open_interest": json.dumps(LINEAR_OPEN_INTEREST_DOC).encode(),
        "/v2/linear-swap-ex/market/detail/batch_merged": json.dumps(LINEAR_TICKS_DOC).encode(),
        "/swap-api/v1/swap_open_interest": json.dumps(COIN_OPEN_INTEREST_DOC).encode(),
        "/v2/swap-ex/market/detail/batch_merged": json.dumps(COIN_TICKS).encode(),
    }
    got: list[MarketSnapshot] = []
    async with FakeRest(routes) as rest, httpx.AsyncClient() as client:
        for source in open_interest.sources(rest.base):
            poller = pollers.Poller(source, client, got.extend, registry.market_of, {})
            assert await poller.poll_once() == 60.0
            assert poller.stats.errors == {}
    by_market = {s.market: s for s in got}
    assert set(by_market) == {"BTC-PERP", "LTC-PERP"}
    btc = by_market["BTC-PERP"]
    assert (btc.exchange, btc.symbol, btc.mark_price) == ("htx", "BTC-USDT", 39736.6)
    assert btc.open_interest_usd == pytest.approx(39.348 * 39736.6)
    assert [path for _, path in rest.requests] == list(routes)


# A live capture of 2026-08-19, 17:32-17:41 UTC, published in one public desk's venue notes
# (found through the code index, which does not name the repository): the BTC-USDT answer of
# swap_open_interest (its value is HTX's own USDT valuation of amount) and the close of the
# BTC-USDT market overview (detail/merged, the field batch_merged lists for every swap). The
# same notes record that swap_open_interest and v2 batch_merged without a contract code both
# answered 306 rows: the two bulk lists cover the same contracts.
LINEAR_OPEN_INTEREST_2026_08_19 = {
    "status": "ok",
    "data": [
        {
            "volume": 31034739,
            "amount": 31034.739,
            "value": 2104319788.3167,
            "contract_code": "BTC-USDT",
            "trade_amount": 13471.114,
            "trade_turnover": 895645473.25,
        }
    ],
}
LINEAR_CLOSE_2026_08_19 = {
    "status": "ok",
    "ticks": [{"contract_code": "BTC-USDT", "close": "67993"}],
}


def test_a_recorded_answer_is_half_of_htxs_own_value_at_the_last_price() -> None:
    linear, _ = open_interest.SOURCES
    body = _merged(LINEAR_OPEN_INTEREST_2026_08_19, LINEAR_CLOSE_2026_08_19)
    [reading] = linear.parse(body, {})
    assert reading.open_interest == pytest.approx(15517.3695)
    # HTX values amount at 67,805 (value / amount); the last price is 0.3 % above it.
    assert reading.open_interest * reading.mark_price == pytest.approx(
        2104319788.3167 / 2, rel=0.005
    )
