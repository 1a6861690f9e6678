"""OKX liquidation-orders: posSide vs order side, contracts in coins and USD, every detail."""

from __future__ import annotations

import json

import pytest

from purpleflea.model import Instrument
from purpleflea.venues import FrameError, okx
from purpleflea.venues.okx import connection as okx_connection

CATALOG = {
    "BTC-USDT-SWAP": Instrument(
        exchange="okx", symbol="BTC-USDT-SWAP", kind="linear", contract_size=0.01
    ),
    "BTC-USD-SWAP": Instrument(
        exchange="okx", symbol="BTC-USD-SWAP", kind="inverse", contract_size=100.0
    ),
}


def _detail(**overrides: object) -> dict[str, object]:
    detail: dict[str, object] = {
        "bkLoss": "0",
        "bkPx": "60000",
        "ccy": "",
        "posSide": "net",
        "side": "sell",
        "sz": "5",
        "ts": "1718000000000",
    }
    detail.update(overrides)
    return detail


def _push(*details: dict[str, object], inst_id: str = "BTC-USDT-SWAP", kind: str = "SWAP") -> bytes:
    item = {"details": list(details), "instId": inst_id, "instType": kind}
    return json.dumps(
        {"arg": {"channel": "liquidation-orders", "instType": kind}, "data": [item]}
    ).encode()


def test_net_mode_side_is_inferred_from_the_order_side() -> None:
    [sold] = okx.normalize(_push(_detail(side="sell")), CATALOG)
    [bought] = okx.normalize(_push(_detail(side="buy")), CATALOG)
    assert (sold.side, bought.side) == ("long", "short")


def test_hedge_mode_position_side_wins_over_the_order_side() -> None:
    [event] = okx.normalize(_push(_detail(posSide="short", side="sell")), CATALOG)
    assert event.side == "short"


def test_linear_contracts_are_coins_at_the_bankruptcy_price() -> None:
    [event] = okx.normalize(_push(_detail(sz="5", bkPx="60000")), CATALOG)
    assert event.price == 60000.0  # bkPx: the only price OKX gives
    assert event.quantity == pytest.approx(0.05)  # 5 x 0.01 BTC
    assert event.size_usd == pytest.approx(3000.0)
    assert event.contracts == 5
    assert event.market == "BTC-PERP"
    assert event.ts == 1_718_000_000_000


def test_inverse_contracts_are_usd() -> None:
    [event] = okx.normalize(_push(_detail(sz="25"), inst_id="BTC-USD-SWAP"), CATALOG)
    assert event.size_usd == 2500.0  # 25 x 100 USD
    assert event.quantity == pytest.approx(2500 / 60000)


def test_unknown_contract_size_is_never_guessed() -> None:
    [event] = okx.normalize(_push(_detail(sz="7"), inst_id="SOL-USDT-SWAP"), CATALOG)
    assert (event.quantity, event.size_usd, event.contracts) == (None, None, 7)


def test_every_detail_is_an_event() -> None:
    events = okx.normalize(_push(_detail(ts="1718000000001"), _detail(ts="1718000000002")), CATALOG)
    assert [e.ts for e in events] == [1_718_000_000_001, 1_718_000_000_002]
    assert len({e.id for e in events}) == 2


def test_dated_futures_get_a_dated_market_and_margin_is_skipped() -> None:
    [future] = okx.normalize(_push(_detail(), inst_id="BTC-USD-241227", kind="FUTURES"))
    assert future.market == "BTC-20241227"
    assert okx.normalize(_push(_detail(), inst_id="BTC-USDT", kind="MARGIN")) == []


def test_control_frames_yield_nothing() -> None:
    assert okx.normalize(b"pong") == []
    ack = b'{"event":"subscribe","arg":{"channel":"liquidation-orders","instType":"SWAP"}}'
    assert okx.normalize(ack) == []
    assert okx.normalize(b'{"event":"error","code":"60012","msg":"Invalid request"}') == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sz": "abc"}, "data[0].details[0].sz is not a number: 'abc'"),
        ({"bkPx": "0"}, "data[0].details[0].bkPx must be > 0"),
        ({"posSide": "net", "side": "hold"}, "no side in posSide='net' / side='hold'"),
        ({"ts": "yesterday"}, "data[0].details[0].ts is not an integer timestamp"),
    ],
)
def test_malformed_details_raise_frame_error_naming_the_field(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(FrameError, match=r"^okx frame: ") as caught:
        okx.normalize(_push(_detail(**overrides)), CATALOG)
    assert message in str(caught.value)


def test_identical_details_of_one_push_are_two_liquidations() -> None:
    first, second = okx.normalize(_push(_detail(), _detail()), CATALOG)
    assert first.id == okx.normalize(_push(_detail()), CATALOG)[0].id
    assert second.id == f"{first.id}#2"


def test_the_public_connection_uses_the_default_tls_port() -> None:
    # OKX stopped accepting WebSocket connections on port 8443 on 2026-10-31; a public
    # capture of 2026-10-07 (liquidation-orders pushes included) used this address.
    (found,) = okx_connection.connections({})
    assert found.url == "wss://ws.okx.com/ws/v5/public"
