"""Gate's REST payloads through our catalog and open-interest parsers (pinned: all read right)."""

from __future__ import annotations

import pytest

from purpleflea.venues.gate import catalog, open_interest

# GET futures/usdt/contracts recorded 2023-05-24 (bmoscon/cryptofeed sample_data/
# GATEIO_FUTURES.0; 302 rows, all "direct"), three rows cut to the fields the catalog reads.
CONTRACTS_2023_05_24 = b"""[
{"name":"BTC_USDT","type":"direct","quanto_multiplier":"0.0001","mark_price":"26704.26","position_size":169531691,"in_delisting":false},
{"name":"ETH_USDT","type":"direct","quanto_multiplier":"0.01","mark_price":"1815.33","position_size":21977529,"in_delisting":false},
{"name":"DOGE_USDT","type":"direct","quanto_multiplier":"10","mark_price":"0.071083","position_size":7033035,"in_delisting":false}
]"""

# GET futures/usdt/tickers?contract=BTC_USDT answered live on 2026-08-19 (a public research
# note found through the code index, which does not name the repository). Its author checked
# total_size x quanto_multiplier = 71,603 BTC against the same hour's contract_stats
# open_interest_usd 4,869,190,792 at mark 67,823: total_size is Gate's open interest.
TICKER_2026_08_19 = b"""[{"contract":"BTC_USDT","last":"67806.7","low_24h":"64137",
"high_24h":"70066.7","volume_24h":"610166601","volume_24h_base":"61016",
"volume_24h_quote":"4053655606","funding_rate":"0.000034","funding_rate_indicative":"0.000034",
"mark_price":"67817.59","total_size":"716037432","quanto_multiplier":"0.0001"}]"""


def test_recorded_contract_list_gives_coins_per_contract() -> None:
    rows = {i.symbol: i for i in catalog.parse(CONTRACTS_2023_05_24)}
    assert {s: (i.kind, i.contract_size) for s, i in rows.items()} == {
        "BTC_USDT": ("linear", 0.0001),
        "ETH_USDT": ("linear", 0.01),
        "DOGE_USDT": ("linear", 10.0),
    }


def test_recorded_ticker_open_interest_is_total_size_in_coins() -> None:
    listed = {i.symbol: i for i in catalog.parse(CONTRACTS_2023_05_24)}
    [reading] = open_interest.parse(TICKER_2026_08_19, listed)
    assert reading.symbol == "BTC_USDT"
    assert reading.mark_price == 67817.59
    assert reading.open_interest == pytest.approx(71603.7432)
    assert reading.open_interest * 67823 == pytest.approx(4_869_190_792, rel=0.005)
