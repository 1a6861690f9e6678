"""Venues' REST liquidation histories on loopback, each answering as the venue does.

Deribit's ``public/get_last_trades_by_instrument_and_time`` (:class:`DeribitHistory`), OKX's
``public/liquidation-orders`` (:class:`OkxHistory`), the dYdX v4 indexer's trade list
(:class:`DydxHistory`), HTX's v3 ``swap_liquidation_orders`` (:class:`HtxHistory`), Kraken
Futures' trade history (:class:`KrakenHistory`).

Parameters (docs.deribit.com): ``instrument_name``, ``start_timestamp`` and ``end_timestamp``
(ms, inclusive), ``count`` (1..1000, default 10), ``sorting`` (``asc``/``desc``/``default``).
Answer: ``{"jsonrpc":"2.0","result":{"trades":[..],"has_more":bool},..}``; an unknown
instrument answers Deribit's JSON-RPC error object.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
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


OKX_PATH = "/api/v5/public/liquidation-orders"


class OkxHistory:
    """OKX's ``public/liquidation-orders`` on loopback: the filled liquidations of one
    instrument family, newest first, paged backwards with ``after`` (exclusive); at most
    ``limit`` (<= 100) details an answer, grouped into one item per instrument.

    A request without ``instType``, ``instFamily`` or ``state=filled`` answers OKX's error
    envelope (code 51000, "Parameter ... error"), as the venue does for a missing parameter.
    """

    def __init__(self) -> None:
        self.details: list[tuple[str, dict[str, Any]]] = []  # (instId, detail)
        self.asked: list[dict[str, str]] = []

    def add(self, record: tuple[str, dict[str, Any]]) -> None:
        """``(instId, detail)``: one liquidation OKX would list."""
        self.details.append(record)

    def __call__(self, query: dict[str, str]) -> bytes:
        self.asked.append(query)
        family = query.get("instFamily", "")
        if query.get("instType") not in ("SWAP", "FUTURES") or not family:
            return _okx_error("Parameter instFamily error")
        if query.get("state") != "filled":
            return _okx_error("Parameter state error")
        limit = min(int(query.get("limit", "100")), 100)
        after = int(query.get("after", str(2**62)))
        rows = sorted(
            (
                (inst_id, d)
                for inst_id, d in self.details
                if inst_id.startswith(family + "-") and int(d["ts"]) < after
            ),
            key=lambda row: -int(row[1]["ts"]),
        )[:limit]
        items: list[dict[str, Any]] = []
        for inst_id, detail in rows:
            if not items or items[-1]["instId"] != inst_id:
                items.append(
                    {
                        "details": [],
                        "instFamily": family,
                        "instId": inst_id,
                        "instType": query["instType"],
                        "totalLoss": "0",
                        "uly": family,
                    }
                )
            items[-1]["details"].append(detail)
        return json.dumps({"code": "0", "msg": "", "data": items}).encode()


def _okx_error(message: str) -> bytes:
    return json.dumps({"code": "51000", "msg": message, "data": []}).encode()


def okx_detail(ts: int, *, sz: str = "5", side: str = "sell") -> dict[str, Any]:
    """One liquidation as OKX's channel and REST history list it (net mode)."""
    return {
        "bkLoss": "0",
        "bkPx": "60000.1",
        "ccy": "",
        "posSide": "net",
        "side": side,
        "sz": sz,
        "ts": str(ts),
    }


def okx_push(inst_id: str, *details: dict[str, Any]) -> str:
    """The ``liquidation-orders`` push carrying ``details`` of ``inst_id``."""
    item = {"details": list(details), "instId": inst_id, "instType": "SWAP"}
    arg = {"channel": "liquidation-orders", "instType": "SWAP"}
    return json.dumps({"arg": arg, "data": [item]})


DYDX_PATH = "/v4/trades/perpetualMarket/BTC-USD"


class DydxHistory:
    """The dYdX v4 indexer's ``GET /v4/trades/perpetualMarket/BTC-USD`` on loopback: every
    fill of the market, newest first, at or before ``createdBeforeOrAt`` (ISO-8601), at most
    ``limit`` (<= 1000) an answer, as ``{"trades":[..]}``."""

    def __init__(self) -> None:
        self.trades: list[dict[str, Any]] = []
        self.asked: list[dict[str, str]] = []

    def add(self, trade: dict[str, Any]) -> None:
        self.trades.append(trade)

    def __call__(self, query: dict[str, str]) -> bytes:
        self.asked.append(query)
        limit = min(int(query.get("limit", "1000")), 1000)
        before = query.get("createdBeforeOrAt")
        until = _iso_ms(before) if before else 2**62
        rows = sorted(
            (t for t in self.trades if _iso_ms(t["createdAt"]) <= until),
            key=lambda t: -_iso_ms(t["createdAt"]),
        )[:limit]
        return json.dumps({"trades": rows}).encode()


def _iso_ms(text: str) -> int:
    moment = datetime.fromisoformat(text)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def dydx_trade(trade_id: str, ts: int, *, kind: str = "LIQUIDATED") -> dict[str, Any]:
    """A BTC-USD trade as the indexer's channel and REST list it (a SELL: a long closed)."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ts)
    return {
        "id": trade_id,
        "side": "SELL",
        "size": "0.5",
        "price": "60000",
        "type": kind,
        "createdAt": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "createdAtHeight": str(10_000 + ts % 1000),
    }


def dydx_push(*trades: dict[str, Any]) -> str:
    """The ``v4_trades`` ``channel_data`` of BTC-USD carrying ``trades``."""
    frame = {
        "type": "channel_data",
        "connection_id": "c1",
        "message_id": 2,
        "id": "BTC-USD",
        "channel": "v4_trades",
        "version": "2.1.0",
        "contents": {"trades": list(trades)},
    }
    return json.dumps(frame)


HTX_PATH = "/linear-swap-api/v3/swap_liquidation_orders"


class HtxHistory:
    """HTX's ``GET /linear-swap-api/v3/swap_liquidation_orders`` on loopback: one contract's
    liquidation orders with ``start_time <= created_at <= end_time`` (at most 2 hours apart),
    oldest first with ``direct=next`` after ``from_id`` (a ``query_id``), ``page`` rows an
    answer (HTX does not document its page size). A missing ``contract``/``trade_type`` or a
    longer window answers an error envelope (code 1067 here: the fake's choice)."""

    def __init__(self, page: int = 100) -> None:
        self.rows: list[dict[str, Any]] = []
        self.asked: list[dict[str, str]] = []
        self.page = page

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append({**row, "query_id": 452_000 + len(self.rows)})

    def __call__(self, query: dict[str, str]) -> bytes:
        self.asked.append(query)
        if "contract" not in query or "trade_type" not in query:
            return _htx_error("Missing required parameter")
        end = int(query.get("end_time", str(2**62)))
        start = int(query.get("start_time", str(end - 7_200_000)))
        if end - start > 7_200_000:
            return _htx_error("The query window exceeds 2 hours")
        after = int(query.get("from_id", "0"))
        rows = sorted(
            (
                r
                for r in self.rows
                if r["contract_code"] == query["contract"]
                and start <= r["created_at"] <= end
                and r["query_id"] > after
            ),
            key=lambda r: r["query_id"],
        )
        if query.get("direct", "prev") != "next":
            rows.reverse()
        answer = {"code": 200, "msg": "", "data": rows[: self.page], "ts": end}
        return json.dumps(answer).encode()


def _htx_error(message: str) -> bytes:
    return json.dumps({"code": 1067, "msg": message, "data": None, "ts": 0}).encode()


def htx_row(ts: int, *, volume: float = 227, contract: str = "BTC-USDT") -> dict[str, Any]:
    """One liquidation order as HTX's topic and REST history list it (a sell: a long closed)."""
    return {
        "symbol": "BTC",
        "contract_code": contract,
        "direction": "sell",
        "offset": "close",
        "volume": volume,
        "price": 23350.5,
        "created_at": ts,
        "amount": volume / 1000,
        "trade_turnover": volume / 1000 * 23350.5,
        "pair": contract,
        "business_type": "swap",
    }


def htx_push(*rows: dict[str, Any]) -> str:
    """The ``public.BTC-USDT.liquidation_orders`` notification carrying ``rows``."""
    topic = "public.BTC-USDT.liquidation_orders"
    return json.dumps({"op": "notify", "topic": topic, "ts": 0, "data": list(rows)})


KRAKEN_PATH = "/derivatives/api/v3/history"


class KrakenHistory:
    """Kraken Futures' ``GET /derivatives/api/v3/history`` on loopback: a product's 100 most
    recent trades before ``lastTime`` (ISO-8601, exclusive), newest first. Trades are added as
    the ``trade`` feed sends them and listed as the REST history spells them (``time`` ISO,
    ``qty`` as the string ``size``, plus ``trade_id``)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.asked: list[dict[str, str]] = []

    def add(self, trade: dict[str, Any]) -> None:
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=trade["time"])
        self.rows.append(
            {
                "price": trade["price"],
                "side": trade["side"],
                "size": str(trade["qty"]),
                "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "trade_id": len(self.rows) + 1,
                "type": trade["type"],
                "uid": trade["uid"],
                "symbol": trade["product_id"],  # the fake's own filter key, not Kraken's
            }
        )

    def __call__(self, query: dict[str, str]) -> bytes:
        self.asked.append(query)
        if "symbol" not in query:
            body = {"result": "error", "error": "requiredArgumentMissing", "serverTime": ""}
            return json.dumps(body).encode()
        last = query.get("lastTime")
        before = _iso_ms(last) if last else 2**62
        rows = sorted(
            (
                r
                for r in self.rows
                if r["symbol"] == query["symbol"] and _iso_ms(r["time"]) < before
            ),
            key=lambda r: -_iso_ms(r["time"]),
        )[:100]
        listed = [{k: v for k, v in r.items() if k != "symbol"} for r in rows]
        body = {"history": listed, "result": "success", "serverTime": "2026-01-01T00:00:00.000Z"}
        return json.dumps(body).encode()


def kraken_trade(uid: str, ts: int, *, kind: str = "liquidation") -> dict[str, Any]:
    """A PI_XBTUSD trade as the ``trade`` feed sends it (a taker sell: a long closed)."""
    return {
        "feed": "trade",
        "product_id": "PI_XBTUSD",
        "uid": uid,
        "side": "sell",
        "type": kind,
        "seq": 1,
        "time": ts,
        "qty": 1000.0,
        "price": 60000.5,
    }
