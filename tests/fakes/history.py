"""A venue's REST trade history on loopback: Deribit's
``public/get_last_trades_by_instrument_and_time``, answering a time window as Deribit does.

Parameters (docs.deribit.com): ``instrument_name``, ``start_timestamp`` and ``end_timestamp``
(ms, inclusive), ``count`` (1..1000, default 10), ``sorting`` (``asc``/``desc``/``default``).
Answer: ``{"jsonrpc":"2.0","result":{"trades":[..],"has_more":bool},..}``; an unknown
instrument answers Deribit's JSON-RPC error object.
"""

from __future__ import annotations

import json
from typing import Any

PATH = "/api/v2/public/get_last_trades_by_instrument_and_time"


class DeribitHistory:
    """The trades Deribit would list, by instrument; a :class:`~tests.fakes.rest.FakeRest`
    route (``{PATH: history}``)."""

    def __init__(self, instruments: tuple[str, ...] = ("BTC-PERPETUAL",)) -> None:
        self.trades: dict[str, list[dict[str, Any]]] = {name: [] for name in instruments}
        self.asked: list[dict[str, str]] = []

    def add(self, trade: dict[str, Any]) -> None:
        self.trades[trade["instrument_name"]].append(trade)

    def __call__(self, query: dict[str, str]) -> bytes:
        self.asked.append(query)
        name = query.get("instrument_name", "")
        if name not in self.trades:
            error = {"code": 10020, "message": "invalid_instrument_name"}
            return json.dumps({"jsonrpc": "2.0", "error": error}).encode()
        start, end = int(query["start_timestamp"]), int(query["end_timestamp"])
        count = int(query.get("count", "10"))
        inside = sorted(
            (t for t in self.trades[name] if start <= t["timestamp"] <= end),
            key=lambda t: (t["timestamp"], t["trade_id"]),
            reverse=query.get("sorting", "default") != "asc",
        )
        result = {"trades": inside[:count], "has_more": len(inside) > count}
        return json.dumps({"jsonrpc": "2.0", "result": result, "usIn": 0, "usOut": 0}).encode()


def trade(trade_id: str, ts: int, *, liquidation: str | None = "T") -> dict[str, Any]:
    """A BTC-PERPETUAL trade as Deribit's channel and history list it."""
    found: dict[str, Any] = {
        "trade_seq": int(trade_id.rsplit("-", 1)[-1]),
        "trade_id": trade_id,
        "timestamp": ts,
        "tick_direction": 0,
        "price": 60_000.0,
        "mark_price": 60_001.0,
        "instrument_name": "BTC-PERPETUAL",
        "index_price": 60_002.0,
        "direction": "sell",
        "amount": 1_000.0,
    }
    if liquidation is not None:
        found["liquidation"] = liquidation
    return found


def notification(*trades: dict[str, Any]) -> str:
    """The ``trades.BTC-PERPETUAL.100ms`` notification carrying ``trades``."""
    params = {"channel": "trades.BTC-PERPETUAL.100ms", "data": list(trades)}
    return json.dumps({"jsonrpc": "2.0", "method": "subscription", "params": params})
