"""Kraken Futures' recorded history: Tardis ``cryptofacilities`` rows and the live frames."""

from __future__ import annotations

import json

import pytest

from purpleflea.history_io import parse_tardis
from purpleflea.venues import kraken
from tests.conftest import shared_dir

HEADER = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"
FIXTURES = shared_dir() / "fixtures" / "exchanges"

# Two real liquidations of 2020-07-01 as the trade feed sent them (tardis-node
# test/mappers.test.ts, 'map cryptofacilities messages'; the PI_ETHUSD one is the shared fixture
# krakenfutures_trade_liquidation_inverse_eth_recorded_tardis), and the rows tardis-node's
# liquidations mapper (src/mappers/cryptofacilities.ts) writes for them: symbol = product_id,
# id = uid, amount = qty, side = the trade's side, timestamp = time in microseconds. The local
# times are ours.
XRP_FRAME = (
    b'{"feed":"trade","product_id":"PI_XRPUSD","uid":"3ee209b8-bc9f-4ed5-965b-8c6208b26411",'
    b'"side":"sell","type":"liquidation","seq":41799,"time":1593561965283,"qty":12000,'
    b'"price":0.1736}'
)
ETH_FRAME = (
    FIXTURES / "krakenfutures_trade_liquidation_inverse_eth_recorded_tardis.json"
).read_bytes()
ROWS = [
    "cryptofacilities,PI_XRPUSD,1593561965283000,1593561965400000,"
    "3ee209b8-bc9f-4ed5-965b-8c6208b26411,sell,0.1736,12000",
    "cryptofacilities,PI_ETHUSD,1593620853613000,1593620853700000,"
    "e7f3a144-5c04-4ed6-999e-5922cd0b6160,buy,231.6,250",
]
# The instrument list the live feed is sized with: contractSize 1 for every inverse product
# (the list recorded 2021-07-22, bmoscon/cryptofeed sample_data/KRAKEN_FUTURES.0, two rows
# trimmed to the fields read).
CATALOG_BODY = (
    b'{"result":"success","instruments":[{"symbol":"pi_xrpusd","type":"futures_inverse",'
    b'"contractSize":1},{"symbol":"pi_ethusd","type":"futures_inverse","contractSize":1}]}'
)


def _same_event(row: object, live: object) -> None:
    fields = ("id", "exchange", "symbol", "market", "side", "price", "ts", "quantity", "size_usd")
    assert [getattr(row, f) for f in fields] == [getattr(live, f) for f in fields]


def test_inverse_rows_are_the_live_events_ids_included() -> None:
    catalog = {i.symbol: i for i in kraken.catalog.parse(CATALOG_BODY)}
    live = [*kraken.normalize(XRP_FRAME, catalog), *kraken.normalize(ETH_FRAME, catalog)]
    parsed = parse_tardis([HEADER, *ROWS], source="kraken.csv")
    assert parsed.bad == []  # was: exchange 'cryptofacilities' is not supported
    assert [e.id for e in parsed.events] == [
        "kraken_futures:3ee209b8-bc9f-4ed5-965b-8c6208b26411",
        "kraken_futures:e7f3a144-5c04-4ed6-999e-5922cd0b6160",
    ]
    for row, event in zip(parsed.events, live, strict=True):
        _same_event(row, event)
    xrp, eth = parsed.events
    assert (xrp.market, xrp.side, xrp.size_usd) == ("XRP-PERP", "long", 12000.0)
    assert (eth.market, eth.side, eth.size_usd) == ("ETH-PERP", "short", 250.0)
    assert eth.quantity == pytest.approx(250 / 231.6)


def test_a_multi_collateral_row_is_sized_in_coins_as_live() -> None:
    # The recorded XRP liquidation's shape on a multi-collateral product (no recorded PF_
    # liquidation is public): qty is in base coins, as the live feed reads it.
    trade = json.loads(XRP_FRAME)
    trade.update(product_id="PF_XBTUSD", qty=0.0123, price=61234.5)
    [live] = kraken.normalize(json.dumps(trade).encode())
    row = (
        "cryptofacilities,PF_XBTUSD,1593561965283000,1593561965400000,"
        "3ee209b8-bc9f-4ed5-965b-8c6208b26411,sell,61234.5,0.0123"
    )
    [recorded] = parse_tardis([HEADER, row], source="kraken.csv").events
    _same_event(recorded, live)
    assert (recorded.market, recorded.quantity) == ("BTC-PERP", 0.0123)


def test_dated_rows_and_rows_without_uid() -> None:
    row = ROWS[0].replace("PI_XRPUSD", "FI_XBTUSD_200925")
    [dated] = parse_tardis([HEADER, row], source="kraken.csv").events
    assert (dated.market, dated.size_usd) == ("BTC-20200925", 12000.0)
    no_uid = ROWS[1].replace("e7f3a144-5c04-4ed6-999e-5922cd0b6160", "")
    [generic] = parse_tardis([HEADER, no_uid], source="kraken.csv").events
    assert generic.id == "kraken_futures:PI_ETHUSD:1593620853613000:buy:250"


def test_a_row_of_no_futures_product_is_a_bad_row() -> None:
    row = ROWS[0].replace("PI_XRPUSD", "XBTUSD")
    parsed = parse_tardis([HEADER, row], source="kraken.csv")
    assert parsed.events == []
    assert "not a Kraken Futures product" in parsed.bad[0].reason


def test_a_vanilla_xbt_quoted_row_is_ignored() -> None:
    # PV_XRPXBT, Crypto Facilities' XRP perpetual quoted in XBT (listed by clients of 2018-2020):
    # its price is no USD price, and the tracker follows no such product live.
    row = ROWS[0].replace("PI_XRPUSD", "PV_XRPXBT").replace(",0.1736,", ",0.00003,")
    parsed = parse_tardis([HEADER, row, ROWS[1]], source="kraken.csv")
    assert (len(parsed.events), parsed.ignored, parsed.bad) == (1, 1, [])
