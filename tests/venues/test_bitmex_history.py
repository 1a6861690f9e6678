"""BitMEX's recorded history: Tardis ``bitmex`` rows and the live inserts they were written from."""

from __future__ import annotations

import json

import pytest

from purpleflea.history_io import parse_tardis
from purpleflea.model import Instrument
from purpleflea.venues import bitmex

HEADER = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"
XBTUSD = Instrument(exchange="bitmex", symbol="XBTUSD", kind="inverse", contract_size=1.0)

# Real inserts: one of tardis-node's test (test/mappers.test.ts, 'map bitmex messages') and two of
# a public client's live session of 2024-11-13 (the log behind tests/venues/test_bitmex.py's
# growing updates), and the rows tardis-node's mapper (src/mappers/bitmex.ts) writes for them:
# id = orderID, amount = leavesQty, side = the order side, timestamp = the receive time (ours).
FRAMES = [
    b'{"table":"liquidation","action":"insert","data":[{"orderID":'
    b'"dd9cea25-207c-0dab-15b5-b88da776f500","symbol":"XBTUSD","side":"Buy","price":10106,'
    b'"leavesQty":9214}]}',
    b'{"table":"liquidation","action":"insert","data":[{"orderID":'
    b'"63689d12-d539-45f9-977f-deafdf5d3c41","symbol":"XBTUSD","side":"Buy","price":88051.8,'
    b'"leavesQty":1500}]}',
    b'{"table":"liquidation","action":"insert","data":[{"orderID":'
    b'"749134b5-8b4e-48d3-ab56-3495e8c58957","symbol":"XBTUSD","side":"Sell","price":90396.3,'
    b'"leavesQty":891800}]}',
]
ROWS = [
    "bitmex,XBTUSD,1570000000100000,1570000000100000,dd9cea25-207c-0dab-15b5-b88da776f500,"
    "buy,10106,9214",
    "bitmex,XBTUSD,1731494070000000,1731494070000000,63689d12-d539-45f9-977f-deafdf5d3c41,"
    "buy,88051.8,1500",
    "bitmex,XBTUSD,1731494100000000,1731494100000000,749134b5-8b4e-48d3-ab56-3495e8c58957,"
    "sell,90396.3,891800",
]
# The same session's linear and quanto inserts, as rows: sized only by the day's list.
XBTUSDT_ROW = (
    "bitmex,XBTUSDT,1731494060000000,1731494060000000,9a519e00-4fe7-4f17-9629-e48f6d3ab21d,"
    "buy,87785.3,39700"
)
ETHUSD_ROW = (
    "bitmex,ETHUSD,1731494080000000,1731494080000000,190cb18e-f537-46b4-ac4b-25edaf28c677,"
    "buy,3208.61,40"
)


def test_xbt_inverse_rows_are_the_live_inserts_ids_included() -> None:
    live = [e for f in FRAMES for e in bitmex.normalizer.LiquidationBook()(f, {"XBTUSD": XBTUSD})]
    parsed = parse_tardis([HEADER, *ROWS], source="bitmex.csv")
    assert parsed.bad == []  # was: exchange 'bitmex' is not supported
    assert [e.id for e in parsed.events] == [e.id for e in live]
    assert parsed.events[0].id == "bitmex:dd9cea25-207c-0dab-15b5-b88da776f500"
    for row, event in zip(parsed.events, live, strict=True):
        assert (row.symbol, row.market, row.side, row.price, row.quantity, row.size_usd) == (
            event.symbol,
            event.market,
            event.side,
            event.price,
            event.quantity,
            event.size_usd,
        )
    # BitMEX sends no time: the row's is the recorder's receive time.
    assert [e.ts for e in parsed.events] == [1570000000100, 1731494070000, 1731494100000]
    assert [e.side for e in parsed.events] == ["short", "short", "long"]
    assert parsed.events[2].size_usd == 891800.0


def test_xbt_futures_are_inverse_and_other_contracts_need_the_list() -> None:
    row = ROWS[1].replace("XBTUSD", "XBTZ24")
    [dated] = parse_tardis([HEADER, row], source="bitmex.csv").events
    assert (dated.market, dated.size_usd) == ("BTC-20241227", 1500.0)
    solusdt = XBTUSDT_ROW.replace("XBTUSDT", "SOLUSDT")
    parsed = parse_tardis([HEADER, solusdt, ETHUSD_ROW], source="bitmex.csv")
    assert parsed.events == []
    assert [b.line for b in parsed.bad] == [2, 3]
    assert all("instrument list" in b.reason for b in parsed.bad)


def test_xbtusdt_rows_are_sized_at_a_millionth_of_an_xbt_a_contract() -> None:
    # XBTUSDT's instrument answer recorded 2026-05-21 (ccxt's static bitmex markets):
    # underlyingToPositionMultiplier 1000000, so 39,700 contracts are 0.0397 XBT; the live
    # normalizer sizes the same insert alike from the catalog row.
    catalog_row = {
        "symbol": "XBTUSDT",
        "isInverse": False,
        "isQuanto": False,
        "multiplier": "1",
        "underlyingToPositionMultiplier": "1000000",
    }
    [instrument] = bitmex.catalog.parse(json.dumps([catalog_row]).encode())
    parsed = parse_tardis([HEADER, XBTUSDT_ROW], source="bitmex.csv")
    assert parsed.bad == []  # was: only XBTUSD and XBT futures are sized without the list
    [row] = parsed.events
    frame = (
        b'{"table":"liquidation","action":"insert","data":[{"orderID":'
        b'"9a519e00-4fe7-4f17-9629-e48f6d3ab21d","symbol":"XBTUSDT","side":"Buy",'
        b'"price":87785.3,"leavesQty":39700}]}'
    )
    [live] = bitmex.normalizer.LiquidationBook()(frame, {"XBTUSDT": instrument})
    assert (row.id, row.market, row.side) == (live.id, "BTC-PERP", "short")
    assert row.quantity == pytest.approx(0.0397) == live.quantity
    assert row.size_usd == pytest.approx(0.0397 * 87785.3) == live.size_usd


def test_a_contract_not_quoted_in_usd_is_ignored_as_live() -> None:
    # XBTEUR (inverse, 1 EUR a contract, in the list recorded 2021-07-22): the live feed drops
    # its event unsized, since its price is no USD price.
    row = ROWS[0].replace("XBTUSD", "XBTEUR")
    parsed = parse_tardis([HEADER, row, ROWS[1]], source="bitmex.csv")
    assert (len(parsed.events), parsed.ignored, parsed.bad) == (1, 1, [])


def test_a_row_without_order_id_keeps_the_generic_id() -> None:
    row = ROWS[1].replace("63689d12-d539-45f9-977f-deafdf5d3c41", "")
    [event] = parse_tardis([HEADER, row], source="bitmex.csv").events
    assert event.id == "bitmex:XBTUSD:1731494070000000:buy:1500"
