"""One unreadable row of a busy push costs that row, not the push.

A push carries many liquidations: OKX's ``data`` of every swap, Bybit's 500 ms of a symbol,
Gate's 1 s of a contract, HTX's ``*`` topic, Bitget's rows of every symbol, Deribit's trades
of every future in 100 ms, dYdX's batches, Kraken's snapshot, BitMEX's inserts, Hyperliquid's
blocks. A value a normalizer cannot read in one row (an empty price, a side it does not know)
used to raise for the whole frame and drop the good rows with it. Now the normalizer raises
:class:`PartialFrame`, a FrameError naming the skipped rows and carrying the others' events;
the connection counts the frame as malformed and delivers them
(tests/ingest/test_partial_frames.py covers the connection's side).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable

import pytest

from purpleflea.model import VenueLiquidation
from purpleflea.venues import FrameError, bitget, bybit, deribit, dydx, gate, htx, kraken, okx
from purpleflea.venues._frame import PartialFrame
from purpleflea.venues.bitmex.normalizer import LiquidationBook
from purpleflea.venues.hyperliquid import normalizer as hyperliquid

MS = 1_789_000_000_000


def _okx() -> str:
    def detail(px: str, side: str) -> dict[str, str]:
        return {"bkPx": px, "posSide": "net", "side": side, "sz": "3", "ts": str(MS)}

    items = [
        {
            "instId": "BTC-USD-SWAP",
            "instType": "SWAP",
            "details": [detail("60000", "sell"), detail("", "buy")],
        },
        {"instId": "ETH-USD-SWAP", "instType": "SWAP", "details": [detail("3000", "buy")]},
    ]
    return json.dumps({"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": items})


def _bybit() -> str:
    rows = [
        {"T": MS, "s": "BTCUSDT", "S": side, "v": "0.1", "p": "60000"}
        for side in ("Buy", "Short", "Sell")
    ]
    return json.dumps({"topic": "allLiquidation.BTCUSDT", "type": "snapshot", "data": rows})


def _gate() -> str:
    rows = [
        {"contract": "BTC_USDT", "price": price, "size": "-3", "time": MS + i}
        for i, price in enumerate(("60000", "", "60010"))
    ]
    return json.dumps({"channel": "futures.public_liquidates", "event": "update", "result": rows})


def _htx() -> bytes:
    rows = [
        {
            "contract_code": "BTC-USDT",
            "direction": direction,
            "volume": 5,
            "price": 60000,
            "created_at": MS,
            "amount": 0.005,
            "trade_turnover": 300,
        }
        for direction in ("sell", "both", "buy")
    ]
    push = {"op": "notify", "topic": "public.*.liquidation_orders", "data": rows}
    return gzip.compress(json.dumps(push).encode())


def _bitget() -> str:
    rows = [
        {"symbol": symbol, "side": "buy", "price": "60000", "amount": "600", "ts": str(MS)}
        for symbol in ("BTCUSDT", "", "ETHUSDT")
    ]
    return json.dumps(
        {
            "arg": {"instType": "usdt-futures", "topic": "liquidation"},
            "action": "update",
            "data": rows,
        }
    )


def _deribit() -> str:
    trades = [
        {
            "trade_id": str(i),
            "instrument_name": "BTC-PERPETUAL",
            "direction": "sell",
            "price": 60000.0,
            "amount": 100.0,
            "timestamp": MS,
            "liquidation": flag,
        }
        for i, flag in enumerate(("T", "X", "M"))
    ]
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "method": "subscription",
            "params": {"channel": "trades.future.any.100ms", "data": trades},
        }
    )


def _dydx() -> str:
    def trade(tid: str, side: str) -> dict[str, str]:
        return {
            "id": tid,
            "size": "1",
            "price": "3000",
            "side": side,
            "type": "LIQUIDATED",
            "createdAt": "2026-09-10T00:00:00.000Z",
        }

    return json.dumps(
        {
            "type": "channel_batch_data",
            "id": "ETH-USD",
            "channel": "v4_trades",
            "contents": [
                {"trades": [trade("a", "SELL"), trade("b", "")]},
                {"trades": [trade("c", "BUY")]},
            ],
        }
    )


def _kraken() -> str:
    def trade(uid: str, side: str) -> dict[str, object]:
        return {
            "product_id": "PF_XBTUSD",
            "uid": uid,
            "side": side,
            "type": "liquidation",
            "time": MS,
            "qty": 0.5,
            "price": 60000.0,
        }

    return json.dumps(
        {
            "feed": "trade_snapshot",
            "product_id": "PF_XBTUSD",
            "trades": [trade("a", "sell"), trade("b", "?"), trade("c", "buy")],
        }
    )


def _bitmex() -> str:
    rows = [
        {"orderID": "a", "symbol": "XBTUSD", "side": "Sell", "price": 60000, "leavesQty": 100},
        {"orderID": "b", "symbol": "XBTUSD", "side": "Sell", "leavesQty": 100},  # no price
        {"orderID": "c", "symbol": "XBTUSD", "side": "Buy", "price": 60100, "leavesQty": 200},
    ]
    return json.dumps({"table": "liquidation", "action": "insert", "data": rows})


def _hyperliquid_block() -> str:
    def fill(tid: int, side: str) -> dict[str, object]:
        return {
            "coin": "BTC",
            "px": "60000",
            "sz": "0.1",
            "side": side,
            "time": MS,
            "hash": "0x1",
            "tid": tid,
            "liquidation": {"liquidatedUser": "0xa", "markPx": "60000", "method": "market"},
        }

    return json.dumps(
        {
            "block_time": "2026-09-10T00:00:00.000",
            "events": [["0xa", fill(1, "A")], ["0xa", fill(2, "Z")], ["0xa", fill(3, "B")]],
        }
    )


def _bitmex_normalize(frame: str | bytes) -> list[VenueLiquidation]:
    return LiquidationBook()(frame)


CASES: dict[str, tuple[Callable[[str | bytes], list[VenueLiquidation]], str | bytes, int, str]] = {
    # venue: (normalizer, frame, events of the good rows, what the skipped row's reason says)
    "okx": (okx.normalize, _okx(), 2, "data[0].details[1].bkPx"),
    "bybit": (bybit.normalize, _bybit(), 2, "'Short'"),
    "gate": (gate.normalize, _gate(), 2, "result[1].price"),
    "htx": (htx.normalize, _htx(), 2, "data[1].direction"),
    "bitget": (bitget.normalize, _bitget(), 2, "data[1].symbol"),
    "deribit": (deribit.normalize, _deribit(), 2, "'X'"),
    "dydx_v4": (dydx.normalize, _dydx(), 2, "contents[0].trades[1].side"),
    "kraken_futures": (kraken.normalize, _kraken(), 2, "trades[1].side"),
    "bitmex": (_bitmex_normalize, _bitmex(), 2, "data[1]"),
    "hyperliquid": (hyperliquid.normalize_node_fills, _hyperliquid_block(), 2, "events[1].side"),
}


@pytest.mark.parametrize("venue", sorted(CASES))
def test_a_bad_row_costs_only_itself(venue: str) -> None:
    normalize, frame, good, reason = CASES[venue]
    with pytest.raises(PartialFrame) as raised:
        normalize(frame)
    assert len(raised.value.events) == good
    assert "1 of 3 rows skipped" in raised.value.reason
    assert reason in raised.value.reason
    assert isinstance(raised.value, FrameError)  # counted as malformed like any bad frame


def test_the_good_rows_are_the_events_they_would_be_alone() -> None:
    with pytest.raises(PartialFrame) as raised:
        okx.normalize(_okx())
    assert [(e.symbol, e.side, e.size_usd) for e in raised.value.events] == [
        ("BTC-USD-SWAP", "long", 300.0),
        ("ETH-USD-SWAP", "short", 30.0),
    ]


def test_a_frame_whose_every_row_is_bad_is_a_plain_frame_error() -> None:
    frame = json.dumps(
        {
            "channel": "futures.public_liquidates",
            "event": "update",
            "result": [{"contract": "BTC_USDT", "price": "", "size": "-3", "time": MS}] * 2,
        }
    )
    with pytest.raises(FrameError, match=r"2 of 2 rows skipped: result\[0\].price") as raised:
        gate.normalize(frame)
    assert not isinstance(raised.value, PartialFrame)


def test_a_bitmex_update_row_that_raises_leaves_its_resting_order_as_it_was() -> None:
    # LiquidationBook._row: "a row that raises is neither an event nor remembered". An update
    # with a bad price was remembered before its event raised: the order kept price 0, and
    # every later update of it (no price: the remembered one) raised too, its growth lost.
    def frame(action: str, *rows: dict[str, object]) -> str:
        return json.dumps({"table": "liquidation", "action": action, "data": list(rows)})

    book = LiquidationBook()
    order = {"orderID": "o", "symbol": "XBTUSD", "side": "Sell"}
    (first,) = book(frame("insert", {**order, "price": 60000, "leavesQty": 100}))
    assert first.contracts == 100
    with pytest.raises(FrameError, match=r"data\[0\].price must be > 0"):
        book(frame("update", {"orderID": "o", "price": 0, "leavesQty": 150}))
    (grown,) = book(frame("update", {"orderID": "o", "leavesQty": 180}))
    assert (grown.contracts, grown.price) == (80, 60000.0)
    # A shrink (a partial fill) with a bad price is refused too, not remembered.
    with pytest.raises(FrameError, match=r"data\[0\].price must be > 0"):
        book(frame("update", {"orderID": "o", "price": 0, "leavesQty": 120}))
    (again,) = book(frame("update", {"orderID": "o", "leavesQty": 200}))
    assert (again.contracts, again.price) == (20, 60000.0)
