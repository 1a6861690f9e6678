"""dYdX v4 trades: only LIQUIDATED trades, taker side is the liquidation order."""

from __future__ import annotations

import json

import pytest

from purpleflea.venues import FrameError, dydx


def _trade(**overrides: object) -> dict[str, object]:
    trade: dict[str, object] = {
        "id": "t-1",
        "size": "0.5",
        "price": "3000",
        "side": "SELL",
        "createdAt": "2024-06-10T08:00:01.250Z",
        "type": "LIQUIDATED",
    }
    trade.update(overrides)
    return trade


def _frame(*trades: dict[str, object], kind: str = "channel_data") -> bytes:
    message = {"type": kind, "channel": "v4_trades", "id": "ETH-USD"}
    message["contents"] = {"trades": list(trades)}  # type: ignore[assignment]
    return json.dumps(message).encode()


def test_liquidated_sell_is_a_long_liquidated() -> None:
    [event] = dydx.normalize(_frame(_trade()))
    assert event.side == "long"
    assert event.market == "ETH-PERP"
    assert event.size_usd == 1500.0
    assert event.ts == 1_718_006_401_250
    assert event.id == "dydx_v4:t-1"
    assert not event.replay


def test_only_liquidated_trades_count() -> None:
    assert dydx.normalize(_frame(_trade(type="DELEVERAGED"))) == []  # ADL, not a liquidation
    assert dydx.normalize(_frame(_trade(type="LIMIT"))) == []


def test_subscribed_history_is_replayed() -> None:
    [event] = dydx.normalize(_frame(_trade(side="BUY"), kind="subscribed"))
    assert (event.side, event.replay) == ("short", True)


def test_batched_contents_are_read() -> None:
    contents = [{"trades": [_trade(id="a")]}, {"trades": [_trade(id="b")]}]
    message = {"type": "channel_batch_data", "channel": "v4_trades", "id": "ETH-USD"}
    frame = json.dumps({**message, "contents": contents}).encode()
    assert [e.trade_id for e in dydx.normalize(frame)] == ["a", "b"]


def test_control_frames_yield_nothing() -> None:
    assert dydx.normalize(b'{"type":"connected","connection_id":"c","message_id":0}') == []
    assert dydx.normalize(b'{"type":"unsubscribed","channel":"v4_trades","id":"ETH-USD"}') == []
    assert dydx.normalize(b'{"type":"error","message":"Invalid subscribe message"}') == []


def test_malformed_trades_raise_frame_error_naming_the_field() -> None:
    with pytest.raises(FrameError, match=r"^dydx_v4 frame: contents\.trades\[0\]\.createdAt"):
        dydx.normalize(_frame(_trade(createdAt="yesterday")))
    with pytest.raises(FrameError, match="has no time zone"):
        dydx.normalize(_frame(_trade(createdAt="2024-06-10T08:00:01")))
    with pytest.raises(FrameError, match=r"side is not BUY/SELL: 'HOLD'"):
        dydx.normalize(_frame(_trade(side="HOLD")))
