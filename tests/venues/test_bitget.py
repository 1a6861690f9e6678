"""Bitget UTA liquidation topic: position side, amounts in the quote coin."""

from __future__ import annotations

import json

import pytest

from purpleflea.venues import FrameError, bitget


def _push(action: str = "update", **overrides: object) -> bytes:
    item: dict[str, object] = {
        "symbol": "BTCUSDT",
        "side": "buy",
        "price": "50000",
        "amount": "1000",
        "ts": "1718000000000",
    }
    item.update(overrides)
    arg = {"instType": "usdt-futures", "topic": "liquidation"}
    return json.dumps({"action": action, "arg": arg, "data": [item], "ts": 1}).encode()


def test_buy_is_the_long_position_and_amount_is_usd() -> None:
    [event] = bitget.normalize(_push())
    assert event.side == "long"  # position side, not order side
    assert event.size_usd == 1000.0  # quote coin
    assert event.quantity == pytest.approx(0.02)
    assert event.market == "BTC-PERP"
    assert event.ts == 1_718_000_000_000


def test_sell_is_a_short_and_coin_futures_are_usd_quoted() -> None:
    [event] = bitget.normalize(_push(side="sell", symbol="ETHUSD", price="2000", amount="300"))
    assert (event.side, event.market, event.size_usd) == ("short", "ETH-PERP", 300.0)


def test_snapshot_push_is_a_replay() -> None:
    [event] = bitget.normalize(_push("snapshot"))
    assert event.replay


def test_control_frames_yield_nothing() -> None:
    assert bitget.normalize(b"pong") == []
    ack = b'{"event":"subscribe","arg":{"instType":"usdt-futures","topic":"liquidation"}}'
    assert bitget.normalize(ack) == []
    assert bitget.normalize(b'{"event":"error","code":30001,"msg":"topic not exist"}') == []


def test_malformed_items_raise_frame_error() -> None:
    with pytest.raises(FrameError, match=r"^bitget frame: data\[0\]\.amount is not a number"):
        bitget.normalize(_push(amount="lots"))
    with pytest.raises(FrameError, match=r"data\[0\]\.side is not buy/sell: 'long'"):
        bitget.normalize(_push(side="long"))


def test_identical_rows_of_one_push_are_two_liquidations() -> None:
    # The push aggregates many liquidations (Bitget's docs); two alike are two rows.
    item = json.loads(_push())["data"][0]
    frame = {**json.loads(_push()), "data": [item, item]}
    first, second = bitget.normalize(json.dumps(frame).encode())
    assert first.id == bitget.normalize(_push())[0].id
    assert second.id == f"{first.id}#2"


def test_a_coin_futures_delivery_contract_is_a_dated_market() -> None:
    # Bitget writes a delivery contract PAIR_YYMMDD: its v2 futures ticker docs' example
    # (api-doc/contract/market/Get-Ticker) lists "ETHUSD_231229" with deliveryTime
    # 1703836799000 (2023-12-29) and deliveryStatus delivery_normal.
    [event] = bitget.normalize(_push(symbol="ETHUSD_231229", price="1829.3", amount="1829.3"))
    assert event.market == "ETH-20231229"
    assert (event.quantity, event.size_usd) == (pytest.approx(1.0), 1829.3)
    assert event.symbol == "ETHUSD_231229"
    # The classic month-coded spelling (ETHUSDH23) is dated too, as before.
    assert bitget.market("ETHUSDH23").name == "ETH-20230331"
