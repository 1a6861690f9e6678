"""HTX's REST payloads through our catalog parser: the documented contract lists.

HTX prints its examples as a value tree on htx.com/en-us/opend/newApiPages; here they are the
same values as JSON (read from the rosssaunders/coincise mirror of those pages, 2025-11-30).
"""

from __future__ import annotations

import json

from purpleflea.venues.htx import catalog

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
