"""What contract-sized feeds send that the fixtures do not: busy frames of many liquidations
(mixed sides and symbols, dated futures and other instrument types on one channel) and
contracts the instrument catalog lacks (a coin listed yesterday), one venue at a time: OKX,
Gate, HTX, BitMEX, Kraken Futures.

Each frame is built from the venue's documented shape (cited beside it) with the fields its
real frames carry; the fixtures in shared/ hold one or two liquidations each. A contract the
venue sizes in contracts and the catalog lacks must never get a guessed size (shared/SPEC.md):
the event keeps ``quantity`` and ``size_usd`` None and its raw ``contracts``, so the connection
drops and counts it under its symbol (tests/ingest/test_unsized_symbols.py), unless a rule the
exchange documents sizes it (OKX inverse, HTX's own conversions). Coin- and USD-sized feeds:
tests/venues/test_live_variants_coins.py.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

from purpleflea.venues import gate, htx, kraken, okx
from purpleflea.venues.bitmex.normalizer import LiquidationBook
from tests.venues.live_rows import inverse, linear, rows

# --- OKX ----------------------------------------------------------------------------------
# okx.com/docs-v5/en/#public-data-websocket-liquidation-orders-channel (copy updated
# 2026-07-19): one subscription per instType; ``data[]`` items of one instrument each, every
# ``details[]`` element a liquidation; ``side`` "Applicable to FUTURES/SWAP", ``sz`` "For
# FUTURES/SWAP, the unit is contract", ``posSide`` long/short (hedge) or net.

OKX_CATALOG = {"BTC-USDT-SWAP": linear("okx", "BTC-USDT-SWAP", 0.01)}


def _okx_detail(side: str, pos_side: str, sz: str, px: str, ts: str) -> dict[str, str]:
    return {
        "bkLoss": "0",
        "bkPx": px,
        "ccy": "",
        "posSide": pos_side,
        "side": side,
        "sz": sz,
        "ts": ts,
    }


def _okx_push(kind: str, *items: tuple[str, list[dict[str, str]]]) -> str:
    data = [
        {
            "details": details,
            "instFamily": inst[: inst.rfind("-")],
            "instId": inst,
            "instType": kind,
            "uly": inst[: inst.rfind("-")],
        }
        for inst, details in items
    ]
    return json.dumps({"arg": {"channel": "liquidation-orders", "instType": kind}, "data": data})


def test_okx_busy_swap_push_sizes_what_it_can_and_never_guesses_the_rest() -> None:
    push = _okx_push(
        "SWAP",
        (
            "BTC-USDT-SWAP",
            [
                _okx_detail("sell", "long", "12", "60000", "1718000004100"),  # hedge long
                _okx_detail("buy", "net", "3", "61000", "1718000004000"),  # net: a buy -> short
            ],
        ),
        # Listed since the catalog was fetched: OKX sets a linear swap's ctVal per coin.
        ("NEWCOIN-USDT-SWAP", [_okx_detail("sell", "net", "40", "1.5", "1718000004200")]),
        # An inverse swap the catalog lacks: OKX documents 10 USD per non-BTC contract.
        ("DOGE-USD-SWAP", [_okx_detail("buy", "short", "7", "0.125", "1718000003900")]),
    )
    events = okx.normalize(push, OKX_CATALOG)
    assert rows(events) == [
        ("BTC-USDT-SWAP", "BTC-PERP", "long", 0.12, 7200.0),
        ("BTC-USDT-SWAP", "BTC-PERP", "short", 0.03, 1830.0),
        ("NEWCOIN-USDT-SWAP", "NEWCOIN-PERP", "long", None, None),
        ("DOGE-USD-SWAP", "DOGE-PERP", "short", 560.0, 70.0),
    ]
    assert events[2].contracts == 40  # the raw count is kept for the unsized one
    assert [e.ts for e in events] == [1718000004100, 1718000004000, 1718000004200, 1718000003900]


def test_okx_futures_push_of_dated_contracts_and_the_other_inst_types_are_skipped() -> None:
    futures = _okx_push(
        "FUTURES",
        ("BTC-USD-250328", [_okx_detail("sell", "net", "5", "80000", "1718000000000")]),
        ("ETH-USDT-250328", [_okx_detail("buy", "net", "5", "3000", "1718000000000")]),
    )
    assert rows(okx.normalize(futures, OKX_CATALOG)) == [
        ("BTC-USD-250328", "BTC-20250328", "long", 0.00625, 500.0),  # 100 USD per BTC contract
        ("ETH-USDT-250328", "ETH-20250328", "short", None, None),  # linear: ctVal unknown
    ]
    # MARGIN (spot margin, sz in base coin, no side) and OPTION pushes are no perpetual or
    # dated futures market: the tracker covers neither, and we do not subscribe them.
    margin = _okx_push("MARGIN", ("BTC-USDT", [_okx_detail("", "", "0.5", "", "1718000000000")]))
    option = _okx_push(
        "OPTION", ("BTC-USD-250328-100000-C", [_okx_detail("", "", "1", "", "1718000000000")])
    )
    assert okx.normalize(margin, OKX_CATALOG) == []
    assert okx.normalize(option, OKX_CATALOG) == []


# --- Gate ---------------------------------------------------------------------------------
# Gate futures WS v4 ``futures.public_liquidates`` as changed 2026-08-20: every liquidation
# of a contract in its 1 s period in one array, item ``time`` in ms, ``size`` a decimal string
# under ``X-Gate-Size-Decimal: 1``; subscribed with ``["!all"]`` every contract shares it.

GATE_CATALOG = {
    "BTC_USDT": linear("gate", "BTC_USDT", 0.0001),
    "DOGE_USDT": linear("gate", "DOGE_USDT", 10.0),
}


def test_gate_busy_push_sizes_listed_contracts_and_keeps_the_rest_unsized() -> None:
    result = [
        {"contract": "BTC_USDT", "price": "60000", "size": "-124.5", "time": 1789000000100},
        {"contract": "BTC_USDT", "price": "60010", "size": "30", "time": 1789000000300},
        {"contract": "DOGE_USDT", "price": "0.2", "size": "-7", "time": 1789000000400},
        {"contract": "NEWCOIN_USDT", "price": "1.5", "size": "-40", "time": 1789000000500},
    ]
    frame = json.dumps(
        {
            "channel": "futures.public_liquidates",
            "event": "update",
            "time": 1789000001,
            "time_ms": 1789000001000,
            "result": result,
        }
    )
    events = gate.normalize(frame, GATE_CATALOG)
    assert rows(events) == [
        ("BTC_USDT", "BTC-PERP", "long", 0.01245, 747.0),
        ("BTC_USDT", "BTC-PERP", "short", 0.003, 180.03),
        ("DOGE_USDT", "DOGE-PERP", "long", 70.0, 14.0),
        ("NEWCOIN_USDT", "NEWCOIN-PERP", "long", None, None),
    ]
    assert events[3].contracts == -40  # the signed raw count of the unsized one


# --- HTX ----------------------------------------------------------------------------------
# HTX linear swap "[General] Subscribe Liquidation Orders" (public.$contract_code
# .liquidation_orders, ``*`` for all): volume (cont), amount (token), trade_turnover
# (quotation token), price "bankruptcy price"; the coin-margined futures page's push
# (public.$symbol.liquidation_orders) carries ``amount`` but no ``trade_turnover``, its
# example contract ``BTC201225``.

HTX_CATALOG = {
    "BTC-USDT": linear("htx", "BTC-USDT", 0.001),
    "ETH-USD": inverse("htx", "ETH-USD", 10.0),
}


def _htx_item(code: str, direction: str, volume: float, price: float, **extra: Any) -> dict:
    return {
        "symbol": code.split("-", maxsplit=1)[0],
        "contract_code": code,
        "direction": direction,
        "offset": "close",
        "volume": volume,
        "price": price,
        "created_at": 1789000000000,
        **extra,
    }


def test_htx_busy_push_falls_back_on_the_frame_s_own_conversions_never_a_guess() -> None:
    data = [
        _htx_item("BTC-USDT", "sell", 173, 60000.0, amount=0.173, trade_turnover=10380.0),
        _htx_item("ETH-USD", "buy", 231, 229.95),
        # Listed since the catalog: HTX's own coins and USDT turnover size it.
        _htx_item("NEW-USDT", "sell", 10, 1.5, amount=100, trade_turnover=150),
        # Coin-margined future the catalog lacks: coins from ``amount``, USD as coins x price.
        _htx_item("BTC201225", "buy", 26, 19674.96, amount=0.13214766383260754),
        # Neither catalog nor conversions: unsized.
        _htx_item("ODD-USDT", "buy", 5, 2.0),
    ]
    frame = gzip.compress(
        json.dumps(
            {
                "op": "notify",
                "topic": "public.*.liquidation_orders",
                "ts": 1789000000001,
                "data": data,
            }
        ).encode()
    )
    assert rows(htx.normalize(frame, HTX_CATALOG)) == [
        ("BTC-USDT", "BTC-PERP", "long", 0.173, 10380.0),
        ("ETH-USD", "ETH-PERP", "short", round(2310 / 229.95, 9), 2310.0),
        ("NEW-USDT", "NEW-PERP", "long", 100.0, 150.0),
        ("BTC201225", "BTC-20201225", "short", 0.132147664, 2600.0),
        ("ODD-USDT", "ODD-PERP", "short", None, None),
    ]


# --- BitMEX -------------------------------------------------------------------------------
# bitmex.com/app/wsAPI, table ``liquidation``: partial/insert/update/delete of resting
# liquidation orders {orderID, symbol, side (order side), price, leavesQty (contracts)}.


def test_bitmex_insert_of_several_contracts_sizes_only_what_the_catalog_knows() -> None:
    catalog = {
        "XBTUSD": inverse("bitmex", "XBTUSD", 1.0),
        "SOLUSDT": linear("bitmex", "SOLUSDT", 0.0001),
    }
    inserted = [
        {"orderID": "a1", "symbol": "XBTUSD", "side": "Sell", "price": 60000, "leavesQty": 3000},
        {"orderID": "a2", "symbol": "SOLUSDT", "side": "Buy", "price": 150, "leavesQty": 20000},
        # A quanto needs XBT's price (the catalog's XBTUSD mark): none here.
        {"orderID": "a3", "symbol": "ETHUSD", "side": "Buy", "price": 3000, "leavesQty": 40},
        # Listed since the catalog was fetched: no multiplier known.
        {"orderID": "a4", "symbol": "NEWUSDT", "side": "Sell", "price": 1.5, "leavesQty": 900},
        # A dated XBT future: inverse, quoted in USD.
        {"orderID": "a5", "symbol": "XBTH25", "side": "Buy", "price": 80000, "leavesQty": 800},
    ]
    book = LiquidationBook()
    events = book(
        json.dumps({"table": "liquidation", "action": "insert", "data": inserted}), catalog
    )
    assert rows(events) == [
        ("XBTUSD", "BTC-PERP", "long", 0.05, 3000.0),
        ("SOLUSDT", "SOL-PERP", "short", 2.0, 300.0),
        ("ETHUSD", "ETH-PERP", "short", None, None),
        ("NEWUSDT", "NEW-PERP", "long", None, None),
        ("XBTH25", "BTC-20250328", "short", None, None),  # not in this catalog either
    ]
    assert [e.contracts for e in events] == [3000, 20000, 40, 900, 800]
    assert all(e.ts is None for e in events)  # BitMEX sends no time


# --- Kraken Futures -----------------------------------------------------------------------
# docs.kraken.com futures websocket ``trade`` feed: one trade per message, ``trade_snapshot``
# on subscribe, ``type`` fill/liquidation/termination/block; ``qty`` in contracts.


def test_kraken_snapshot_of_many_products_reads_only_liquidations() -> None:
    def trade(uid: str, product: str, side: str, kind: str, qty: float, price: float) -> dict:
        return {
            "feed": "trade",
            "product_id": product,
            "uid": uid,
            "side": side,
            "type": kind,
            "seq": 1,
            "time": 1789000000000,
            "qty": qty,
            "price": price,
        }

    snapshot = {
        "feed": "trade_snapshot",
        "product_id": "PF_XBTUSD",
        "trades": [
            trade("u1", "PF_XBTUSD", "sell", "liquidation", 0.5, 60000.0),
            trade("u2", "PF_XBTUSD", "buy", "fill", 1.0, 60000.0),
            trade("u3", "PF_XBTUSD", "buy", "termination", 1.0, 60000.0),
            trade("u4", "PI_XBTUSD", "buy", "liquidation", 3000.0, 60000.0),  # 1 USD each
            trade("u5", "PF_NEWCOINUSD", "sell", "liquidation", 40.0, 1.5),  # coins: no catalog
            # Missing from the catalog: Kraken's documented 1 USD a contract (by_documented_rule).
            trade("u6", "FI_XBTUSD_250328", "sell", "liquidation", 800.0, 80000.0),
        ],
    }
    catalog = {"PI_XBTUSD": inverse("kraken_futures", "PI_XBTUSD", 1.0)}
    events = kraken.normalize(json.dumps(snapshot), catalog)
    assert rows(events) == [
        ("PF_XBTUSD", "BTC-PERP", "long", 0.5, 30000.0),
        ("PI_XBTUSD", "BTC-PERP", "short", 0.05, 3000.0),
        ("PF_NEWCOINUSD", "NEWCOIN-PERP", "long", 40.0, 60.0),
        ("FI_XBTUSD_250328", "BTC-20250328", "long", 0.01, 800.0),
    ]
    assert all(e.replay for e in events)
