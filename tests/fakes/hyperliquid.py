"""A fake Hyperliquid on loopback: the documented info endpoint and websocket, fed from given
positions, holding the client to the documented per-IP limits.

- ``POST /info`` answers ``clearinghouseState`` (the account's positions, or none for an
  unknown address) and ``metaAndAssetCtxs`` (marks and open interest), each charged its
  documented weight (2 and 20) against 1200 a minute; over it, HTTP 429 as the real one.
- The websocket (any path) takes ``{"method":"subscribe","subscription":{"type":"trades",
  "coin":..}}`` and ``userEvents`` subscriptions (at most 10 distinct users: more is a
  ``violation``), acks with ``subscriptionResponse``, answers ``{"method":"ping"}`` with
  ``{"channel":"pong"}``, and broadcasts the trades given to :meth:`FakeHyperliquid.trade`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.asyncio.server import Server, ServerConnection, serve

WEIGHT_PER_MINUTE = 1200
WEIGHTS = {"clearinghouseState": 2, "metaAndAssetCtxs": 20}
MAX_USERS = 10


@dataclass
class HeldPosition:
    """One true position, as the fake serves it (coins, USD per coin)."""

    coin: str
    size: float  # signed: negative is short
    entry: float
    liquidation: float | None
    leverage: float = 10
    margin: str = "cross"


@dataclass
class FakeHyperliquid:
    positions: dict[str, list[HeldPosition]] = field(default_factory=dict)
    #: coin -> (mark, open interest in coins)
    markets: dict[str, tuple[float, float]] = field(default_factory=dict)
    requests: list[tuple[float, str, str | None]] = field(default_factory=list)
    rejected: int = 0
    violations: list[str] = field(default_factory=list)
    _spent: deque[tuple[float, int]] = field(default_factory=deque)
    _http: asyncio.Server | None = None
    _ws: Server | None = None
    _subscribers: dict[str, set[ServerConnection]] = field(default_factory=dict)
    _tid: int = 0

    @property
    def info_url(self) -> str:
        assert self._http is not None
        return f"http://127.0.0.1:{self._http.sockets[0].getsockname()[1]}/info"

    @property
    def ws_url(self) -> str:
        assert self._ws is not None
        return f"ws://127.0.0.1:{next(iter(self._ws.sockets)).getsockname()[1]}/ws"

    async def __aenter__(self) -> FakeHyperliquid:
        self._http = await asyncio.start_server(self._handle_http, "127.0.0.1", 0)
        self._ws = await serve(self._handle_ws, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._http is not None
        assert self._ws is not None
        self._ws.close()
        await self._ws.wait_closed()
        self._http.close()
        await self._http.wait_closed()

    # -- info ------------------------------------------------------------------------

    def _mark(self, coin: str) -> float:
        return self.markets[coin][0] if coin in self.markets else 1.0

    def clearinghouse_state(self, user: str) -> dict[str, Any]:
        held = self.positions.get(user.lower(), [])
        return {
            "assetPositions": [
                {
                    "type": "oneWay",
                    "position": {
                        "coin": p.coin,
                        "szi": repr(p.size),
                        "entryPx": repr(p.entry),
                        "positionValue": repr(abs(p.size) * self._mark(p.coin)),
                        "liquidationPx": None if p.liquidation is None else repr(p.liquidation),
                        "leverage": {"type": p.margin, "value": p.leverage},
                        "unrealizedPnl": "0.0",
                    },
                }
                for p in held
            ],
            "time": int(time.time() * 1000),
            "withdrawable": "0.0",
        }

    def meta_and_asset_ctxs(self) -> list[Any]:
        coins = sorted(self.markets)
        return [
            {"universe": [{"name": c, "szDecimals": 5, "maxLeverage": 40} for c in coins]},
            [
                {"markPx": repr(self.markets[c][0]), "openInterest": repr(self.markets[c][1])}
                for c in coins
            ],
        ]

    def _charge(self, weight: int, now: float) -> bool:
        while self._spent and self._spent[0][0] <= now - 60:
            self._spent.popleft()
        if sum(w for _, w in self._spent) + weight > WEIGHT_PER_MINUTE:
            return False
        self._spent.append((now, weight))
        return True

    def _answer(self, body: bytes) -> tuple[bytes, bytes]:
        try:
            request = json.loads(body)
            kind = request["type"]
        except (ValueError, KeyError, TypeError):
            return b"422 Unprocessable Entity", b'"Failed to deserialize the JSON body"'
        now = time.monotonic()
        self.requests.append((now, kind, request.get("user")))
        if kind not in WEIGHTS:
            return b"422 Unprocessable Entity", b'"unknown type"'
        if not self._charge(WEIGHTS[kind], now):
            self.rejected += 1
            return b"429 Too Many Requests", b"null"
        if kind == "clearinghouseState":
            return b"200 OK", json.dumps(self.clearinghouse_state(str(request["user"]))).encode()
        return b"200 OK", json.dumps(self.meta_and_asset_ctxs()).encode()

    async def _handle_http(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:  # keep-alive: httpx reuses the connection
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                if not head.startswith(b"POST /info "):
                    status, answer = b"404 Not Found", b'"not found"'
                else:
                    status, answer = self._answer(body)
                writer.write(
                    b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(answer)).encode() + b"\r\n\r\n" + answer
                )
                await writer.drain()
        writer.close()

    # -- websocket -------------------------------------------------------------------

    async def _handle_ws(self, ws: ServerConnection) -> None:
        try:
            async for message in ws:
                request = json.loads(message)
                if request.get("method") == "ping":
                    await ws.send('{"channel":"pong"}')
                    continue
                subscription = request.get("subscription") or {}
                kind = subscription.get("type")
                if request.get("method") != "subscribe" or kind not in ("trades", "userEvents"):
                    self.violations.append(f"unsupported message: {message!r}")
                    continue
                if kind == "userEvents":
                    users = {
                        k for k, subs in self._subscribers.items() if subs and k[:5] == "user:"
                    }
                    users.add(f"user:{str(subscription.get('user')).lower()}")
                    if len(users) > MAX_USERS:
                        self.violations.append(f"more than {MAX_USERS} users: {subscription}")
                        continue
                key = (
                    f"user:{str(subscription.get('user')).lower()}"
                    if kind == "userEvents"
                    else f"trades:{subscription.get('coin')}"
                )
                self._subscribers.setdefault(key, set()).add(ws)
                await ws.send(
                    json.dumps(
                        {
                            "channel": "subscriptionResponse",
                            "data": {"method": "subscribe", "subscription": subscription},
                        }
                    )
                )
        except websockets.ConnectionClosed:
            pass
        finally:
            for subscribers in self._subscribers.values():
                subscribers.discard(ws)

    async def drop(self) -> None:
        """Close every websocket connection (the client must reconnect and resubscribe)."""
        for ws in {ws for subscribers in self._subscribers.values() for ws in subscribers}:
            await ws.close()

    def subscribed(self, coin: str) -> bool:
        return bool(self._subscribers.get(f"trades:{coin}"))

    def watched(self, user: str) -> bool:
        return bool(self._subscribers.get(f"user:{user.lower()}"))

    async def user_fills(self, user: str, fills: list[dict[str, Any]]) -> None:
        """Send ``userEvents`` fills (channel ``user``) to ``user``'s subscribers."""
        frame = json.dumps({"channel": "user", "data": {"fills": fills}})
        for ws in list(self._subscribers.get(f"user:{user.lower()}", ())):
            with contextlib.suppress(websockets.ConnectionClosed):
                await ws.send(frame)

    async def trade(
        self, coin: str, buyer: str, seller: str, size: float = 0.01, price: float | None = None
    ) -> None:
        """Broadcast one trade between ``buyer`` and ``seller`` (at the mark unless ``price``
        is given) to the coin's subscribers."""
        self._tid += 1
        frame = json.dumps(
            {
                "channel": "trades",
                "data": [
                    {
                        "coin": coin,
                        "side": "B",
                        "px": repr(price if price is not None else self._mark(coin)),
                        "sz": repr(size),
                        "time": int(time.time() * 1000),
                        "hash": f"0x{self._tid:064x}",
                        "tid": self._tid,
                        "users": [buyer, seller],
                    }
                ],
            }
        )
        for ws in list(self._subscribers.get(f"trades:{coin}", ())):
            with contextlib.suppress(websockets.ConnectionClosed):
                await ws.send(frame)
