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
    assert bitmex.normalize(_frame("update", leavesQty=500)) == []
    assert bitmex.normalize(_frame("delete")) == []


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
