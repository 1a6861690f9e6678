"""BitMEX liquidation table: only inserts are new, the partial is a replay, no timestamps."""

from __future__ import annotations

import json

import pytest

from purpleflea.model import Instrument
from purpleflea.venues import FrameError, bitmex

XBTUSD = Instrument(exchange="bitmex", symbol="XBTUSD", kind="inverse", contract_size=1.0)


def _frame(action: str, **row: object) -> bytes:
    data = {"orderID": "a-1", "symbol": "XBTUSD", "side": "Buy", "price": 50000, "leavesQty": 2000}
    data.update(row)
    return json.dumps({"table": "liquidation", "action": action, "data": [data]}).encode()


def test_insert_of_a_buy_order_is_a_short_liquidated() -> None:
    [event] = bitmex.normalize(_frame("insert"), {"XBTUSD": XBTUSD})
    assert event.side == "short"
    assert event.size_usd == 2000.0  # XBTUSD: one USD per contract
    assert event.quantity == pytest.approx(0.04)
    assert event.ts is None  # BitMEX sends no time
    assert event.id == "bitmex:a-1"
    assert not event.replay


def test_partial_snapshot_rows_are_replays_with_the_same_id() -> None:
    [event] = bitmex.normalize(_frame("partial", side="Sell"), {"XBTUSD": XBTUSD})
    assert (event.side, event.replay, event.id) == ("long", True, "bitmex:a-1")


def test_update_and_delete_are_not_new_liquidations() -> None:
    book = bitmex.normalizer.LiquidationBook()
    assert book(_frame("update", leavesQty=500)) == []  # an order never seen
    [_] = book(_frame("insert"))
    assert book(_frame("update", leavesQty=500)) == []  # filling
    assert book(_frame("update", price=49990, leavesQty=None)) == []  # re-priced
    assert book(_frame("delete")) == []
    assert book(_frame("update", leavesQty=9000)) == []  # deleted: forgotten


def test_quanto_needs_the_settlement_price() -> None:
    ethusd = Instrument(exchange="bitmex", symbol="ETHUSD", kind="quanto", contract_size=1e-6)
    frame = _frame("insert", symbol="ETHUSD", price=3100.25, leavesQty=40)
    [unsized] = bitmex.normalize(frame, {"ETHUSD": ethusd})
    assert (unsized.quantity, unsized.size_usd, unsized.contracts) == (None, None, 40)
    priced = Instrument(
        exchange="bitmex", symbol="ETHUSD", kind="quanto", contract_size=1e-6, settle_usd=60000
    )
    [event] = bitmex.normalize(frame, {"ETHUSD": priced})
    # 40 contracts x 100 XBt per $1 x 3100.25 = 0.12401 XBT = 7440.6 USD = 2.4 ETH
    assert event.size_usd == pytest.approx(7440.6)
    assert event.quantity == pytest.approx(2.4)


def test_market_names_and_usd_quotes() -> None:
    assert bitmex.market("XBTUSD") == (("BTC-PERP", 1.0), True)
    assert bitmex.market("SOLUSDT") == (("SOL-PERP", 1.0), True)
    assert bitmex.market("XBTZ24") == (("BTC-20241227", 1.0), True)
    assert bitmex.market("ETHZ24") == (("ETH-20241227", 1.0), False)  # quoted in XBT


def test_the_euro_perpetual_is_not_counted_in_dollars() -> None:
    # XBTEUR as listed in the instrument list recorded 2021-07-22 (bmoscon/cryptofeed
    # sample_data/BITMEX.0; the row cut to the fields the catalog reads): inverse, one EUR
    # per contract. The frame is the shape of a real insert (2024-11-13, see
    # test_recorded_session_yields_one_event_per_insert) with the symbol changed: no real
    # XBTEUR liquidation was found. Six letters starting with XBT is not a dated XBT future.
    listed = (
        b'[{"symbol":"XBTEUR","isInverse":true,"isQuanto":false,"multiplier":-100000000,'
        b'"quoteCurrency":"EUR"}]'
    )
    frame = _frame("insert", symbol="XBTEUR", side="Sell", price=28000, leavesQty=5600)
    [event] = bitmex.normalize(frame, {i.symbol: i for i in bitmex.catalog.parse(listed)})
    assert event.size_usd is None  # 5,600 EUR, not 5,600 USD
    assert bitmex.market("XBTEUR")[1] is False
    assert bitmex.market("XBTZ24")[1] is True


def test_control_frames_yield_nothing() -> None:
    assert bitmex.normalize(b"pong") == []
    assert bitmex.normalize(b'{"info":"Welcome to the BitMEX Realtime API.","version":"2.0"}') == []
    assert bitmex.normalize(b'{"success":true,"subscribe":"liquidation"}') == []
    assert bitmex.normalize(b'{"status":400,"error":"Unknown table: liquidations"}') == []


def test_malformed_rows_raise_frame_error() -> None:
    with pytest.raises(FrameError, match=r"^bitmex frame: data\[0\]\.side is not Buy/Sell"):
        bitmex.normalize(_frame("insert", side="Hold"))
    with pytest.raises(FrameError, match="needs leavesQty and price"):
        bitmex.normalize(b'{"table":"liquidation","action":"insert","data":[{"orderID":"x"}]}')


# A live session of 2024-11-13, kept as a comment in a public BitMEX client (found through the
# code index, which does not name the repository); seven of its frames, verbatim.
_SESSION_2024_11_13 = [
    b'{"info":"Welcome to the BitMEX Realtime API.","version":"2.0.0","timestamp":"2024-11-13T10:34:26.741Z","docs":"https://www.bitmex.com/app/wsAPI","heartbeatEnabled":false,"limit":{"remaining":719}}',
    b'{"success":true,"subscribe":"liquidation:XBTUSD","request":{"op":"subscribe","args":["liquidation:XBTUSD","liquidation:XBTUSDT","liquidation:ETHUSD","liquidation:ETHUSDT"]}}',
    b'{"table":"liquidation","action":"partial","keys":["orderID"],"types":{"orderID":"guid","symbol":"symbol","side":"symbol","price":"float","leavesQty":"long"},"filter":{},"data":[]}',
    b'{"table":"liquidation","action":"insert","data":[{"orderID":"9a519e00-4fe7-4f17-9629-e48f6d3ab21d","symbol":"XBTUSDT","side":"Buy","price":87785.3,"leavesQty":39700}]}',
    b'{"table":"liquidation","action":"delete","data":[{"orderID":"9a519e00-4fe7-4f17-9629-e48f6d3ab21d","symbol":"XBTUSDT"}]}',
    b'{"table":"liquidation","action":"update","data":[{"orderID":"e42d57c2-977f-4535-8428-608a379cebdf","symbol":"XBTUSD","price":88753.4,"leavesQty":21600}]}',
    b'{"table":"liquidation","action":"insert","data":[{"orderID":"749134b5-8b4e-48d3-ab56-3495e8c58957","symbol":"XBTUSD","side":"Sell","price":90396.3,"leavesQty":891800}]}',
]


def test_recorded_session_yields_one_event_per_insert() -> None:
    # XBTUSDT is linear, 1e-6 XBT per contract (underlyingToPositionMultiplier 1,000,000).
    xbtusdt = Instrument(exchange="bitmex", symbol="XBTUSDT", kind="linear", contract_size=1e-6)
    catalog = {"XBTUSD": XBTUSD, "XBTUSDT": xbtusdt}
    events = [e for frame in _SESSION_2024_11_13 for e in bitmex.normalize(frame, catalog)]
    assert [(e.symbol, e.side, e.contracts) for e in events] == [
        ("XBTUSDT", "short", 39700),
        ("XBTUSD", "long", 891800),
    ]
    assert events[0].quantity == pytest.approx(0.0397)
    assert events[0].size_usd == pytest.approx(0.0397 * 87785.3)
    assert events[1].size_usd == 891800.0


# The same 2024-11-13 session: orders whose leavesQty GROWS on update, each time with a new
# price (BitMEX adds a further liquidation of the position to the resting order), beside ones
# that only shrink as they fill or only move. Verbatim frames, in the session's order.
_GROWING_2024_11_13 = [
    b'{"table":"liquidation","action":"insert","data":[{"orderID":"e42d57c2-977f-4535-8428-608a379cebdf","symbol":"XBTUSD","side":"Buy","price":88635.6,"leavesQty":12900}]}',
    b'{"table":"liquidation","action":"insert","data":[{"orderID":"a8a1118f-fafe-4d58-9530-064952019f58","symbol":"XBTUSDT","side":"Buy","price":88502.3,"leavesQty":150000}]}',
    b'{"table":"liquidation","action":"update","data":[{"orderID":"e42d57c2-977f-4535-8428-608a379cebdf","symbol":"XBTUSD","price":88753.4,"leavesQty":21600}]}',
    b'{"table":"liquidation","action":"update","data":[{"orderID":"a8a1118f-fafe-4d58-9530-064952019f58","symbol":"XBTUSDT","price":88637.0,"leavesQty":150000}]}',
    b'{"table":"liquidation","action":"delete","data":[{"orderID":"e42d57c2-977f-4535-8428-608a379cebdf","symbol":"XBTUSD"}]}',
    b'{"table":"liquidation","action":"delete","data":[{"orderID":"a8a1118f-fafe-4d58-9530-064952019f58","symbol":"XBTUSDT"}]}',
    b'{"table":"liquidation","action":"insert","data":[{"orderID":"8c808f22-254c-49d9-b24a-a99329b9f6d4","symbol":"XBTUSD","side":"Buy","price":88303.7,"leavesQty":50900}]}',
    b'{"table":"liquidation","action":"update","data":[{"orderID":"8c808f22-254c-49d9-b24a-a99329b9f6d4","symbol":"XBTUSD","leavesQty":50700}]}',
    b'{"table":"liquidation","action":"update","data":[{"orderID":"8c808f22-254c-49d9-b24a-a99329b9f6d4","symbol":"XBTUSD","leavesQty":50500}]}',
    b'{"table":"liquidation","action":"delete","data":[{"orderID":"8c808f22-254c-49d9-b24a-a99329b9f6d4","symbol":"XBTUSD"}]}',
    b'{"table":"liquidation","action":"insert","data":[{"orderID":"92603dfa-3181-4e73-aefa-99e539307996","symbol":"XBTUSD","side":"Sell","price":90300.8,"leavesQty":900}]}',
    b'{"table":"liquidation","action":"update","data":[{"orderID":"92603dfa-3181-4e73-aefa-99e539307996","symbol":"XBTUSD","price":90214.5,"leavesQty":1400}]}',
    b'{"table":"liquidation","action":"delete","data":[{"orderID":"92603dfa-3181-4e73-aefa-99e539307996","symbol":"XBTUSD"}]}',
]


def test_an_update_that_grows_an_order_is_the_liquidation_it_adds() -> None:
    xbtusdt = Instrument(exchange="bitmex", symbol="XBTUSDT", kind="linear", contract_size=1e-6)
    catalog = {"XBTUSD": XBTUSD, "XBTUSDT": xbtusdt}
    events = [e for frame in _GROWING_2024_11_13 for e in bitmex.normalize(frame, catalog)]
    assert [(e.symbol, e.side, e.contracts, e.price, e.size_usd) for e in events] == [
        ("XBTUSD", "short", 12900, 88635.6, 12900.0),
        ("XBTUSDT", "short", 150000, 88502.3, pytest.approx(0.15 * 88502.3)),
        ("XBTUSD", "short", 8700, 88753.4, 8700.0),  # 12,900 -> 21,600 at the new price
        ("XBTUSD", "short", 50900, 88303.7, 50900.0),  # then only fills: nothing more
        ("XBTUSD", "long", 900, 90300.8, 900.0),
        ("XBTUSD", "long", 500, 90214.5, 500.0),  # 900 -> 1,400
    ]
    assert events[2].id == "bitmex:e42d57c2-977f-4535-8428-608a379cebdf:12900-21600"
    assert events[2].quantity == pytest.approx(8700 / 88753.4)
    assert not events[2].replay
    # 13,800 USD of XBTUSD liquidations counted once each, where inserts alone gave 64,700.
    assert sum(e.size_usd or 0 for e in events if e.symbol == "XBTUSD") == 73900.0


def test_the_book_forgets_its_oldest_orders_past_its_limit() -> None:
    book = bitmex.normalizer.LiquidationBook(limit=2)
    for order in ("a", "b", "c"):
        book(_frame("insert", orderID=order))
    assert book(_frame("update", orderID="a", leavesQty=9000)) == []  # forgotten
    [grown] = book(_frame("update", orderID="c", leavesQty=9000))
    assert grown.contracts == 7000


def test_frames_of_other_tables_yield_nothing() -> None:
    # Frames recorded 2021-07-22 on the same socket (bmoscon/cryptofeed sample_data/BITMEX.ws.1.0):
    # their rows have no orderID, which failed as an unexpected shape before the table was read.
    frames = [
        b'{"table":"trade","action":"insert","data":[{"timestamp":"2021-07-22T22:36:10.014Z",'
        b'"symbol":"UNIUSDT","side":"Buy","size":52,"price":17.297,"tickDirection":"PlusTick",'
        b'"trdMatchID":"39744121-c20e-44ba-8cc8-a6b8cdf72885","grossValue":899444,'
        b'"homeNotional":16.73101673101673,"foreignNotional":289.39639639639637}]}',
        b'{"table":"quote","action":"insert","data":[{"timestamp":"2021-07-22T22:36:10.886Z",'
        b'"symbol":"XRPU21","bidSize":859,"bidPrice":0.00001814,"askPrice":0.00001819,'
        b'"askSize":1703}]}',
        b'{"table":"orderBookL2","action":"update","data":[{"symbol":"UNIUSDT",'
        b'"id":51999982703,"side":"Sell","size":123}]}',
    ]
    for frame in frames:
        assert bitmex.normalizer.LiquidationBook()(frame) == []
