"""Binance USD-M / COIN-M forceOrder frames: side, price, units, control frames, errors."""

from __future__ import annotations

import json
import re

import pytest

from purpleflea.model import Instrument
from purpleflea.venues import FrameError, binance
from purpleflea.venues.binance import normalizer


def _order(**overrides: object) -> dict[str, object]:
    order: dict[str, object] = {
        "s": "BTCUSDT",
        "S": "SELL",
        "o": "LIMIT",
        "f": "IOC",
        "q": "0.5",
        "p": "60000",
        "ap": "60100.5",
        "X": "FILLED",
        "l": "0.5",
        "z": "0.5",
        "T": 1_700_000_000_123,
    }
    order.update(overrides)
    return order


def _raw(**overrides: object) -> bytes:
    return json.dumps(
        {"e": "forceOrder", "E": 1_700_000_000_125, "o": _order(**overrides)}
    ).encode()


def _combined(**overrides: object) -> bytes:
    payload = {"e": "forceOrder", "E": 1_700_000_000_125, "o": _order(**overrides)}
    return json.dumps({"stream": "!forceOrder@arr", "data": payload}).encode()


def test_sell_order_liquidates_a_long_at_the_average_fill_price() -> None:
    [event] = binance.normalize_usdm(_raw())
    assert event.side == "long"
    assert event.price == 60100.5  # ap, not the IOC limit price p
    assert event.quantity == 0.5
    assert event.size_usd == pytest.approx(30050.25)
    assert event.ts == 1_700_000_000_123  # trade time T, not event time E
    assert event.market == "BTC-PERP"


def test_buy_order_liquidates_a_short() -> None:
    [event] = binance.normalize_usdm(_raw(S="BUY"))
    assert event.side == "short"


def test_combined_stream_wrapper_is_unwrapped() -> None:
    assert binance.normalize_usdm(_combined()) == binance.normalize_usdm(_raw())


def test_control_and_foreign_frames_yield_nothing() -> None:
    assert binance.normalize_usdm(b'{"result":null,"id":1}') == []
    assert binance.normalize_usdm(b'{"code":2,"msg":"Invalid request"}') == []
    assert binance.normalize_usdm(b'{"e":"markPriceUpdate","E":1,"s":"BTCUSDT"}') == []


def test_partially_filled_order_is_a_liquidation_and_unfilled_is_not() -> None:
    [event] = binance.normalize_usdm(_raw(X="PARTIALLY_FILLED", z="0.2", l="0.2"))
    assert event.quantity == 0.2
    assert binance.normalize_usdm(_raw(X="EXPIRED", z="0", l="0")) == []


def test_thousand_multiplier_symbols_are_scaled_to_real_coins() -> None:
    [event] = binance.normalize_usdm(_raw(s="1000PEPEUSDT", ap="0.0123", z="1000000"))
    assert event.symbol == "1000PEPEUSDT"
    assert event.market == "PEPE-PERP"
    assert event.price == pytest.approx(0.0000123)
    assert event.quantity == pytest.approx(1e9)
    assert event.size_usd == pytest.approx(12300.0)


def test_dated_usdm_contract_gets_a_dated_market() -> None:
    [event] = binance.normalize_usdm(_raw(s="BTCUSDT_250328"))
    assert event.market == "BTC-20250328"


def test_non_usd_quote_keeps_coins_but_not_dollars() -> None:
    [event] = binance.normalize_usdm(_raw(s="ETHBTC", ap="0.05", z="10"))
    assert event.quantity == 10
    assert event.size_usd is None


def test_coinm_contracts_are_converted_with_the_contract_size() -> None:
    [btc] = binance.normalize_coinm(_raw(s="BTCUSD_PERP", z="3", ap="50000"))
    assert btc.size_usd == 300.0  # BTC contracts are 100 USD
    assert btc.quantity == pytest.approx(300 / 50000)
    assert btc.contracts == 3
    assert btc.market == "BTC-PERP"
    [eth] = binance.normalize_coinm(_raw(s="ETHUSD_PERP", z="3", ap="2000"))
    assert eth.size_usd == 30.0  # every other coin: 10 USD


def test_coinm_catalog_contract_size_wins_over_the_fixed_rule() -> None:
    catalog = {
        "ETHUSD_PERP": Instrument(
            exchange="binance_coinm", symbol="ETHUSD_PERP", kind="inverse", contract_size=20.0
        )
    }
    [event] = binance.normalize_coinm(_raw(s="ETHUSD_PERP", z="3", ap="2000"), catalog)
    assert event.size_usd == 60.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"S": "HOLD"}, "o.S is not BUY/SELL: 'HOLD'"),
        ({"ap": "abc"}, "o.ap is not a number: 'abc'"),
        ({"ap": "0"}, "o.ap must be > 0"),
        ({"z": "-1"}, "o.z must be >= 0"),
        ({"z": "NaN"}, "o.z is not finite"),
        ({"T": 12}, "o.T is not a plausible ms timestamp"),
        ({"s": 5}, "Expected `str`, got `int` - at `$.o.s`"),
    ],
)
def test_malformed_orders_raise_frame_error_naming_the_field(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(FrameError, match="binance_usdm frame") as caught:
        binance.normalize_usdm(_raw(**overrides))
    assert message in str(caught.value)
    assert caught.value.exchange == "binance_usdm"


def test_missing_order_body_is_a_frame_error() -> None:
    with pytest.raises(FrameError, match="without 'o'"):
        binance.normalize_usdm(b'{"e":"forceOrder","E":1}')


def test_ids_are_stable_and_distinguish_events() -> None:
    first = binance.normalize_usdm(_raw())[0].id
    assert binance.normalize_usdm(_combined())[0].id == first
    assert binance.normalize_usdm(_raw(T=1_700_000_000_124))[0].id != first
    assert binance.normalize_coinm(_raw())[0].id != first


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"S": "BUY"},
        {"s": "1000PEPEUSDT", "ap": "0.0123", "z": "1000"},
        {"s": "ETHUSDC"},
        {"s": "BTCUSDT_250926"},
        {"s": "ETHBTC", "ap": "0.05"},
        {"X": "EXPIRED", "z": "0.2"},
        {"z": "0"},
        {"ap": "nan"},
        {"ap": "1e999"},
        {"z": " 1.5"},
        {"T": "1700000000123"},
        {"T": 1700000000123.0},
        {"T": 1700000000123.5},
        {"S": "HOLD"},
        {"T": 5},
    ],
)
def test_the_fast_path_agrees_with_the_checked_path(overrides: dict[str, object]) -> None:
    # normalize_usdm validates while decoding and falls back to the field-by-field path for
    # anything it rejects; both must give the same events, or raise the same error.
    for frame in (_raw(**overrides), _combined(**overrides)):
        try:
            expected = normalizer._normalize_usdm_checked(frame)
        except FrameError as error:
            with pytest.raises(FrameError, match=re.escape(str(error.reason))):
                binance.normalize_usdm(frame)
            continue
        assert binance.normalize_usdm(frame) == expected
