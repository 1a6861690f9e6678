"""dYdX v4's recorded history: Tardis rows and the live frame of the same liquidations."""

from __future__ import annotations

from purpleflea.history_io import parse_tardis
from purpleflea.venues import dydx
from tests.conftest import shared_dir

HEADER = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"

# The documented v4_trades push (shared fixture dydx_v4_trades_liquidated_doc: two LIQUIDATED
# BUY trades of BTC-USD on 2023-04-04 and two LIMIT ones) and the rows tardis-node's mapper
# (src/mappers/dydxv4.ts) writes for it: symbol = the message's id, id = the trade id,
# Number(size) and Number(price) as JavaScript prints them (4e-9), side = the taker's,
# timestamp = createdAt. The local time is ours.
FIXTURES = shared_dir() / "fixtures" / "exchanges"
FRAME = (FIXTURES / "dydx_v4_trades_liquidated_doc.json").read_bytes()
ROWS = [
    "dydx-v4,BTC-USD,1680568159353000,1680568159400000,8ee6d90d-272d-5edd-bf0f-2e4d6ae3d3b7,"
    "buy,27839,0.000100431",
    "dydx-v4,BTC-USD,1680568159353000,1680568159400000,38e64479-af09-5417-a795-195f83879156,"
    "buy,27839,4e-9",
]


def test_recorded_rows_are_the_live_events_ids_included() -> None:
    live = dydx.normalize(FRAME)
    recorded = parse_tardis([HEADER, *ROWS], source="dydx.csv").events
    assert [e.id for e in live] == [
        "dydx_v4:8ee6d90d-272d-5edd-bf0f-2e4d6ae3d3b7",
        "dydx_v4:38e64479-af09-5417-a795-195f83879156",
    ]
    assert [e.id for e in recorded] == [e.id for e in live]  # was: exchange not supported
    for row, event in zip(recorded, live, strict=True):
        assert (row.exchange, row.symbol, row.market, row.side, row.price, row.ts) == (
            event.exchange,
            event.symbol,
            event.market,
            event.side,
            event.price,
            event.ts,
        )
        assert (row.quantity, row.size_usd) == (event.quantity, event.size_usd)


def test_a_recorded_liquidated_trade_and_its_row_are_one_event() -> None:
    # A real LIQUIDATED trade of 2024-08-04 in tardis-node's test (test/mappers.test.ts, 'map
    # dydx-v4 messages'), in the message that test puts it in: under BTC-USD, though its price
    # says another market. Both readings take the market from the message, so they agree.
    frame = (
        b'{"type":"channel_data","connection_id":"3a2e4c0c-7579-4bf6-a570-e0979418bbe9",'
        b'"message_id":424,"id":"BTC-USD","channel":"v4_trades","version":"2.1.0","contents":{'
        b'"trades":[{"id":"0165e5e40000000200000002","size":"0.002","price":"60397","side":"BUY",'
        b'"createdAt":"2024-08-22T23:59:59.851Z","type":"LIMIT"},{"id":"014f495a0000000200000005",'
        b'"side":"SELL","size":"3.9","price":"22.87","type":"LIQUIDATED",'
        b'"createdAt":"2024-08-04T07:34:50.628Z"}]}}'
    )
    [live] = dydx.normalize(frame)
    row = (
        "dydx-v4,BTC-USD,1722756890628000,1724371200100000,014f495a0000000200000005,sell,22.87,3.9"
    )
    [recorded] = parse_tardis([HEADER, row], source="dydx.csv").events
    assert recorded.id == live.id == "dydx_v4:014f495a0000000200000005"
    assert (recorded.side, recorded.price, recorded.quantity, recorded.ts) == (
        live.side,
        live.price,
        live.quantity,
        live.ts,
    )


def test_a_row_of_no_market_ticker_is_a_bad_row() -> None:
    row = ROWS[0].replace("dydx-v4,BTC-USD,", "dydx-v4,BTCUSD,")
    [bad] = parse_tardis([HEADER, row], source="dydx.csv").bad
    assert "not a dYdX market ticker" in bad.reason
