"""Bybit allLiquidation and legacy liquidation: position side, linear vs inverse sizes."""

from __future__ import annotations

import json

import pytest

from purpleflea.model import Instrument
from purpleflea.sim import universe
from purpleflea.venues import FrameError, bybit
from purpleflea.venues.bybit import open_interest


def _all(**overrides: object) -> bytes:
    item: dict[str, object] = {
        "T": 1_718_000_000_000,
        "s": "BTCUSDT",
        "S": "Buy",
        "v": "0.5",
        "p": "60000",
    }
    item.update(overrides)
    topic = f"allLiquidation.{item['s']}"
    return json.dumps({"topic": topic, "type": "snapshot", "ts": 1, "data": [item]}).encode()


def test_buy_is_the_long_position_at_the_bankruptcy_price() -> None:
    [event] = bybit.normalize(_all())
    assert event.side == "long"  # position side: Buy = a long was liquidated
    assert (event.price, event.quantity, event.size_usd) == (60000.0, 0.5, 30000.0)
    assert event.market == "BTC-PERP"


def test_a_time_sent_as_a_numeric_string_is_read_as_the_same_event() -> None:
    # Bybit documents T (updatedTime, legacy) as a number, as its frames send it; a client of
    # its v5 API (rs_bybit, AllLiquidationData) reads T through a string-to-u64 helper, so a
    # string is not out of the question. It was a frame error: a whole push lost on a type.
    [as_number] = bybit.normalize(_all())
    [as_text] = bybit.normalize(_all(T="1718000000000"))
    assert as_text == as_number
    legacy = {"updatedTime": "1673251091822", "symbol": "GALAUSDT", "side": "Buy"}
    legacy |= {"size": "1637", "price": "0.03803"}
    frame = json.dumps({"topic": "liquidation.GALAUSDT", "data": legacy}).encode()
    [event] = bybit.normalize(frame)
    assert event.ts == 1_673_251_091_822
    with pytest.raises(FrameError, match="time is not an integer timestamp: '17e11'"):
        bybit.normalize(_all(T="17e11"))


def test_inverse_size_is_usd() -> None:
    [event] = bybit.normalize(_all(s="BTCUSD", S="Sell", v="6000"))
    assert (event.side, event.size_usd) == ("short", 6000.0)
    assert event.quantity == pytest.approx(0.1)


def test_catalog_kind_wins_over_the_symbol_shape() -> None:
    odd = Instrument(exchange="bybit", symbol="BTCUSD", kind="linear", contract_size=1.0)
    [event] = bybit.normalize(_all(s="BTCUSD", v="2"), {"BTCUSD": odd})
    assert event.quantity == 2.0


def test_legacy_topic_with_an_object_payload() -> None:
    data = {
        "updatedTime": 1_673_251_091_822,
        "symbol": "GALAUSDT",
        "side": "Buy",
        "size": "1637",
        "price": "0.03803",
    }
    frame = json.dumps({"topic": "liquidation.GALAUSDT", "data": data}).encode()
    [event] = bybit.normalize(frame)
    assert (event.side, event.ts, event.market) == ("long", 1_673_251_091_822, "GALA-PERP")


def test_legacy_object_without_its_size_or_time_is_a_frame_error() -> None:
    # v5 spells them size/updatedTime, v2 qty/time (tests/venues/frames/bybit__v2_*): neither
    # is an error naming both spellings, not an event without a time.
    data = {"symbol": "ETHUSD", "side": "Sell", "price": "3410.55", "qty": "2500"}
    frame = json.dumps({"topic": "liquidation.ETHUSD", "data": data}).encode()
    with pytest.raises(FrameError, match="no size/qty or updatedTime/time"):
        bybit.normalize(frame)


@pytest.mark.parametrize(
    ("symbol", "market", "kind"),
    [
        ("BTCPERP", "BTC-PERP", "linear"),
        ("BTC-27DEC24", "BTC-20241227", "linear"),
        ("BTCUSDZ24", "BTC-20241227", "inverse"),
        ("1000PEPEUSDT", "PEPE-PERP", "linear"),
        ("SHIB1000USDT", "SHIB-PERP", "linear"),
        ("SHIB1000PERP", "SHIB-PERP", "linear"),  # USDC-settled, listed beside BTCPERP
        ("10000000AIDOGEUSDT", "AIDOGE-PERP", "linear"),
    ],
)
def test_symbol_shapes(symbol: str, market: str, kind: str) -> None:
    name, found_kind = bybit.market(symbol)
    assert (name.name, found_kind) == (market, kind)


def test_trailing_bundle_is_scaled_to_real_coins_like_a_leading_one() -> None:
    # Bybit lists SHIB as SHIB1000USDT (1,000 SHIB per unit; Binance: 1000SHIBUSDT). The
    # symbol is Bybit's own, seen in public code that trades it (e.g. pybit kline requests).
    [event] = bybit.normalize(_all(s="SHIB1000USDT", v="20000", p="0.01234"))
    assert (event.symbol, event.market) == ("SHIB1000USDT", "SHIB-PERP")
    assert event.price == pytest.approx(0.00001234)  # per SHIB
    assert event.quantity == pytest.approx(20_000_000)
    assert event.size_usd == pytest.approx(246.8)


def test_every_simulated_bybit_symbol_names_its_market() -> None:
    listed = [
        (listing.symbol, market.name)
        for market in universe()
        for listing in market.listings
        if listing.exchange == "bybit"
    ]
    assert ("SHIB1000USDT", "SHIB-PERP") in listed
    assert [(s, bybit.market(s)[0].name) for s, _ in listed] == listed


def test_control_frames_yield_nothing() -> None:
    assert bybit.normalize(b'{"success":true,"ret_msg":"","conn_id":"c","op":"subscribe"}') == []
    assert bybit.normalize(b'{"success":true,"ret_msg":"pong","conn_id":"c","op":"ping"}') == []


def test_malformed_items_raise_frame_error() -> None:
    with pytest.raises(FrameError, match=r"^bybit frame: side is not Buy/Sell: 'Long'"):
        bybit.normalize(_all(S="Long"))
    with pytest.raises(FrameError, match="price must be > 0"):
        bybit.normalize(_all(p="0"))


def test_identical_rows_of_one_push_are_two_liquidations() -> None:
    # allLiquidation sends every liquidation of 500 ms in one push; two positions of the same
    # size closed at the same bankruptcy price in the same millisecond are two rows alike.
    item = {"T": 1_718_000_000_000, "s": "BTCUSDT", "S": "Buy", "v": "0.5", "p": "60000"}
    frame = {"topic": "allLiquidation.BTCUSDT", "type": "snapshot", "ts": 1, "data": [item, item]}
    first, second = bybit.normalize(json.dumps(frame).encode())
    assert first.id == bybit.normalize(_all())[0].id  # a lone row's id, unchanged
    assert second.id == f"{first.id}#2"
    assert first.size_usd == second.size_usd == 30000.0


def test_bundled_open_interest_and_mark_are_in_real_coins_like_their_liquidations() -> None:
    # Its heatmap reads every listing of PEPE-PERP in PEPE: a mark per 1,000 PEPE beside
    # OKX's per-PEPE mark would put one exchange's positions 1,000 times higher.
    tickers = [
        {"symbol": "1000PEPEUSDT", "markPrice": "0.0123", "singleOpenInterest": "2000000"},
        {"symbol": "SHIB1000USDT", "markPrice": "0.0125", "singleOpenInterest": "300"},
        {"symbol": "BTCUSDT", "markPrice": "100000", "singleOpenInterest": "10"},
    ]
    body = json.dumps({"retCode": 0, "result": {"list": tickers}}).encode()
    readings = {r.symbol: r for r in open_interest.parse(body, {})}
    pepe, shib, btc = readings["1000PEPEUSDT"], readings["SHIB1000USDT"], readings["BTCUSDT"]
    assert (pepe.mark_price, pepe.open_interest) == (pytest.approx(0.0000123), 2e9)
    assert pepe.mark_price * pepe.open_interest == pytest.approx(0.0123 * 2_000_000)  # USD kept
    assert (shib.mark_price, shib.open_interest) == (pytest.approx(0.0000125), 300_000)
    assert (btc.mark_price, btc.open_interest) == (100000.0, 10.0)
    [liquidation] = bybit.normalize(_all(s="1000PEPEUSDT", v="1000", p="0.0123"))
    assert liquidation.price == pytest.approx(pepe.mark_price)  # the same unit


def _linear_catalog(count: int) -> dict[str, Instrument]:
    """``count`` linear symbols of 10 characters, Bybit's usual length (``SUSHIUSDT``,
    ``1000PEPEUSDT``)."""
    symbols = [f"C{i:05d}USDT" for i in range(count)]
    return {
        s: Instrument(exchange="bybit", symbol=s, kind="linear", contract_size=1.0) for s in symbols
    }


def _topics(connection: object) -> list[str]:
    from purpleflea.venues.venue import Connection

    assert isinstance(connection, Connection)
    subscribe = connection.subscribe
    messages = subscribe if isinstance(subscribe, tuple) else subscribe()
    return [topic for m in messages for topic in json.loads(m)["args"]]


def test_a_full_linear_catalog_is_spread_so_no_connection_holds_over_21000_characters() -> None:
    """Bybit: "for one public connection, you cannot have length of "args" array over 21,000
    characters" (docs/v5/websocket/wss-authentication.mdx; the zh-TW page: the args' lengths
    summed, for a single connection). 1,000 linear symbols (805 were listed on 2026-09-18, a
    third-party live count) are 25,000 characters of topics: before, all went on one
    connection, 200 a message, and the subscribes past 21,000 would be refused."""
    from purpleflea.venues.bybit.connection import connections

    specs = connections(_linear_catalog(1000))
    linear = [spec for spec in specs if spec.name.startswith("bybit_linear")]
    assert [spec.name for spec in linear] == ["bybit_linear", "bybit_linear#2"]
    seen: list[str] = []
    for spec in linear:
        topics = _topics(spec)
        assert sum(len(topic) + 3 for topic in topics) <= 21_000  # quoted, with a comma
        seen += topics
    assert sorted(seen) == [f"allLiquidation.C{i:05d}USDT" for i in range(1000)]
    assert linear[0].data_timeout == linear[1].data_timeout == 3600.0  # each half a market
