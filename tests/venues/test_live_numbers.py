"""Numbers and times as live frames really write them, on every venue's liquidation feed.

Sizes come as decimal strings (Binance, Bybit, OKX, Bitget, dYdX, Hyperliquid, Gate under
``X-Gate-Size-Decimal``), as JSON numbers (Deribit, Kraken, HTX, BitMEX) or either: an
exponent (``"1e-5"``, which Python and JavaScript clients print for small floats), an integer
where a float is usual, ``"0"`` (an order that filled nothing), ``""`` (a field a venue leaves
empty where it does not apply, OKX's ``bkPx`` for MARGIN) and decimals longer than a double
holds. Times are epoch milliseconds everywhere we read them; a time in seconds, microseconds or
nanoseconds is a different message, not a liquidation of 1970 or of the year 50,000, and is
refused with a FrameError naming the field (the connection counts it as malformed).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from typing import NamedTuple

import pytest

from purpleflea.model import Catalog, VenueLiquidation
from purpleflea.venues import (
    FrameError,
    binance,
    bitget,
    bybit,
    deribit,
    dydx,
    gate,
    htx,
    kraken,
    okx,
)
from purpleflea.venues.hyperliquid import normalizer as hyperliquid
from tests.venues.live_rows import inverse, linear

MS = 1_789_000_000_123  # 2026-09-10, ms


class Feed(NamedTuple):
    """One venue's liquidation frame with a chosen size and time, and how to read it."""

    #: (size as sent, time as sent) -> the frame.
    frame: Callable[[object, object], str | bytes]
    normalize: Callable[[str | bytes], list[VenueLiquidation]]
    #: Coins per unit of the size field (1: the size is in coins).
    coins_per_unit: float
    #: The field's name as errors name it.
    size_field: str
    time_field: str


def _binance(size: object, ts: object) -> str:
    # developers.binance.com .../websocket-market-streams/Liquidation-Order-Streams
    order = {
        "s": "BTCUSDT",
        "S": "SELL",
        "o": "LIMIT",
        "f": "IOC",
        "q": size,
        "p": "60000",
        "ap": "60000",
        "X": "FILLED",
        "l": size,
        "z": size,
        "T": ts,
    }
    return json.dumps({"e": "forceOrder", "E": MS, "o": order})


def _bybit(size: object, ts: object) -> str:
    # bybit-exchange/docs docs/v5/websocket/public/all-liquidation.mdx
    row = {"T": ts, "s": "BTCUSDT", "S": "Buy", "v": size, "p": "60000"}
    return json.dumps(
        {"topic": "allLiquidation.BTCUSDT", "type": "snapshot", "ts": MS, "data": [row]}
    )


def _okx(size: object, ts: object) -> str:
    # okx.com/docs-v5/en/#public-data-websocket-liquidation-orders-channel
    detail = {
        "bkLoss": "0",
        "bkPx": "60000",
        "ccy": "",
        "posSide": "net",
        "side": "sell",
        "sz": size,
        "ts": ts,
    }
    item = {"details": [detail], "instId": "BTC-USD-SWAP", "instType": "SWAP"}
    return json.dumps(
        {"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": [item]}
    )


def _gate(size: object, ts: object) -> str:
    # Gate futures WS v4 futures.public_liquidates (2026-08-20 shape)
    item = {"contract": "BTC_USDT", "price": "60000", "size": size, "time": ts}
    return json.dumps(
        {"channel": "futures.public_liquidates", "event": "update", "time": 1, "result": [item]}
    )


def _htx(size: object, ts: object) -> bytes:
    # HTX "[General] Subscribe Liquidation Orders": volume and price are decimals
    item = {
        "symbol": "BTC",
        "contract_code": "BTC-USDT",
        "direction": "sell",
        "offset": "close",
        "volume": size,
        "price": 60000,
        "created_at": ts,
    }
    push = {"op": "notify", "topic": "public.BTC-USDT.liquidation_orders", "ts": MS, "data": [item]}
    return gzip.compress(json.dumps(push).encode())


def _bitget(size: object, ts: object) -> str:
    # bitget.com/api-doc/uta/websocket/public/Liquidation-Channel: strings throughout
    row = {"symbol": "BTCUSDT", "side": "buy", "price": "60000", "amount": size, "ts": ts}
    return json.dumps(
        {
            "arg": {"instType": "usdt-futures", "topic": "liquidation"},
            "action": "update",
            "data": [row],
            "ts": MS,
        }
    )


def _deribit(size: object, ts: object) -> str:
    # docs.deribit.com trades.{instrument}.{interval}: amount and timestamp are JSON numbers
    trade = {
        "trade_id": "1",
        "instrument_name": "BTC_USDC-PERPETUAL",
        "direction": "sell",
        "price": 60000.0,
        "amount": size,
        "timestamp": ts,
        "liquidation": "T",
    }
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "method": "subscription",
            "params": {"channel": "trades.future.any.100ms", "data": [trade]},
        }
    )


def _kraken(size: object, ts: object) -> str:
    # docs.kraken.com futures websocket trade feed: qty, price and time are JSON numbers
    return json.dumps(
        {
            "feed": "trade",
            "product_id": "PF_XBTUSD",
            "uid": "u",
            "side": "sell",
            "type": "liquidation",
            "seq": 1,
            "time": ts,
            "qty": size,
            "price": 60000.0,
        }
    )


def _hyperliquid(size: object, ts: object) -> str:
    # Hyperliquid websocket userFills: px and sz strings, time ms
    fill = {
        "coin": "BTC",
        "px": "60000",
        "sz": size,
        "side": "A",
        "time": ts,
        "hash": "0x1",
        "tid": 1,
        "dir": "Close Long",
        "liquidation": {"liquidatedUser": "0xa", "markPx": "60000", "method": "market"},
    }
    return json.dumps({"channel": "userFills", "data": {"user": "0xa", "fills": [fill]}})


CATALOG: Catalog = {
    "BTC-USD-SWAP": inverse("okx", "BTC-USD-SWAP", 100.0),
    "BTC_USDT": linear("gate", "BTC_USDT", 0.0001),
    "BTC-USDT": linear("htx", "BTC-USDT", 0.001),
}

FEEDS = {
    "binance_usdm": Feed(_binance, binance.normalize_usdm, 1.0, "o.z", "o.T"),
    "bybit": Feed(_bybit, bybit.normalize, 1.0, "size", "time"),
    # 100 USD contracts of BTC at 60,000: 1/600 BTC each.
    "okx": Feed(_okx, lambda f: okx.normalize(f, CATALOG), 1 / 600, "sz", "ts"),
    "gate": Feed(_gate, lambda f: gate.normalize(f, CATALOG), 0.0001, "size", "time"),
    "htx": Feed(_htx, lambda f: htx.normalize(f, CATALOG), 0.001, "volume", "created_at"),
    # Bitget's amount is USD: 1/60,000 BTC each.
    "bitget": Feed(_bitget, bitget.normalize, 1 / 60000, "amount", "ts"),
    "deribit": Feed(_deribit, deribit.normalize, 1.0, "amount", "timestamp"),
    "kraken_futures": Feed(_kraken, kraken.normalize, 1.0, "qty", "time"),
    "hyperliquid": Feed(_hyperliquid, hyperliquid.normalize_user_fills, 1.0, "sz", "time"),
}
#: Venues whose size field is a decimal string (the rest send JSON numbers).
STRING_SIZES = ["binance_usdm", "bybit", "okx", "gate", "bitget", "hyperliquid"]
#: Venues whose time field is a string (the rest send JSON integers).
STRING_TIMES = {"okx", "bitget"}


def _ms(venue: str) -> object:
    return str(MS) if venue in STRING_TIMES else MS


@pytest.mark.parametrize("venue", STRING_SIZES)
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1e-3", 0.001),
        ("2.5E+2", 250.0),
        ("0.000123456789012345678901234567890123", 0.000123456789012345678901234567890123),
        ("12", 12.0),
    ],
)
def test_decimal_strings_with_exponents_and_long_fractions_are_read(
    venue: str, text: str, value: float
) -> None:
    feed = FEEDS[venue]
    [event] = feed.normalize(feed.frame(text, _ms(venue)))
    assert event.quantity == pytest.approx(value * feed.coins_per_unit, rel=1e-12)
    assert event.ts == MS


@pytest.mark.parametrize("venue", sorted(FEEDS))
def test_integers_and_floats_read_alike_where_a_venue_sends_numbers(venue: str) -> None:
    feed = FEEDS[venue]
    as_int = feed.normalize(feed.frame(12, _ms(venue)))
    as_float = feed.normalize(feed.frame(12.0, _ms(venue)))
    assert [e.quantity for e in as_int] == [e.quantity for e in as_float]
    assert as_int[0].quantity == pytest.approx(12 * feed.coins_per_unit)


@pytest.mark.parametrize("venue", sorted(FEEDS))
def test_a_zero_size_is_no_liquidation(venue: str) -> None:
    feed = FEEDS[venue]
    zero = "0" if venue in STRING_SIZES else 0
    assert feed.normalize(feed.frame(zero, _ms(venue))) == []


@pytest.mark.parametrize("venue", STRING_SIZES)
def test_an_empty_size_is_a_frame_error_naming_the_field(venue: str) -> None:
    feed = FEEDS[venue]
    with pytest.raises(FrameError, match=feed.size_field):
        feed.normalize(feed.frame("", _ms(venue)))


@pytest.mark.parametrize("venue", sorted(FEEDS))
@pytest.mark.parametrize("scale", [1e-3, 1e3, 1e6], ids=["seconds", "microseconds", "nanoseconds"])
def test_a_time_in_another_unit_than_ms_is_refused_naming_the_field(
    venue: str, scale: float
) -> None:
    feed = FEEDS[venue]
    ts = MS // 1000 if scale < 1 else MS * int(scale)
    sent = str(ts) if venue in STRING_TIMES else ts
    with pytest.raises(FrameError, match=feed.time_field):
        feed.normalize(feed.frame("1" if venue in STRING_SIZES else 1, sent))


def test_dydx_times_are_iso_8601_at_any_precision() -> None:
    # The v4 indexer writes createdAt with milliseconds; other precisions read alike, and a
    # time without a zone is refused (it would be local time).
    def frame(created_at: str) -> str:
        trade = {
            "id": "t",
            "size": "1",
            "price": "3000",
            "side": "SELL",
            "type": "LIQUIDATED",
            "createdAt": created_at,
            "createdAtHeight": "1",
        }
        return json.dumps(
            {
                "type": "channel_data",
                "id": "ETH-USD",
                "channel": "v4_trades",
                "contents": {"trades": [trade]},
            }
        )

    times = [
        "2026-09-10T00:00:00.123Z",
        "2026-09-10T00:00:00.123456Z",
        "2026-09-10T00:00:00.123+00:00",
    ]
    assert {dydx.normalize(frame(t))[0].ts for t in times} == {1788998400123}
    with pytest.raises(FrameError, match="createdAt"):
        dydx.normalize(frame("2026-09-10T00:00:00.123"))
