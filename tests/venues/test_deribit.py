"""Deribit liquidation trades: T/M/MT decide whose side was liquidated; amounts by kind."""

from __future__ import annotations

import json

import pytest

from purpleflea.venues import FrameError, deribit


def _frame(**overrides: object) -> bytes:
    trade: dict[str, object] = {
        "trade_id": "100",
        "instrument_name": "BTC-PERPETUAL",
        "direction": "sell",
        "price": 50000.0,
        "amount": 1000.0,
        "timestamp": 1_718_000_000_000,
        "liquidation": "T",
    }
    trade.update(overrides)
    params = {"channel": f"trades.{trade['instrument_name']}.100ms", "data": [trade]}
    return json.dumps({"jsonrpc": "2.0", "method": "subscription", "params": params}).encode()


@pytest.mark.parametrize(
    ("flag", "direction", "sides"),
    [
        ("T", "sell", ["long"]),  # the taker sold: its long was liquidated
        ("T", "buy", ["short"]),
        ("M", "buy", ["long"]),  # the maker sold into a taker buy
        ("M", "sell", ["short"]),
        ("MT", "buy", ["short", "long"]),  # both: taker first
        ("MT", "sell", ["long", "short"]),
    ],
)
def test_liquidation_flag_decides_the_side(flag: str, direction: str, sides: list[str]) -> None:
    events = deribit.normalize(_frame(liquidation=flag, direction=direction))
    assert [e.side for e in events] == sides


def test_mt_events_have_distinct_stable_ids() -> None:
    first = [e.id for e in deribit.normalize(_frame(liquidation="MT"))]
    assert first == ["deribit:100:long", "deribit:100:short"]
    assert first == [e.id for e in deribit.normalize(_frame(liquidation="MT"))]


def test_inverse_amount_is_usd_and_linear_amount_is_coins() -> None:
    [inverse] = deribit.normalize(_frame())
    assert inverse.size_usd == 1000.0
    assert inverse.quantity == pytest.approx(0.02)
    [linear] = deribit.normalize(_frame(instrument_name="ETH_USDC-PERPETUAL", amount=2.0))
    assert (linear.quantity, linear.size_usd) == (2.0, 100_000.0)
    assert linear.market == "ETH-PERP"


def test_dated_futures_are_read_and_options_skipped() -> None:
    [future] = deribit.normalize(_frame(instrument_name="BTC-27DEC24"))
    assert future.market == "BTC-20241227"
    assert deribit.normalize(_frame(instrument_name="BTC-27DEC24-60000-C")) == []


def test_dvol_futures_are_their_own_linear_market_never_btc() -> None:
    # Deribit's get_instruments answer recorded about 2025-04-28 (a public client's docstring):
    # BTCDVOL_USDC-30APR25 is kind future, instrument_type linear, base_currency BTCDVOL,
    # quote and settlement USDC, contract_size 0.1 = min_trade_amount, max_leverage 10 and a
    # max_liquidation_commission of 0.0075: it is liquidated, its amount counts index units and
    # a unit is worth its price (vol points) in USDC, as ETH_USDC-30APR25's ETH in the same
    # answer. So it is sized like any linear future, under a market of its own: never a BTC
    # market's price, heatmap or cascade.
    [event] = deribit.normalize(
        _frame(instrument_name="BTCDVOL_USDC-30APR25", price=52.3, amount=12.5)
    )
    assert event.market == "BTCDVOL-20250430"
    assert not event.market.startswith("BTC-")
    assert (event.quantity, event.size_usd) == (12.5, pytest.approx(12.5 * 52.3))


def test_ordinary_trades_and_control_frames_yield_nothing() -> None:
    assert deribit.normalize(_frame(liquidation=None)) == []
    heartbeat = b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}'
    assert deribit.normalize(heartbeat) == []
    ack = b'{"jsonrpc":"2.0","id":1,"result":["trades.BTC-PERPETUAL.100ms"]}'
    assert deribit.normalize(ack) == []


def test_live_control_frames_of_2026_09_23_yield_nothing() -> None:
    # Verbatim from a public Deribit probe write-up (captured 2026-09-23; found through the code
    # index, which does not name the repository): an ack, an empty ack for an unknown channel,
    # the server's test_request (answered with public/test), two errors, one without an id.
    frames = [
        b'{"jsonrpc":"2.0","id":3,"result":["book.ETH-PERPETUAL.100ms",'
        b'"book.BTC_USDC-PERPETUAL.none.20.100ms","book.BTC_USDC-PERPETUAL.100ms"],'
        b'"usIn":1790133840888348,"usOut":1790133840889867,"usDiff":1519,"testnet":false}',
        b'{"jsonrpc":"2.0","id":4,"result":[],"usIn":1790133842384561,"usOut":1790133842384654,'
        b'"usDiff":93,"testnet":false}',
        b'{"params":{"type":"test_request"},"method":"heartbeat","jsonrpc":"2.0"}',
        b'{"jsonrpc":"2.0","id":5,"error":{"code":13778,'
        b'"message":"raw_subscriptions_not_available_for_unauthorized"},'
        b'"usIn":1790133842785065,"usOut":1790133842785140,"usDiff":75,"testnet":false}',
        b'{"jsonrpc":"2.0","error":{"code":11050,"data":"invalid json","message":"bad_request"},'
        b'"usIn":1790133844787014,"usOut":1790133844787041,"usDiff":27,"testnet":false}',
    ]
    for frame in frames:
        assert deribit.normalize(frame) == []
    assert deribit.connection.answer(frames[2]) == (
        '{"jsonrpc":"2.0","id":9,"method":"public/test","params":{}}'
    )


def test_unknown_flags_and_directions_raise_frame_error() -> None:
    with pytest.raises(FrameError, match=r"^deribit frame: liquidation is not T/M/MT: 'X'"):
        deribit.normalize(_frame(liquidation="X"))
    with pytest.raises(FrameError, match="direction is not buy/sell: 'up'"):
        deribit.normalize(_frame(direction="up"))
    with pytest.raises(FrameError, match=r"data\[0\]\.amount must be >= 0"):
        deribit.normalize(_frame(amount=-5))


def test_one_kind_channel_carries_every_future_perpetual_and_dated() -> None:
    # docs.deribit.com, trades.{kind}.{currency}.{interval}: kind future, currency any. Per
    # perpetual channels never carried a dated future's liquidations (BTC-27DEC24).
    catalog = {"BTC-PERPETUAL": object(), "BTC-27DEC24": object()}
    (found,) = deribit.connection.connections(catalog)  # type: ignore[arg-type]
    assert isinstance(found.subscribe, tuple)  # the same on every connect: no catalog needed
    subscribe = json.loads(found.subscribe[1])
    assert subscribe["params"]["channels"] == ["trades.future.any.100ms"]
