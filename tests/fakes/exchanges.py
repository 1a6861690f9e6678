"""Fake exchange websocket servers on loopback, speaking each exchange's protocol.

A :class:`FakeExchange` runs a ``websockets`` server on 127.0.0.1 (port 0) for one connection
of one exchange. Its :class:`Dialect` checks the URL path and the subscribe messages (a wrong
one is recorded in ``violations`` and the socket closed), answers that exchange's pings with
its pongs, sends its greetings, acks and subscribe-time snapshots (Kraken ``trade_snapshot``,
BitMEX ``partial``, dYdX ``subscribed`` history), gzips frames for HTX, and pings the client
the way the exchange does (HTX ``op:ping``, Deribit ``test_request``, Kraken heartbeats).

It plays a queue of recorded frames to whoever is subscribed, and knows which were sent to an
open socket (``delivered``): a frame not sent stays queued for the next connection. It can be
told to misbehave: drop every connection after ``drop_every`` seconds, go silent after
``stall_every`` frames, interleave garbage every ``garbage_every`` frames, send in bursts,
refuse every subscription with the exchange's error reply (``refuse_subscribe``), or refuse
a whole subscribe message that holds one of ``bad_topics`` as Bybit and Kraken Futures do (it
then plays a frame only once its topic is subscribed).

A dialect with a liveness channel (``liveness_every``: Bybit inverse's ticker, Gate's tickers,
HTX's contract_info, BitMEX's instrument, Bitget's ticker) acks its subscription and pushes a
frame of its recorded shape every ``liveness_every`` seconds while subscribed; with
``Faults(mute_liveness=True)`` it acks and pushes nothing, as a gateway that answers pings and
acks but sends no data.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import re
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import websockets
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from purpleflea.clock import now_ms

Out = str | bytes


class Violation(Exception):
    """The client sent something the real exchange would reject."""


def dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


@dataclass
class Session:
    """What one client connection has done so far."""

    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    topics: list[str] = field(default_factory=list)
    pings: int = 0  # client pings answered / server pings answered by the client
    heartbeat: float | None = None  # Deribit: set_heartbeat's interval; dYdX: block height
    silent: bool = False  # stalled: ignore everything, send nothing
    #: The fake's frames delivered so far (to any connection): a venue's history.
    history: list[Out] = field(default_factory=list)
    #: The liveness topic the client subscribed (None: none yet) and its pushes sent.
    liveness: str | None = None
    liveness_pushes: int = 0


class Dialect:
    """One exchange's side of the protocol. Subclasses override what differs."""

    exchange = ""
    path = "/"
    #: Server-initiated application ping interval (None: the exchange sends none).
    ping_every: float | None = None
    #: Seconds between pushes of the liveness channel once subscribed (None: it has none).
    liveness_every: float | None = None

    def greeting(self) -> list[str]:
        return []

    def handle(self, message: str, session: Session) -> list[str]:
        """Replies to one client message; raises :class:`Violation` for a wrong one."""
        raise Violation(f"{self.exchange}: unexpected message {message[:120]!r}")

    def snapshot(self, delivered: list[Out], session: Session) -> list[str]:
        """Frames sent right after subscribing (replays of what was already sent)."""
        return []

    def ping(self, session: Session) -> str | None:
        return None

    def liveness_push(self, session: Session) -> str | None:
        """One push of the liveness channel ``session.liveness`` names, in its real shape."""
        return None

    def refusal(self, message: str) -> str | None:
        """The exchange's error reply if ``message`` is a subscribe (None: not one)."""
        return None

    def closing_notice(self) -> str | None:
        """What the exchange sends before it closes a connection on purpose (None: nothing)."""
        return None

    def refuse_topics(self, message: str, bad: frozenset[str]) -> str | None:
        """The exchange's error reply if ``message`` subscribes to one of ``bad`` topics."""
        return None

    def topic_of(self, frame: Out) -> str | None:
        """The subscription topic a data frame belongs to (None: not known)."""
        return None

    def encode(self, text: Out) -> Out:
        return text

    def garbage(self, good: Out) -> list[Out]:
        """Malformed frames: not JSON, and a real frame cut in half."""
        return ["}{ not json at all", good[: len(good) // 2]]

    def _json(self, message: str) -> dict[str, Any]:
        try:
            value = json.loads(message)
        except ValueError:
            raise Violation(f"{self.exchange}: not JSON: {message[:120]!r}") from None
        if not isinstance(value, dict):
            raise Violation(f"{self.exchange}: not an object: {message[:120]!r}")
        return value


class Binance(Dialect):
    def __init__(self, exchange: str = "binance_usdm") -> None:
        self.exchange = exchange
        # Trap 3: USD-M liquidations live under /market; COIN-M has no split.
        self.path = "/market/ws" if exchange == "binance_usdm" else "/ws"

    def handle(self, message: str, session: Session) -> list[str]:
        request = self._json(message)
        if request.get("method") == "LIST_SUBSCRIPTIONS":
            session.pings += 1
            return [dumps({"result": session.topics, "id": request.get("id")})]
        params = request.get("params")
        if request.get("method") != "SUBSCRIBE" or params != ["!forceOrder@arr"]:
            raise Violation(f"{self.exchange}: bad subscribe {message!r}")
        session.topics.extend(params)
        session.subscribed.set()
        return [dumps({"result": None, "id": request.get("id")})]

    def refusal(self, message: str) -> str | None:
        if '"SUBSCRIBE"' not in message:
            return None
        error = {"code": 2, "msg": "Invalid request: unknown variable"}
        return dumps({"error": error, "id": self._json(message).get("id")})


class Bybit(Dialect):
    exchange = "bybit"

    def __init__(self, category: str = "linear") -> None:
        self.path = f"/v5/public/{category}"
        self.category = category
        self.liveness_every = 0.05 if category == "inverse" else None

    def handle(self, message: str, session: Session) -> list[str]:
        request = self._json(message)
        if request.get("op") == "ping":
            session.pings += 1
            return [dumps({"success": True, "ret_msg": "pong", "conn_id": "c1", "op": "ping"})]
        args = request.get("args")
        if request.get("op") != "subscribe" or not isinstance(args, list) or not args:
            raise Violation(f"bybit: bad request {message!r}")
        reply = {"success": True, "ret_msg": "", "conn_id": "c1", "op": "subscribe"}
        if self.liveness_every is not None and len(args) == 1 and args[0] == "tickers.BTCUSD":
            session.liveness = args[0]  # the inverse connection's liveness ticker, alone
            return [dumps({**reply, "req_id": request.get("req_id", "")})]
        if len(message) > 21_000 or not all(str(a).startswith("allLiquidation.") for a in args):
            raise Violation(f"bybit: bad subscribe args {message[:120]!r}")
        # "for one public connection, you cannot have length of "args" array over 21,000
        # characters" (docs/v5/websocket/wss-authentication.mdx; zh-TW: the lengths of the
        # args' elements summed, for a single connection).
        if sum(len(str(a)) for a in [*session.topics, *args]) > 21_000:
            raise Violation(f"bybit: a connection's args over 21,000 characters ({args[0]})")
        session.topics.extend(args)
        session.subscribed.set()
        return [dumps({**reply, "req_id": request.get("req_id", "")})]

    def liveness_push(self, session: Session) -> str | None:
        # docs/v5/websocket/public/ticker.mdx: a delta carries the fields that changed.
        data = {"symbol": "BTCUSD", "markPrice": "91234.50", "indexPrice": "91240.12"}
        push = {"topic": session.liveness, "type": "delta", "data": data, "cs": 1, "ts": now_ms()}
        return dumps(push)

    def refusal(self, message: str) -> str | None:
        return self._refused(message, "allLiquidation.NOPEUSDT")

    def refuse_topics(self, message: str, bad: frozenset[str]) -> str | None:
        # Bybit refuses the whole message and names its first bad topic (ccxt issue 30284).
        args = self._json(message).get("args")
        named = [arg for arg in args if arg in bad] if isinstance(args, list) else []
        return self._refused(message, named[0]) if named else None

    def _refused(self, message: str, topic: str) -> str | None:
        request = self._json(message)
        if request.get("op") != "subscribe":
            return None
        reply = {
            "success": False,
            "ret_msg": f"error:handler not found,topic:{topic}",
            "conn_id": "c1",
            "req_id": request.get("req_id", ""),
            "op": "subscribe",
        }
        return dumps(reply)

    def topic_of(self, frame: Out) -> str | None:
        topic = json.loads(frame).get("topic")
        return topic if isinstance(topic, str) else None


class Okx(Dialect):
    exchange = "okx"
    path = "/ws/v5/public"

    def __init__(self) -> None:
        #: The rows of the instruments channel's first push (the REST list's shape).
        self.instruments: list[dict[str, str]] = []

    def handle(self, message: str, session: Session) -> list[str]:
        if message == "ping":
            session.pings += 1
            return ["pong"]
        request = self._json(message)
        args = request.get("args")
        if request.get("op") != "subscribe" or not isinstance(args, list):
            raise Violation(f"okx: bad request {message!r}")
        replies = []
        for arg in args:
            if arg.get("channel") not in ("liquidation-orders", "instruments") or arg.get(
                "instType"
            ) not in ("SWAP", "FUTURES"):
                raise Violation(f"okx: bad subscribe arg {arg!r}")
            replies.append(dumps({"event": "subscribe", "arg": arg, "connId": "a1"}))
            if arg["channel"] == "instruments":
                # "The full instrument list will be pushed for the first time after
                # subscription" (OKX v5 docs, Instruments Channel).
                rows = [row for row in self.instruments if row["instType"] == arg["instType"]]
                replies.append(dumps({"arg": arg, "data": rows}))
                continue
            session.topics.append(arg["instType"])
        session.subscribed.set()
        return replies

    def closing_notice(self) -> str | None:
        # OKX WebSocket docs, "Notifications": sent 30 s before a service upgrade closes it.
        msg = "The connection will soon be closed for a service upgrade. Please reconnect."
        return dumps({"event": "notice", "code": "64008", "msg": msg, "connId": "a1"})

    def refusal(self, message: str) -> str | None:
        if message == "ping":
            return None
        msg = "Wrong URL or channel:liquidation-orders,instType:SWAP doesn't exist."
        return dumps({"event": "error", "code": "60018", "msg": msg, "connId": "a1"})


class Bitmex(Dialect):
    exchange = "bitmex"
    path = "/realtime"
    liveness_every = 0.05

    def __init__(self, refusal_status: int = 400) -> None:
        # The status of its error reply (``refuse_subscribe``): 400 names a wrong table, 429
        # is its rate limit (bitmex.com/app/wsAPI), which passes later.
        if refusal_status not in (400, 429):
            raise ValueError(f"bitmex fake: refusal_status must be 400 or 429: {refusal_status}")
        self.refusal_status = refusal_status

    def greeting(self) -> list[str]:
        return [dumps({"info": "Welcome to the BitMEX Realtime API.", "version": "fake"})]

    def handle(self, message: str, session: Session) -> list[str]:
        if message == "ping":
            session.pings += 1
            return ["pong"]
        request = self._json(message)
        if request.get("op") == "subscribe" and request.get("args") == ["instrument:XBTUSD"]:
            session.liveness = "instrument:XBTUSD"
            return [dumps({"success": True, "subscribe": session.liveness, "request": request})]
        if request.get("op") != "subscribe" or request.get("args") != ["liquidation"]:
            raise Violation(f"bitmex: bad request {message!r}")
        session.topics.append("liquidation")
        session.subscribed.set()
        return [dumps({"success": True, "subscribe": "liquidation", "request": request})]

    def refusal(self, message: str) -> str | None:
        if message == "ping":
            return None
        request = self._json(message)
        if self.refusal_status == 429:
            error, meta = "Rate limit exceeded, retry in 1 seconds.", {"retryAfter": 1}
            return dumps({"status": 429, "error": error, "meta": meta, "request": request})
        error = "Unknown table: liquidation"
        return dumps({"status": 400, "error": error, "meta": {}, "request": request})

    def liveness_push(self, session: Session) -> str | None:
        # The instrument update shape recorded in altangent/ccxws issue 98 (XBTUSD, 2019).
        row = {"symbol": "XBTUSD", "fairPrice": 8773.99, "markPrice": 8773.99}
        row["timestamp"] = "2019-11-12T20:49:50.293Z"
        return dumps({"table": "instrument", "action": "update", "data": [row]})

    def snapshot(self, delivered: list[Out], session: Session) -> list[str]:
        # The partial lists the liquidation orders resting now: here, every insert sent so far.
        rows = [row for frame in delivered for row in _rows(frame, "insert")]
        partial = {
            "table": "liquidation",
            "action": "partial",
            "keys": ["orderID"],
            "filter": {},
            "data": rows,
        }
        return [dumps(partial)]


def _rows(frame: Out, action: str) -> list[Any]:
    value = json.loads(frame)
    return list(value.get("data") or []) if value.get("action") == action else []


# docs.deribit.com subscriptions: trades.{instrument_name}.{interval} and
# trades.{kind}.{currency}.{interval}; raw needs authorization.
_DERIBIT_KINDS = ("future", "option", "spot", "future_combo", "option_combo")
_DERIBIT_CURRENCIES = ("BTC", "ETH", "USDC", "USDT", "EURR", "any")


def _deribit_public_trades(channel: str) -> bool:
    parts = channel.split(".")
    if parts[0] != "trades" or parts[-1] not in ("100ms", "agg2"):
        return False
    if len(parts) == 3:
        return True
    return len(parts) == 4 and parts[1] in _DERIBIT_KINDS and parts[2] in _DERIBIT_CURRENCIES


class Deribit(Dialect):
    exchange = "deribit"
    path = "/ws/api/v2"
    ping_every = 0.2

    #: The answers ``refuse_subscribe`` gives a subscribe: -32602 invalid params (a wrong
    #: request), 10028 too_many_requests (passes later), or the channel left out of the
    #: result list, Deribit's silent refusal of a channel it does not serve.
    REFUSALS = ("invalid_params", "too_many_requests", "left_out")

    def __init__(self, refusal: str = "invalid_params") -> None:
        if refusal not in self.REFUSALS:
            raise ValueError(f"deribit fake: refusal must be one of {self.REFUSALS}: {refusal}")
        self.refusal_kind = refusal

    def handle(self, message: str, session: Session) -> list[str]:
        request = self._json(message)
        method, rid = request.get("method"), request.get("id")
        params = request.get("params") or {}
        if request.get("jsonrpc") != "2.0":
            raise Violation(f"deribit: not JSON-RPC 2.0: {message!r}")
        if method == "public/set_heartbeat":
            if params.get("interval", 0) < 10:
                raise Violation(f"deribit: heartbeat interval below 10 s: {message!r}")
            session.heartbeat = float(params["interval"])
            return [dumps({"jsonrpc": "2.0", "id": rid, "result": "ok"})]
        if method == "public/test":
            session.pings += 1
            return [dumps({"jsonrpc": "2.0", "id": rid, "result": {"version": "fake"}})]
        channels = params.get("channels")
        if method != "public/subscribe" or not isinstance(channels, list) or not channels:
            raise Violation(f"deribit: bad request {message!r}")
        for channel in channels:
            if not _deribit_public_trades(str(channel)):
                raise Violation(f"deribit: bad public channel {channel!r}")
        session.topics.extend(channels)
        session.subscribed.set()
        return [dumps({"jsonrpc": "2.0", "id": rid, "result": channels})]

    def refusal(self, message: str) -> str | None:
        request = self._json(message)
        if request.get("method") != "public/subscribe":
            return None
        rid = request.get("id")
        if self.refusal_kind == "left_out":
            return dumps({"jsonrpc": "2.0", "id": rid, "result": [], "testnet": False})
        if self.refusal_kind == "too_many_requests":
            error = {"message": "too_many_requests", "code": 10028}
        else:
            error = {"message": "Invalid params", "code": -32602}
        return dumps({"jsonrpc": "2.0", "id": rid, "error": error})

    def ping(self, session: Session) -> str | None:
        if session.heartbeat is None:
            return None
        test = {"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}}
        return dumps(test)


class Dydx(Dialect):
    exchange = "dydx_v4"
    path = "/v4/ws"
    ping_every = 0.2  # the v4_block_height channel: one message per block

    def __init__(self, names_failed: bool = True) -> None:
        # Whether a failed fetch's error names its market in ``channel`` and ``id`` (newer
        # indexers) or only says the channel in its text (helpers/message.ts as stored).
        self.names_failed = names_failed

    def greeting(self) -> list[str]:
        return [dumps({"type": "connected", "connection_id": "c1", "message_id": 0})]

    def handle(self, message: str, session: Session) -> list[str]:
        request = self._json(message)
        if request == {"type": "subscribe", "channel": "v4_block_height"}:
            if session.heartbeat is not None:
                raise Violation("dydx: a second v4_block_height subscription (limit 1)")
            session.heartbeat = 1.0
            return [dumps({**self._block(session), "type": "subscribed"})]
        market = request.get("id")
        if (
            request.get("type") != "subscribe"
            or request.get("channel") != "v4_trades"
            or not isinstance(market, str)
        ):
            raise Violation(f"dydx: bad request {message!r}")
        if market in session.topics:
            text = f"Invalid subscribe message: already subscribed (v4_trades-{market})"
            return [self._error(text, market)]
        if len(session.topics) >= 32:
            # The indexer answers "Per-connection subscription limit reached for v4_trades
            # (limit=32)." and subscribes nothing (socks subscription.ts, V4_TRADES_CHANNEL_
            # LIMIT): a market asked for there is never delivered.
            raise Violation(f"dydx: a 33rd v4_trades subscription on one connection ({market})")
        session.topics.append(market)
        session.subscribed.set()
        # Each subscribe is answered alone, with the market's recent trades (history).
        trades = [
            trade
            for frame in session.history
            if json.loads(frame).get("id") == market
            for trade in json.loads(frame).get("contents", {}).get("trades", [])
        ]
        subscribed = {
            "type": "subscribed",
            "connection_id": "c1",
            "message_id": 1,
            "channel": "v4_trades",
            "id": market,
            "contents": {"trades": trades},
        }
        return [dumps(subscribed)]

    def refuse_topics(self, message: str, bad: frozenset[str]) -> str | None:
        # A market whose initial fetch fails: socks answers this error and does not subscribe
        # it (dydxprotocol/v4-chain indexer/services/socks/src/lib/subscription.ts; newer
        # indexers name the channel and id, helpers/message.ts).
        request = self._json(message)
        market = request.get("id")
        if request.get("channel") != "v4_trades" or market not in bad:
            return None
        text = "Internal error, could not fetch data for subscription: v4_trades."
        if not self.names_failed:
            return dumps({"type": "error", "message": text, "connection_id": "c1"})
        return self._error(text, str(market))

    def _error(self, text: str, market: str) -> str:
        error = {"type": "error", "message": text, "connection_id": "c1", "message_id": 1}
        return dumps({**error, "channel": "v4_trades", "id": market})

    def topic_of(self, frame: Out) -> str | None:
        value = json.loads(frame)
        return str(value["id"]) if value.get("channel") == "v4_trades" else None

    def refusal(self, message: str) -> str | None:
        market = self._json(message).get("id")
        error = {
            "type": "error",
            "message": f"Invalid subscription id for channel: (v4_trades-{market})",
            "connection_id": "c1",
            "message_id": 1,
        }
        return dumps(error)

    def ping(self, session: Session) -> str | None:
        return None if session.heartbeat is None else dumps(self._block(session))

    def _block(self, session: Session) -> dict[str, Any]:
        assert session.heartbeat is not None
        session.heartbeat += 1
        height = {"blockHeight": str(int(session.heartbeat)), "time": "2026-12-06T10:00:00Z"}
        return {
            "type": "channel_data",
            "connection_id": "c1",
            "message_id": 1,
            "channel": "v4_block_height",
            "id": "v4_block_height",
            "contents": height,
        }


class Kraken(Dialect):
    exchange = "kraken_futures"
    path = "/ws/v1"
    ping_every = 0.2  # the heartbeat feed

    def greeting(self) -> list[str]:
        return [dumps({"event": "info", "version": 1})]

    def handle(self, message: str, session: Session) -> list[str]:
        request = self._json(message)
        feed = request.get("feed")
        if request.get("event") != "subscribe" or feed not in ("trade", "heartbeat"):
            raise Violation(f"kraken: bad request {message!r}")
        if feed == "heartbeat":
            session.topics.append("heartbeat")
            return [dumps({"event": "subscribed", "feed": "heartbeat"})]
        products = request.get("product_ids")
        if not isinstance(products, list) or not products:
            raise Violation(f"kraken: trade subscribe without product_ids: {message!r}")
        session.topics.extend(products)
        session.subscribed.set()
        return [dumps({"event": "subscribed", "feed": "trade", "product_ids": products})]

    def refusal(self, message: str) -> str | None:
        request = self._json(message)
        if request.get("feed") != "trade":
            return None
        # Kraken's documented answer to a subscribe that did not take.
        failed = {"event": "subscribed_failed", "feed": "trade"}
        return dumps({**failed, "product_ids": request.get("product_ids")})

    def refuse_topics(self, message: str, bad: frozenset[str]) -> str | None:
        # The trade feed reference's error for a bad product: it names none.
        products = self._json(message).get("product_ids")
        if not isinstance(products, list) or not bad.intersection(products):
            return None
        return dumps({"event": "error", "message": "Invalid product id"})

    def topic_of(self, frame: Out) -> str | None:
        product = json.loads(frame).get("product_id")
        return product if isinstance(product, str) else None

    def snapshot(self, delivered: list[Out], session: Session) -> list[str]:
        replies = []
        for product in session.topics:
            trades = [
                value
                for value in (json.loads(frame) for frame in delivered)
                if value.get("product_id") == product and value.get("feed") == "trade"
            ]
            snapshot = {"feed": "trade_snapshot", "product_id": product, "trades": trades}
            replies.append(dumps(snapshot))
        return replies

    def ping(self, session: Session) -> str | None:
        if "heartbeat" not in session.topics:
            return None
        return dumps({"feed": "heartbeat", "time": now_ms()})


class Bitget(Dialect):
    exchange = "bitget"
    path = "/v3/ws/public"
    liveness_every = 0.05
    liveness_arg: ClassVar = {"instType": "usdt-futures", "topic": "ticker", "symbol": "BTCUSDT"}

    def __init__(self, refusal_code: int = 30001) -> None:
        # The code of its error reply (``refuse_subscribe``): 30001 names a wrong argument,
        # 30006 "request too many" passes when asked again.
        if refusal_code not in (30001, 30006):
            raise ValueError(f"bitget fake: refusal_code must be 30001 or 30006: {refusal_code}")
        self.refusal_code = refusal_code

    def handle(self, message: str, session: Session) -> list[str]:
        if message == "ping":
            session.pings += 1
            return ["pong"]
        request = self._json(message)
        args = request.get("args")
        if request.get("op") != "subscribe" or not isinstance(args, list):
            raise Violation(f"bitget: bad request {message!r}")
        replies = []
        for arg in args:
            if arg == self.liveness_arg:
                session.liveness = "ticker"
                replies.append(dumps({"event": "subscribe", "arg": arg}))
                continue
            if arg.get("topic") != "liquidation" or arg.get("instType") not in (
                "usdt-futures",
                "coin-futures",
                "usdc-futures",
            ):
                raise Violation(f"bitget: bad subscribe arg {arg!r}")
            session.topics.append(arg["instType"])
            replies.append(dumps({"event": "subscribe", "arg": arg}))
        session.subscribed.set()
        return replies

    def liveness_push(self, session: Session) -> str | None:
        # The UTA v3 ticker snapshot shape (tardis-node test/mappers.test.ts, 2026-04-28).
        row = {"lastPrice": "94012.5", "markPrice": "94013.1", "indexPrice": "94020.7"}
        return dumps(
            {"action": "snapshot", "arg": self.liveness_arg, "data": [row], "ts": now_ms()}
        )

    def refusal(self, message: str) -> str | None:
        if message == "ping":
            return None
        if self.refusal_code == 30006:
            return dumps({"event": "error", "code": 30006, "msg": "request too many"})
        # A v3 server's words for an argument that does not exist: the argument as JSON, and
        # the code as a number (Bitget's docs write a string).
        arg = self._json(message)["args"][0]
        msg = f"{dumps(arg)} doesn't exist"
        return dumps({"event": "error", "code": 30001, "msg": msg, "connId": "b1"})


class Gate(Dialect):
    exchange = "gate"
    liveness_every = 0.05
    #: Each settle family's BTC perpetual, whose ticker is the liveness channel.
    btc: ClassVar = {"usdt": "BTC_USDT", "btc": "BTC_USD", "usd1": "BTC_USD1"}

    def __init__(self, settle: str = "usdt", refusal_code: int = 2) -> None:
        self.path = f"/v4/ws/{settle}"
        self.settle = settle
        # The code of its error reply (``refuse_subscribe``): 2 "Invalid argument provided"
        # (an unknown contract), 3 "Server side error happened" (passes later).
        if refusal_code not in (2, 3):
            raise ValueError(f"gate fake: refusal_code must be 2 or 3: {refusal_code}")
        self.refusal_code = refusal_code

    def handle(self, message: str, session: Session) -> list[str]:
        request = self._json(message)
        channel = request.get("channel")
        if not isinstance(request.get("time"), int):
            raise Violation(f"gate: request without integer 'time': {message!r}")
        stamp = {"time": int(time.time()), "time_ms": now_ms()}
        if channel == "futures.ping":
            session.pings += 1
            return [dumps({**stamp, "channel": "futures.pong", "event": "", "result": None})]
        if channel == "futures.tickers" and request.get("event") == "subscribe":
            if request.get("payload") != [self.btc[self.settle]]:
                raise Violation(f"gate: ticker of another family's contract: {message!r}")
            session.liveness = self.btc[self.settle]
            ack = {**stamp, "channel": channel, "event": "subscribe", "payload": [session.liveness]}
            return [dumps({**ack, "error": None, "result": {"status": "success"}})]
        if (
            channel != "futures.public_liquidates"
            or request.get("event") != "subscribe"
            or request.get("payload") != ["!all"]
        ):
            raise Violation(f"gate: bad request {message!r}")
        session.topics.append("!all")
        session.subscribed.set()
        ack = {**stamp, "channel": channel, "event": "subscribe", "payload": ["!all"]}
        return [dumps({**ack, "error": None, "result": {"status": "success"}})]

    def liveness_push(self, session: Session) -> str | None:
        # The futures.tickers update shape recorded in tardis-node test/mappers.test.ts.
        row = {"contract": session.liveness, "last": "91230.5", "mark_price": "91231.2"}
        stamp = {"time": int(time.time()), "time_ms": now_ms()}
        return dumps({**stamp, "channel": "futures.tickers", "event": "update", "result": [row]})

    def refusal(self, message: str) -> str | None:
        request = self._json(message)
        if request.get("event") != "subscribe":
            return None
        reply = {
            "time": int(time.time()),
            "time_ms": now_ms(),
            "channel": request.get("channel"),
            "event": "subscribe",
            "payload": request.get("payload"),
            "error": self._error(),
            "result": {"status": "failed"},
        }
        return dumps(reply)

    def _error(self) -> dict[str, object]:
        if self.refusal_code == 3:
            return {"code": 3, "message": "Server side error happened"}
        return {"code": 2, "message": "unknown contract"}


class Htx(Dialect):
    exchange = "htx"
    ping_every = 0.2
    liveness_every = 0.05

    #: The answers ``refuse_subscribe`` gives a ``sub``, by HTX's reply codes ("Response code
    #: (Err-Code)" of its notification endpoints): 2010 names a wrong topic, 2004 is a limit
    #: that passes later; ``op_error`` is its ``{"op":"error"}`` (an internal error, no code).
    REFUSALS: ClassVar = {
        "topic_error": (2010, "Topic error."),
        "visits_limit": (2004, "Number of visits exceeds limit."),
        "op_error": None,
    }

    def __init__(self, kind: str = "linear", refusal: str = "topic_error") -> None:
        if refusal not in self.REFUSALS:
            raise ValueError(f"htx fake: refusal must be one of {sorted(self.REFUSALS)}: {refusal}")
        self.refusal_kind = refusal
        paths = {
            "linear": "/linear-swap-notification",
            "coin": "/swap-notification",
            "futures": "/notification",
        }
        self.path = paths[kind]
        # Delivery futures' topic is per coin (public.BTC.liquidation_orders), swaps' "*".
        self.topic = re.compile(
            r"public\.[A-Z0-9]+\.liquidation_orders"
            if kind == "futures"
            else r"public\.\*\.liquidation_orders"
        )
        # One contract's (one coin's on the delivery endpoint) contract info: the liveness
        # channel, pushed on subscribe and every 60 s.
        self.contract_info = re.compile(
            r"public\.[A-Z0-9]+\.contract_info"
            if kind == "futures"
            else r"public\.[A-Z0-9]+-[A-Z0-9]+\.contract_info"
        )

    def handle(self, message: str, session: Session) -> list[str]:
        request = self._json(message)
        if request.get("op") == "pong":
            session.pings += 1
            return []
        topic = request.get("topic")
        if request.get("op") == "sub" and self.contract_info.fullmatch(str(topic)):
            session.liveness = str(topic)
        elif request.get("op") != "sub" or not self.topic.fullmatch(str(topic)):
            raise Violation(f"htx: bad request {message!r}")
        else:
            session.topics.append(request["topic"])
            session.subscribed.set()
        reply = {
            "op": "sub",
            "cid": request.get("cid"),
            "topic": request["topic"],
            "err-code": 0,
            "ts": now_ms(),
        }
        return [dumps(reply)]

    def refusal(self, message: str) -> str | None:
        request = self._json(message)
        if request.get("op") != "sub":
            return None
        coded = self.REFUSALS[self.refusal_kind]
        if coded is None:
            return dumps({"op": "error", "ts": now_ms()})
        code, text = coded
        reply = {
            "op": "sub",
            "cid": request.get("cid"),
            "topic": request.get("topic"),
            "err-code": code,
            "err-msg": text,
            "ts": now_ms(),
        }
        return dumps(reply)

    def ping(self, session: Session) -> str | None:
        return dumps({"op": "ping", "ts": str(now_ms())})

    def liveness_push(self, session: Session) -> str | None:
        # The contract_info snapshot shape recorded in tardis-node test/mappers.test.ts.
        assert session.liveness is not None
        coin = session.liveness.split(".")[1].split("-")[0]
        row = {"symbol": coin, "contract_code": f"{coin}-USDT", "contract_size": 0.001}
        push = {"op": "notify", "topic": session.liveness, "ts": now_ms(), "event": "snapshot"}
        return dumps({**push, "data": [{**row, "price_tick": 0.1, "contract_status": 1}]})

    def encode(self, text: Out) -> Out:
        if isinstance(text, bytes):
            return text  # a recorded binary frame, already gzipped
        return gzip.compress(text.encode())

    def garbage(self, good: Out) -> list[Out]:
        return ["}{ not json at all"]  # gzipped by encode(); a cut gzip stream is tested apart


@dataclass
class Faults:
    """How the fake misbehaves (all off by default)."""

    drop_every: float | None = None  # close every connection after this many seconds
    stall_every: int | None = None  # go silent after this many frames on a connection
    stall_for: float = 2.0
    garbage_every: int | None = None  # garbage after every N good frames
    burst: int = 1  # frames sent back to back between gaps
    gap: float = 0.005
    refuse_subscribe: bool = False  # answer every subscribe with the exchange's error reply
    # Refuse a whole subscribe holding one of these topics; play a frame once it is subscribed.
    bad_topics: frozenset[str] = frozenset()
    # Refuse a message holding a bad topic this many times, then take it (a symbol going live
    # during the session); None: always refuse.
    bad_refusals: int | None = None
    # Close every connection this many seconds after it opened, as a venue does on schedule
    # (Binance at 24 h) or for an upgrade; with notice_before, send the dialect's
    # closing_notice() that long before (OKX: 30 s).
    lifetime: float | None = None
    notice_before: float | None = None
    # With lifetime: close when the test sets this, not when the lifetime ends (the notice
    # still comes at lifetime - notice_before): a test that checks what happens before the
    # close, not how fast a loaded machine gets there.
    end_of_life: asyncio.Event | None = None
    # Seconds the fake takes to answer a connection's opening handshake (a real round trip).
    handshake_delay: float = 0.0
    # Answer handshakes after this many with HTTP 503 (a gateway that takes no new sockets).
    max_connections: int | None = None
    # Ack the liveness channel's subscription but push nothing on it (a gateway that answers
    # pings and acks, and sends no data).
    mute_liveness: bool = False


class FakeExchange:
    """A loopback websocket server playing ``frames`` in the voice of ``dialect``."""

    def __init__(
        self, dialect: Dialect, frames: Iterable[Out] = (), faults: Faults | None = None
    ) -> None:
        self.dialect = dialect
        self.faults = faults or Faults()
        self.pending: deque[Out] = deque(frames)
        self.delivered: list[Out] = []  # good frames sent to an open, subscribed socket
        self.snapshots: list[str] = []  # subscribe-time replays sent
        self.garbage_delivered = 0
        self.connections = 0
        self.handshakes = 0  # opening handshakes received (refused ones too)
        self.rejected_paths: list[str] = []
        self.violations: list[str] = []
        self.sessions: list[Session] = []
        self._server: Server | None = None
        self._garbage_index = 0
        self._open: set[ServerConnection] = set()
        self._refusing_until = 0.0
        self.bad_refused = 0  # subscribes refused for holding a bad topic
        self._subscribed: set[ServerConnection] = set()
        #: Frames of broadcast(), each with how many subscribed sockets it was sent to (0: it
        #: happened while no client was subscribed, and is lost as on a real venue).
        self.broadcasts: list[tuple[Out, int]] = []

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.dialect.path}"

    async def __aenter__(self) -> FakeExchange:
        self._server = await serve(
            self._handle, "127.0.0.1", 0, process_request=self._check_path, compression=None
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def add(self, frames: Iterable[Out]) -> None:
        self.pending.extend(frames)

    async def broadcast(self, frame: Out) -> int:
        """Send ``frame`` now to every subscribed open socket, as a venue publishes an event
        (unlike the queue, which keeps a frame for the next connection); returns how many
        sockets it went to."""
        sent = 0
        for ws in list(self._subscribed):
            with contextlib.suppress(websockets.ConnectionClosed):
                await ws.send(self.dialect.encode(frame))
                sent += 1
        self.broadcasts.append((frame, sent))
        return sent

    async def wait_drained(self, timeout: float = 5.0) -> None:
        """Wait until every queued frame was delivered to a subscribed socket."""
        deadline = time.monotonic() + timeout
        while self.pending:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.dialect.exchange} fake: {len(self.pending)} frames still queued "
                    f"after {timeout} s ({self.connections} connections)"
                )
            await asyncio.sleep(0.01)

    async def outage(self, seconds: float) -> None:
        """Drop every open connection and refuse new ones (HTTP 503) for ``seconds``, as a
        venue restarting its gateway does; returns once the connections are closed."""
        self._refusing_until = time.monotonic() + seconds
        await asyncio.gather(*(ws.close(1012, "fake outage") for ws in list(self._open)))

    async def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.faults.handshake_delay:
            await asyncio.sleep(self.faults.handshake_delay)
        self.handshakes += 1
        limit = self.faults.max_connections
        if limit is not None and self.handshakes > limit:
            return connection.respond(503, "fake: no new connections\n")
        if time.monotonic() < self._refusing_until:
            return connection.respond(503, "fake outage\n")
        if request.path != self.dialect.path:
            self.rejected_paths.append(request.path)
            return connection.respond(404, f"no such endpoint {request.path}\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        self._open.add(ws)
        session = Session(history=self.delivered)
        self.sessions.append(session)
        dialect = self.dialect
        for message in dialect.greeting():
            await ws.send(dialect.encode(message))
        tasks = [asyncio.create_task(self._read(ws, session))]
        if dialect.ping_every is not None:
            tasks.append(asyncio.create_task(self._ping(ws, session, dialect.ping_every)))
        if dialect.liveness_every is not None and not self.faults.mute_liveness:
            every = dialect.liveness_every
            tasks.append(asyncio.create_task(self._push_liveness(ws, session, every)))
        if self.faults.lifetime is not None:
            tasks.append(asyncio.create_task(self._close_at_end_of_life(ws)))
        try:
            if not await _subscribed(ws, session, timeout=5.0):
                return
            self._subscribed.add(ws)
            for message in dialect.snapshot(self.delivered, session):
                await ws.send(dialect.encode(message))
                self.snapshots.append(message)
            await self._play(ws, session)
            await ws.wait_closed()
        except (websockets.ConnectionClosed, TimeoutError):
            pass
        finally:
            self._open.discard(ws)
            self._subscribed.discard(ws)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _read(self, ws: ServerConnection, session: Session) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in ws:
                if session.silent:
                    continue
                text = message if isinstance(message, str) else message.decode()
                refusal = self.dialect.refusal(text) if self.faults.refuse_subscribe else None
                if refusal is None and self.faults.bad_topics and self._refusing_bad():
                    refusal = self.dialect.refuse_topics(text, self.faults.bad_topics)
                    self.bad_refused += refusal is not None
                if refusal is not None:
                    await ws.send(self.dialect.encode(refusal))
                    continue
                try:
                    replies = self.dialect.handle(text, session)
                except Violation as exc:
                    self.violations.append(str(exc))
                    await ws.close(1008, str(exc)[:100])
                    return
                for reply in replies:
                    await ws.send(self.dialect.encode(reply))

    async def _close_at_end_of_life(self, ws: ServerConnection) -> None:
        faults = self.faults
        assert faults.lifetime is not None
        with contextlib.suppress(websockets.ConnectionClosed):
            notice = self.dialect.closing_notice() if faults.notice_before is not None else None
            if notice is not None and faults.notice_before is not None:
                await asyncio.sleep(max(0.0, faults.lifetime - faults.notice_before))
                await ws.send(self.dialect.encode(notice))
                await self._live_on(min(faults.lifetime, faults.notice_before))
            else:
                await self._live_on(faults.lifetime)
            self._subscribed.discard(ws)  # from here on it hears nothing
            await ws.close(1001, "fake end of life")

    async def _live_on(self, seconds: float) -> None:
        """Until a connection's end of life: ``seconds``, or the test's word."""
        if self.faults.end_of_life is not None:
            await self.faults.end_of_life.wait()
        else:
            await asyncio.sleep(seconds)

    def _refusing_bad(self) -> bool:
        limit = self.faults.bad_refusals
        return limit is None or self.bad_refused < limit

    async def _ping(self, ws: ServerConnection, session: Session, every: float) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await asyncio.sleep(every)
                ping = None if session.silent else self.dialect.ping(session)
                if ping is not None:
                    await ws.send(self.dialect.encode(ping))

    async def _push_liveness(self, ws: ServerConnection, session: Session, every: float) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await asyncio.sleep(every)
                if session.liveness is None or session.silent:
                    continue
                push = self.dialect.liveness_push(session)
                if push is not None:
                    await ws.send(self.dialect.encode(push))
                    session.liveness_pushes += 1

    async def _play(self, ws: ServerConnection, session: Session) -> None:
        faults = self.faults
        opened = time.monotonic()
        sent_here = 0
        while self.pending:
            if faults.drop_every is not None and time.monotonic() - opened >= faults.drop_every:
                await ws.close(1012, "fake restart")
                return
            if faults.stall_every is not None and sent_here and sent_here % faults.stall_every == 0:
                session.silent = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ws.wait_closed(), faults.stall_for)
                await ws.close(1001, "fake stall over")
                return
            for _ in range(faults.burst):
                if not self.pending:
                    break
                frame = self.pending[0]
                if faults.bad_topics and self.dialect.topic_of(frame) not in session.topics:
                    if ws.close_code is not None:
                        return  # the client left: waiting on would hold the server open
                    break  # as a venue: nothing of a topic not (yet) subscribed
                await ws.send(self.dialect.encode(frame))
                # Sent while open: it is now the client's; a failed send left it queued.
                self.pending.popleft()
                self.delivered.append(frame)
                sent_here += 1
                if faults.garbage_every and sent_here % faults.garbage_every == 0:
                    await self._send_garbage(ws, frame)
            await asyncio.sleep(faults.gap)

    async def _send_garbage(self, ws: ServerConnection, good: Out) -> None:
        choices = self.dialect.garbage(good)
        junk = choices[self._garbage_index % len(choices)]
        self._garbage_index += 1
        await ws.send(self.dialect.encode(junk))
        self.garbage_delivered += 1


async def _subscribed(ws: ServerConnection, session: Session, timeout: float) -> bool:
    """Wait for a valid subscription; False if the client left (or never subscribed)."""
    waiters = [
        asyncio.create_task(session.subscribed.wait()),
        asyncio.create_task(ws.wait_closed()),
    ]
    await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
    return session.subscribed.is_set()


def dialect_for(connection: str) -> Dialect:
    """The dialect of a connection name of ``purpleflea.ingest.feeds.URLS``."""
    base = connection.split("#", 1)[0]
    table: dict[str, Dialect] = {
        "binance_usdm": Binance("binance_usdm"),
        "binance_coinm": Binance("binance_coinm"),
        "bybit_linear": Bybit("linear"),
        "bybit_inverse": Bybit("inverse"),
        "okx": Okx(),
        "bitmex": Bitmex(),
        "deribit": Deribit(),
        "dydx_v4": Dydx(),
        "kraken_futures": Kraken(),
        "bitget": Bitget(),
        "gate_usdt": Gate("usdt"),
        "gate_btc": Gate("btc"),
        "gate_usd1": Gate("usd1"),
        "htx_linear": Htx("linear"),
        "htx_coin": Htx("coin"),
        "htx_futures": Htx("futures"),
    }
    return table[base]
