"""HTX liquidation_orders: gzip frames, order side, linear and coin-margined contracts."""

from __future__ import annotations

import gzip
import json

import pytest

from purpleflea.model import Instrument
from purpleflea.venues import FrameError, htx

CATALOG = {
    "BTC-USDT": Instrument(exchange="htx", symbol="BTC-USDT", kind="linear", contract_size=0.001),
    "ETH-USD": Instrument(exchange="htx", symbol="ETH-USD", kind="inverse", contract_size=10.0),
}


def _plain(**overrides: object) -> bytes:
    item: dict[str, object] = {
        "contract_code": "BTC-USDT",
        "direction": "sell",
        "offset": "close",
        "volume": 200,
        "price": 50000,
        "created_at": 1_718_000_000_000,
    }
    item.update(overrides)
    topic = f"public.{item['contract_code']}.liquidation_orders"
    return json.dumps({"op": "notify", "topic": topic, "ts": 1, "data": [item]}).encode()


def test_gzip_and_plain_frames_give_the_same_events() -> None:
    assert htx.normalize(gzip.compress(_plain()), CATALOG) == htx.normalize(_plain(), CATALOG)


def test_sell_order_is_a_long_liquidated_in_linear_contracts() -> None:
    [event] = htx.normalize(gzip.compress(_plain()), CATALOG)
    assert event.side == "long"
    assert event.quantity == pytest.approx(0.2)  # 200 x 0.001 BTC
    assert event.size_usd == pytest.approx(10_000.0)


def test_coin_margined_contracts_are_usd() -> None:
    frame = _plain(contract_code="ETH-USD", direction="buy", volume=231, price=229.95)
    [event] = htx.normalize(frame, CATALOG)
    assert (event.side, event.market, event.size_usd) == ("short", "ETH-PERP", 2310.0)
    assert event.quantity == pytest.approx(2310 / 229.95)


def test_without_catalog_the_exchange_conversions_are_used_if_present() -> None:
    [reported] = htx.normalize(_plain(amount=0.2, trade_turnover=10_000.5))
    assert (reported.quantity, reported.size_usd) == (0.2, 10_000.5)
    [unknown] = htx.normalize(_plain())
    assert (unknown.quantity, unknown.size_usd, unknown.contracts) == (None, None, 200)


def test_delivery_contract_codes_are_dated() -> None:
    assert htx.market("BTC210326") == ("BTC-20210326", 1.0)
    assert htx.market("BTC-USDT-211231") == ("BTC-20211231", 1.0)


def test_control_frames_yield_nothing() -> None:
    assert htx.normalize(gzip.compress(b'{"op":"ping","ts":1718000000000}')) == []
    sub = b'{"op":"sub","cid":"1","topic":"public.*.liquidation_orders","ts":1,"err-code":0}'
    assert htx.normalize(sub) == []


def test_corrupt_and_malformed_frames_raise_frame_error() -> None:
    with pytest.raises(FrameError, match=r"^htx frame: corrupt gzip frame"):
        htx.normalize(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(FrameError, match=r"data\[0\]\.direction is not buy/sell: 'up'"):
        htx.normalize(_plain(direction="up"))
