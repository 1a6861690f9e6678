"""Gate public_liquidates: signed contract sizes, both result shapes, unknown multipliers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from purpleflea.model import Instrument
from purpleflea.venues import FrameError, gate, registry
from purpleflea.venues.gate import catalog, connection

CATALOG = {
    "BTC_USDT": Instrument(exchange="gate", symbol="BTC_USDT", kind="linear", contract_size=0.0001)
}


def _live(**overrides: object) -> bytes:
    result: dict[str, object] = {
        "contract": "BTC_USDT",
        "price": "60000",
        "time": 1_718_000_000_000,
        "size": -150,
    }
    result.update(overrides)
    frame = {"time": 1, "channel": "futures.public_liquidates", "event": "update"}
    return json.dumps({**frame, "result": result}).encode()


def test_negative_size_is_a_long_liquidated_positive_a_short() -> None:
    # LOW confidence: Gate does not document the sign (see the module docstring).
    [long] = gate.normalize(_live(size=-150), CATALOG)
    [short] = gate.normalize(_live(size=150), CATALOG)
    assert (long.side, short.side) == ("long", "short")
    assert long.contracts == -150  # the raw signed count


def test_contracts_times_multiplier_are_coins() -> None:
    [event] = gate.normalize(_live(size=-150), CATALOG)
    assert event.quantity == pytest.approx(0.015)
    assert event.size_usd == pytest.approx(900.0)


def test_unknown_multiplier_leaves_sizes_unknown() -> None:
    [event] = gate.normalize(_live(contract="HEI_USDT"), CATALOG)
    assert (event.quantity, event.size_usd) == (None, None)


def test_documented_array_shape_with_time_ms_is_read() -> None:
    item = {"price": 215.1, "size": -124, "time_ms": 1_730_187_749_000, "contract": "BTC_USDT"}
    frame = {"channel": "futures.public_liquidates", "event": "update", "result": [item, item]}
    events = gate.normalize(json.dumps(frame).encode(), CATALOG)
    assert [e.ts for e in events] == [1_730_187_749_000] * 2


def test_zero_size_and_control_frames_yield_nothing() -> None:
    assert gate.normalize(_live(size=0)) == []
    ack = (
        b'{"time":1,"channel":"futures.public_liquidates","event":"subscribe",'
        b'"result":{"status":"success"}}'
    )
    assert gate.normalize(ack) == []
    assert gate.normalize(b'{"time":1,"channel":"futures.pong","event":"","result":null}') == []


def test_malformed_results_raise_frame_error() -> None:
    with pytest.raises(FrameError, match=r"^gate frame: result has neither time nor time_ms"):
        gate.normalize(
            b'{"channel":"futures.public_liquidates","event":"update",'
            b'"result":{"contract":"BTC_USDT","price":"1","size":1}}'
        )
    with pytest.raises(FrameError, match=r"result\.contract is not a futures contract: 'BTC'"):
        gate.normalize(_live(contract="BTC"))


def test_identical_rows_of_one_push_are_two_liquidations() -> None:
    # Since 2026-08-20 a push carries every liquidation of a contract in its 1 s aggregation
    # period (Gate's changelog); two orders alike in size, price and millisecond are two rows.
    item = {"contract": "BTC_USDT", "price": "60000", "time": 1_718_000_000_000, "size": -150}
    frame = {"channel": "futures.public_liquidates", "event": "update", "result": [item, item]}
    first, second = gate.normalize(json.dumps(frame).encode(), CATALOG)
    assert first.id == gate.normalize(_live(), CATALOG)[0].id
    assert second.id == f"{first.id}#2"
    assert first.size_usd == second.size_usd == pytest.approx(900.0)


def test_usd1_settled_perpetuals_are_subscribed_and_sized() -> None:
    # Gate's futures WebSocket changelog of 2026-08-19: USD1-settled perpetuals (contract
    # example BTC_USD1) on their own URL; REST futures/usd1/contracts lists them (nine on
    # 2026-09-15 in a public probe: BTC_USD1, ETH_USD1, SOL_USD1, XAU_USD1, ...).
    urls = {c.name: c.url for c in connection.connections({})}
    assert urls["gate_usd1"] == "wss://fx-ws.gateio.ws/v4/ws/usd1"
    listed = [source.url for source in catalog.SOURCES]
    assert "https://api.gateio.ws/api/v4/futures/usd1/contracts?limit=100" in listed
    body = b'[{"name":"BTC_USD1","type":"direct","quanto_multiplier":"0.0001"}]'
    usd1 = {i.symbol: i for i in catalog.parse(body)}
    [event] = gate.normalize(_live(contract="BTC_USD1", size=-150), usd1)
    assert (event.market, event.side) == ("BTC-PERP", "long")
    assert event.size_usd == pytest.approx(900.0)  # USD1 counts as USD, as USDT does


def test_every_liquidation_is_pushed_since_the_aggregated_channel() -> None:
    # Gate futures WS changelog, 2026-08-20 (docs zh_CN; quoted in a public changelog diff of
    # 2026-08-21): public_liquidates "调整为聚合推送 ... 不再丢弃周期内的其他强平订单" (now pushes
    # a contract's liquidations of each 1 s period as one array, no longer dropping the others
    # of the period); the "at most one per contract per second" sentence was removed.
    assert registry.coverage_of("gate") == "complete"


def test_btc_settled_quantos_take_btcs_price_from_the_btc_usd_ticker() -> None:
    # The gate_btc socket's liveness ticker is BTC_USD's, whose mark_price moves with BTC:
    # a BTC-settled quanto (ETH_USD, BTC per contract per USD of price) is sized at BTC's price
    # of the moment, not at the hourly catalog fetch's.
    shared = Path(__file__).parent / "frames"
    by_name = {c.name: c for c in connection.connections({})}
    learn = by_name["gate_btc"].contracts
    assert learn is not None
    assert by_name["gate_usdt"].contracts is None
    assert by_name["gate_usd1"].contracts is None
    body = (
        b'[{"name":"BTC_USD","type":"inverse","quanto_multiplier":"0","mark_price":"60000"},'
        b'{"name":"ETH_USD","type":"direct","quanto_multiplier":"0.000001","mark_price":"3000"}]'
    )
    rows = {i.symbol: i for i in catalog.parse_btc_settled(body)}
    pushed = learn((shared / "gate__other_channel_tickers_object.json").read_bytes(), rows)
    assert pushed is not None
    assert [(r.symbol, r.kind, r.settle_usd) for r in pushed] == [("ETH_USD", "quanto", 41031.2)]
    # Another contract's ticker (BTC_USDT) moves no BTC-settled price; other frames are none.
    assert learn((shared / "gate__other_channel_tickers.json").read_bytes(), rows) == []
    assert learn(_live(), rows) is None
