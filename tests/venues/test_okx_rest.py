"""OKX's REST payloads through our catalog parser (pinned: all read right)."""

from __future__ import annotations

import json

from purpleflea.venues.okx import catalog

# GET api/v5/public/instruments?instType=SWAP and ?instType=FUTURES recorded 2022-05-13
# (bmoscon/cryptofeed sample_data/OKX.0; 166 swaps), rows cut to the fields read: an inverse
# swap and future (100 USD), linear ones in BTC, and SHIB's million-coin contract.
ROWS_2022_05_13 = [
    ("SWAP", "BTC-USD-SWAP", "inverse", "100", "USD"),
    ("SWAP", "BTC-USDT-SWAP", "linear", "0.01", "BTC"),
    ("SWAP", "SHIB-USDT-SWAP", "linear", "1000000", "SHIB"),
    ("FUTURES", "BTC-USD-220624", "inverse", "100", "USD"),
    ("FUTURES", "BTC-USDT-220624", "linear", "0.01", "BTC"),
]


def test_recorded_instruments_give_each_contract_its_size() -> None:
    data = [
        {"instType": t, "instId": i, "ctType": k, "ctVal": v, "ctValCcy": c, "ctMult": "1"}
        for t, i, k, v, c in ROWS_2022_05_13
    ]
    body = json.dumps({"code": "0", "msg": "", "data": data}).encode()
    rows = {i.symbol: (i.kind, i.contract_size) for i in catalog.parse(body)}
    assert rows == {
        "BTC-USD-SWAP": ("inverse", 100.0),
        "BTC-USDT-SWAP": ("linear", 0.01),
        "SHIB-USDT-SWAP": ("linear", 1_000_000.0),
        "BTC-USD-220624": ("inverse", 100.0),
        "BTC-USDT-220624": ("linear", 0.01),
    }
    # The documented face-value rule agrees with the recorded inverse rows.
    rule = catalog.by_documented_rule("BTC-USD-220624")
    assert rule is not None
    assert (rule.kind, rule.contract_size) == rows["BTC-USD-220624"]
