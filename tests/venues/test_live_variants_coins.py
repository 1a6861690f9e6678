"""What coin- and USD-sized feeds send that the fixtures do not: busy frames of many
liquidations (mixed sides and symbols, unit-bundled symbols such as ``1000000MOGUSDT`` and
``kPEPE``, coin-margined and dated contracts, options, spreads and spot on the same channel),
one venue at a time: Bybit, Binance, Deribit, dYdX, Bitget, Hyperliquid.

Each frame is built from the venue's documented shape (cited beside it) with the fields its
real frames carry. Contract-sized feeds: tests/venues/test_live_variants_contracts.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from purpleflea.venues import binance, bitget, bybit, deribit, dydx
from purpleflea.venues.hyperliquid import normalizer as hyperliquid
from tests.venues.live_rows import rows

# --- Bybit --------------------------------------------------------------------------------
# bybit-exchange/docs docs/v5/websocket/public/all-liquidation.mdx: ``data`` an array of
# {T, s, S (position side: Buy = long liquidated), v, p}, one topic per symbol but "all
# liquidations" of it in 500 ms; the linear and inverse endpoints carry perpetuals and
# dated futures alike.


def _bybit_push(*rows: tuple[str, str, str, str]) -> str:
    data = [
        {"T": 1739502302929 + i, "s": s, "S": side, "v": v, "p": p}
        for i, (s, side, v, p) in enumerate(rows)
    ]
    return json.dumps(
        {"topic": "allLiquidation.X", "type": "snapshot", "ts": 1739502303204, "data": data}
    )


def test_bybit_busy_push_of_bundled_inverse_and_dated_contracts() -> None:
    push = _bybit_push(
        ("ROSEUSDT", "Sell", "20000", "0.04499"),
        ("1000000MOGUSDT", "Buy", "3", "0.0015"),  # one unit is a million MOG
        ("10000000AIDOGEUSDT", "Buy", "2", "0.5"),
        ("SHIB1000USDT", "Sell", "100", "0.012"),  # Bybit's trailing bundle: 1,000 SHIB
        ("1000PEPEPERP", "Buy", "50", "0.01"),  # USDC perpetual
        ("BTCUSD", "Sell", "5000", "62500"),  # inverse: v in USD
        ("ETHUSDH25", "Buy", "300", "3000"),  # inverse future, March 2025
        ("BTCUSDT-28MAR25", "Buy", "0.5", "80000"),  # USDT future
        ("BTC-28MAR25", "Sell", "0.25", "80000"),  # USDC future
    )
    assert rows(bybit.normalize(push)) == [
        ("ROSEUSDT", "ROSE-PERP", "short", 20000.0, 899.8),
        ("1000000MOGUSDT", "MOG-PERP", "long", 3e6, 0.0045),
        ("10000000AIDOGEUSDT", "AIDOGE-PERP", "long", 2e7, 1.0),
        ("SHIB1000USDT", "SHIB-PERP", "short", 100000.0, 1.2),
        ("1000PEPEPERP", "PEPE-PERP", "long", 50000.0, 0.5),
        ("BTCUSD", "BTC-PERP", "short", 0.08, 5000.0),
        ("ETHUSDH25", "ETH-20250328", "long", 0.1, 300.0),
        ("BTCUSDT-28MAR25", "BTC-20250328", "long", 0.5, 40000.0),
        ("BTC-28MAR25", "BTC-20250328", "short", 0.25, 20000.0),
    ]


# --- Binance ------------------------------------------------------------------------------
# developers.binance.com/docs/derivatives/{usds,coin}-margined-futures/websocket-market-streams/
# All-Market-Liquidation-Order-Streams: ``!forceOrder@arr`` pushes one forceOrder object per
# message (not an array, whatever the name says), COIN-M's example symbol a dated
# ``BTCUSD_200925``; quarterly contracts share the stream with the perpetuals.


def _force_order(symbol: str, side: str, filled: str, price: str) -> str:
    order = {
        "s": symbol,
        "S": side,
        "o": "LIMIT",
        "f": "IOC",
        "q": filled,
        "p": price,
        "ap": price,
        "X": "FILLED",
        "l": filled,
        "z": filled,
        "T": 1591154240949,
    }
    return json.dumps({"e": "forceOrder", "E": 1591154240950, "o": order})


@pytest.mark.parametrize(
    ("symbol", "row"),
    [
        ("1000000MOGUSDT", ("1000000MOGUSDT", "MOG-PERP", "long", 4e6, 8.0)),
        ("1MBABYDOGEUSDT", ("1MBABYDOGEUSDT", "BABYDOGE-PERP", "long", 4e6, 8.0)),
        ("BTCUSDT_250328", ("BTCUSDT_250328", "BTC-20250328", "long", 4.0, 8.0)),
    ],
)
def test_binance_usdm_bundles_and_quarterlies_on_the_all_market_stream(
    symbol: str, row: tuple[Any, ...]
) -> None:
    assert rows(binance.normalize_usdm(_force_order(symbol, "SELL", "4", "2"))) == [row]


def test_binance_coinm_contracts_the_catalog_lacks_are_sized_by_the_documented_rule() -> None:
    # COIN-M contractSize: 100 USD for BTC, 10 USD for every other coin (EXCHANGES.md,
    # Binance COIN-M), perpetual and quarterly alike.
    frames = [
        _force_order("BTCUSD_PERP", "BUY", "3", "60000"),
        _force_order("BTCUSD_200925", "SELL", "1", "9496.5"),
        _force_order("SOLUSD_PERP", "SELL", "12", "150"),
    ]
    assert [rows(binance.normalize_coinm(f))[0] for f in frames] == [
        ("BTCUSD_PERP", "BTC-PERP", "short", 0.005, 300.0),
        ("BTCUSD_200925", "BTC-20200925", "long", round(100 / 9496.5, 9), 100.0),
        ("SOLUSD_PERP", "SOL-PERP", "long", 0.8, 120.0),
    ]


# --- Deribit ------------------------------------------------------------------------------
# docs.deribit.com ``trades.{kind}.{currency}.{interval}``: trades of every future of the
# kind, ``liquidation`` "M"/"T"/"MT" on liquidation trades only.


def test_deribit_kind_channel_push_of_mixed_instruments() -> None:
    def trade(tid: str, name: str, direction: str, amount: float, price: float, **flag: str):
        return {
            "trade_seq": 1,
            "trade_id": tid,
            "timestamp": 1789000000000,
            "tick_direction": 0,
            "price": price,
            "mark_price": price,
            "instrument_name": name,
            "index_price": price,
            "direction": direction,
            "amount": amount,
            **flag,
        }

    trades = [
        trade("1", "BTC-PERPETUAL", "sell", 10000.0, 62500.0, liquidation="T"),
        trade("2", "ETH-27JUN25", "buy", 300.0, 3000.0, liquidation="M"),
        trade("3", "SOL_USDC-PERPETUAL", "sell", 12.0, 150.0, liquidation="MT"),
        trade("4", "BTC-PERPETUAL", "buy", 500.0, 62500.0),  # an ordinary trade
        trade("5", "BTC-FS-27JUN25_PERP", "buy", 500.0, 100.0, liquidation="T"),  # a spread
    ]
    frame = json.dumps(
        {
            "jsonrpc": "2.0",
            "method": "subscription",
            "params": {"channel": "trades.future.any.100ms", "data": trades},
        }
    )
    assert rows(deribit.normalize(frame)) == [
        ("BTC-PERPETUAL", "BTC-PERP", "long", 0.16, 10000.0),
        ("ETH-27JUN25", "ETH-20250627", "long", 0.1, 300.0),  # the maker sold: a long
        ("SOL_USDC-PERPETUAL", "SOL-PERP", "long", 12.0, 1800.0),
        ("SOL_USDC-PERPETUAL", "SOL-PERP", "short", 12.0, 1800.0),
    ]


# --- dYdX v4 ------------------------------------------------------------------------------
# dydxprotocol v4-chain indexer socks ``v4_trades``: ``channel_batch_data`` carries a list of
# ``contents``, trades typed LIMIT/MARKET/LIQUIDATED/DELEVERAGED.


def test_dydx_batched_push_reads_only_liquidated_trades() -> None:
    def trade(tid: str, side: str, size: str, kind: str) -> dict[str, str]:
        return {
            "id": tid,
            "size": size,
            "price": "3000",
            "side": side,
            "type": kind,
            "createdAt": "2026-09-17T10:00:00.123Z",
            "createdAtHeight": "1",
        }

    frame = json.dumps(
        {
            "type": "channel_batch_data",
            "connection_id": "c",
            "message_id": 9,
            "id": "ETH-USD",
            "channel": "v4_trades",
            "version": "2.1.0",
            "contents": [
                {
                    "trades": [
                        trade("t1", "SELL", "2", "LIQUIDATED"),
                        trade("t2", "BUY", "1", "LIMIT"),
                    ]
                },
                {
                    "trades": [
                        trade("t3", "BUY", "0.5", "LIQUIDATED"),
                        trade("t4", "SELL", "9", "DELEVERAGED"),
                    ]
                },
            ],
        }
    )
    events = dydx.normalize(frame)
    assert rows(events) == [
        ("ETH-USD", "ETH-PERP", "long", 2.0, 6000.0),
        ("ETH-USD", "ETH-PERP", "short", 0.5, 1500.0),
    ]
    assert [e.ts for e in events] == [1789639200123, 1789639200123]  # 2026-09-17T10:00:00.123Z


# --- Bitget -------------------------------------------------------------------------------
# bitget.com/api-doc/uta/websocket/public/Liquidation-Channel: one push carries rows of many
# symbols, ``side`` the position side (buy = long), ``amount`` in the quote coin.


def test_bitget_push_of_many_symbols_and_product_types() -> None:
    def row(symbol: str, side: str, price: str, amount: str) -> dict[str, str]:
        return {
            "symbol": symbol,
            "side": side,
            "price": price,
            "amount": amount,
            "ts": "1777358886549",
        }

    frame = json.dumps(
        {
            "arg": {"instType": "usdt-futures", "topic": "liquidation"},
            "action": "update",
            "ts": 1777358897167,
            "data": [
                row("APEUSDT", "buy", "0.1649", "13.70319"),
                row("1000BONKUSDT", "sell", "0.02", "50"),
                row("BTCPERP", "sell", "60000", "6000"),
                row("ETHUSD_251226", "buy", "3000", "900"),
            ],
        }
    )
    assert rows(bitget.normalize(frame)) == [
        ("APEUSDT", "APE-PERP", "long", round(13.70319 / 0.1649, 9), 13.70319),
        ("1000BONKUSDT", "BONK-PERP", "short", 2500000.0, 50.0),
        ("BTCPERP", "BTC-PERP", "short", 0.1, 6000.0),
        ("ETHUSD_251226", "ETH-20251226", "long", 0.3, 900.0),
    ]


# --- Hyperliquid --------------------------------------------------------------------------
# hyperliquid-dex docs, websocket subscriptions ``userFills``: ``WsUserFills`` {user,
# isSnapshot, fills}; a fill of a liquidation carries ``liquidation`` {liquidatedUser?,
# markPx, method}; spot fills name the coin ``@<index>`` or ``PURR/USDC``.


def test_hyperliquid_user_fills_of_bundled_builder_and_spot_coins() -> None:
    def fill(coin: str, tid: int, side: str, px: str, sz: str, liquidated: bool = True) -> dict:
        return {
            "coin": coin,
            "px": px,
            "sz": sz,
            "side": side,
            "time": 1789000000000,
            "startPosition": "0",
            "dir": "Close Long",
            "closedPnl": "0",
            "hash": "0xab",
            "oid": tid,
            "crossed": True,
            "fee": "0",
            "tid": tid,
            "feeToken": "USDC",
            **(
                {"liquidation": {"liquidatedUser": "0xAA", "markPx": px, "method": "market"}}
                if liquidated
                else {}
            ),
        }

    frame = json.dumps(
        {
            "channel": "userFills",
            "data": {
                "user": "0xaa",
                "isSnapshot": False,
                "fills": [
                    fill("kPEPE", 1, "A", "0.0123", "1000"),
                    fill("xyz:XYZ100", 2, "B", "25", "4"),
                    fill("@107", 3, "A", "30", "1"),
                    fill("BTC", 4, "A", "60000", "1", False),
                ],
            },
        }
    )
    assert rows(hyperliquid.normalize_user_fills(frame)) == [
        ("kPEPE", "PEPE-PERP", "long", 1e6, 12.3),  # 1,000 PEPE per unit
        ("xyz:XYZ100", "XYZ100-PERP", "short", 4.0, 100.0),
    ]
