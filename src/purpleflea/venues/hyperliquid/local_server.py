"""A local Hyperliquid on loopback: the documented info endpoint and websocket, serving the
positions a subclass holds, and holding its client to Hyperliquid's documented per-IP limits.

What it speaks (Hyperliquid docs, "For developers > API": info endpoint, websocket
subscriptions, rate limits and user limits):

- ``POST /info`` answers ``clearinghouseState`` (the account's positions, or none for an
  unknown address), ``metaAndAssetCtxs`` (marks and open interest) and ``perpDexs`` (the perp
  dexes), each charged its documented weight (2, 20 and 20) against 1200 a minute; over it,
  HTTP 429 as the real one. The first two answer for one perp dex, as the real ones: the
  first (coins without a prefix) unless the request names a ``dex``, whose coins are
  ``dex:COIN`` (HIP-3); ``metaAndAssetCtxs`` of a dex :meth:`LocalHyperliquid.perp_dexs` does
  not list is ``null``.
- The websocket (any path) takes ``{"method":"subscribe","subscription":{"type":"trades",
  "coin":..}}`` and ``userEvents`` subscriptions (at most 10 distinct users: more is a
  ``violation``), acks with ``subscriptionResponse``, answers ``{"method":"ping"}`` with
  ``{"channel":"pong"}``, and sends :meth:`LocalHyperliquid.trades` to the coin's subscribers
  and :meth:`LocalHyperliquid.user_fills` (channel ``user``) to the user's.

Both listen on ephemeral loopback ports bound at construction, so their URLs are known before
anything is served. Subclasses say what is held: :meth:`held` and :meth:`contexts`. The
simulated market's share (:mod:`purpleflea.venues.hyperliquid.simulated`) is one; the tests'
fake, holding what a test puts in, is another.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import socket
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.asyncio.server import Server, ServerConnection, serve

from purpleflea.venues.hyperliquid.normalizer import perp_dex

# Hyperliquid docs, "Rate limits and user limits": "REST requests share an aggregated weight
# limit of 1200 per minute"; clearinghouseState weighs 2, "all other documented info requests
# have weight 20"; "Maximum of 10 unique users across user-specific websocket subscriptions";
# "Maximum of 10 websocket connections"; "Maximum of 30 new websocket connections per minute".
WEIGHT_PER_MINUTE = 1200
WEIGHTS = {"clearinghouseState": 2, "metaAndAssetCtxs": 20, "perpDexs": 20}
MAX_USERS = 10
MAX_CONNECTIONS = 10
MAX_NEW_CONNECTIONS_PER_MINUTE = 30
_KEEP_REQUESTS = 10_000

# The sampler opens and closes a watch connection each time the riskiest accounts change: the
# websockets library's line per connection would drown the server's log.
_log = logging.getLogger("purpleflea.venues.local_hyperliquid")
_log.setLevel(logging.WARNING)


@dataclass
class HeldPosition:
    """One position as served: ``coin`` (Hyperliquid's name), ``size`` in its units, signed
    (negative: short), entry and liquidation prices per unit (None: cannot be liquidated)."""

    coin: str
    size: float
    entry: float
    liquidation: float | None
    leverage: float = 10
    margin: str = "cross"


def _set_leverage(leverage: float) -> int:
    """The leverage the venue reports: the account's setting, a whole number (Hyperliquid's
    ``updateLeverage`` takes an integer). A position held at a continuous leverage such as
    11.7 is one opened at 12x with margin added; its margin and liquidation price stay the
    position's own."""
    return max(1, math.ceil(leverage - 1e-9))


def _listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class LocalHyperliquid:
    """The documented protocol over what :meth:`held` and :meth:`contexts` say; an async
    context manager (or :meth:`start` / :meth:`close`)."""

    def __init__(self) -> None:
        #: (monotonic time, request type, user) of the latest requests.
        self.requests: deque[tuple[float, str, str | None]] = deque(maxlen=_KEEP_REQUESTS)
        self.rejected = 0
        self.violations: list[str] = []
        self._spent: deque[tuple[float, int]] = deque()
        self._subscribers: dict[str, set[ServerConnection]] = {}
        self._open: set[ServerConnection] = set()
        #: Monotonic times the websocket connections of the last minute were opened.
        self._opened: deque[float] = deque()
        self._tid = 0
        self._http_sock = _listen()
        self._ws_sock = _listen()
        self._http: asyncio.Server | None = None
        self._ws: Server | None = None

    # -- what is held (subclasses) -----------------------------------------------------

    def held(self, user: str) -> Sequence[HeldPosition]:
        """The open positions of ``user`` (lowercase address)."""
        del user
        return ()

    def contexts(self) -> Mapping[str, tuple[float, float]]:
        """coin -> (mark price, open interest in coins), the listed perpetuals."""
        return {}

    def perp_dexs(self) -> Sequence[str]:
        """The perp dexes, ``""`` (the first) first, then the builder dexes of
        :meth:`contexts`' coins."""
        return ["", *sorted({perp_dex(coin) for coin in self.contexts()} - {""})]

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def info_url(self) -> str:
        return f"http://127.0.0.1:{self._http_sock.getsockname()[1]}/info"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self._ws_sock.getsockname()[1]}/ws"

    async def start(self) -> None:
        self._http = await asyncio.start_server(self._handle_http, sock=self._http_sock)
        self._ws = await serve(self._handle_ws, sock=self._ws_sock, logger=_log)

    async def close(self) -> None:
        if self._ws is not None:
            self._ws.close()
            await self._ws.wait_closed()
        if self._http is not None:
            self._http.close()
            await self._http.wait_closed()
        self._http_sock.close()
        self._ws_sock.close()

    async def __aenter__(self) -> LocalHyperliquid:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- info ------------------------------------------------------------------------

    def _mark(self, coin: str) -> float:
        known = self.contexts().get(coin)
        return known[0] if known else 1.0

    def clearinghouse_state(self, user: str, dex: str = "") -> dict[str, Any]:
        held = [p for p in self.held(user.lower()) if perp_dex(p.coin) == dex]
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
                        "leverage": {"type": p.margin, "value": _set_leverage(p.leverage)},
                        "marginUsed": repr(abs(p.size) * p.entry / p.leverage),
                        "unrealizedPnl": "0.0",
                    },
                }
                for p in held
            ],
            "time": int(time.time() * 1000),
            "withdrawable": "0.0",
        }

    def perp_dexs_answer(self) -> list[Any]:
        """``perpDexs``: ``null`` for the first dex, then one object per builder dex (docs,
        info endpoint > Perpetuals, "Retrieve all perpetual dexs")."""
        return [
            None if not dex else {"name": dex, "fullName": f"{dex} dex", "oracleUpdater": None}
            for dex in self.perp_dexs()
        ]

    def meta_and_asset_ctxs(self, dex: str = "") -> list[Any] | None:
        # A dex the venue does not know is answered null (df-hyperliquid-core's
        # markets/dexes/dex.rs: "An unknown dex answers `null`").
        if dex not in self.perp_dexs():
            return None
        known = self.contexts()
        coins = sorted(coin for coin in known if perp_dex(coin) == dex)
        return [
            {"universe": [{"name": c, "szDecimals": 5, "maxLeverage": 40} for c in coins]},
            [{"markPx": repr(known[c][0]), "openInterest": repr(known[c][1])} for c in coins],
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
        dex = str(request.get("dex") or "")
        if kind == "clearinghouseState":
            answer: Any = self.clearinghouse_state(str(request["user"]), dex)
        elif kind == "perpDexs":
            answer = self.perp_dexs_answer()
        else:
            answer = self.meta_and_asset_ctxs(dex)
        return b"200 OK", json.dumps(answer).encode()

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

    def _users(self) -> set[str]:
        return {key for key, subs in self._subscribers.items() if subs and key[:5] == "user:"}

    def _count_connection(self, ws: ServerConnection) -> None:
        """Count a new connection against the per-IP caps (a violation past either)."""
        now = time.monotonic()
        while self._opened and self._opened[0] <= now - 60.0:
            self._opened.popleft()
        if len(self._open) >= MAX_CONNECTIONS:
            self.violations.append(f"more than {MAX_CONNECTIONS} websocket connections")
        if len(self._opened) >= MAX_NEW_CONNECTIONS_PER_MINUTE:
            self.violations.append(
                f"more than {MAX_NEW_CONNECTIONS_PER_MINUTE} new websocket connections a minute"
            )
        self._opened.append(now)
        self._open.add(ws)

    async def _handle_ws(self, ws: ServerConnection) -> None:
        self._count_connection(ws)
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
                    key = f"user:{str(subscription.get('user')).lower()}"
                    if len(self._users() | {key}) > MAX_USERS:
                        self.violations.append(f"more than {MAX_USERS} users: {subscription}")
                        continue
                else:
                    key = f"trades:{subscription.get('coin')}"
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
            self._open.discard(ws)
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

    def watched_users(self) -> set[str]:
        """The users someone subscribed ``userEvents`` of (lowercase)."""
        return {key[5:] for key in self._users()}

    async def _send(self, key: str, frame: str) -> None:
        for ws in list(self._subscribers.get(key, ())):
            with contextlib.suppress(websockets.ConnectionClosed):
                await ws.send(frame)

    async def user_fills(self, user: str, fills: list[dict[str, Any]]) -> None:
        """Send ``userEvents`` fills (channel ``user``) to ``user``'s subscribers."""
        frame = json.dumps({"channel": "user", "data": {"fills": fills}})
        await self._send(f"user:{user.lower()}", frame)

    def next_tid(self) -> int:
        self._tid += 1
        return self._tid

    async def trades(self, coin: str, trades: Sequence[tuple[str, str, float, float, int]]) -> None:
        """Send one ``trades`` message of ``coin``: each trade ``(buyer, seller, size, price,
        time ms)`` with both addresses in ``users``, as Hyperliquid's ``trades`` channel."""
        if not trades or not self.subscribed(coin):
            return
        data = []
        for buyer, seller, size, price, ts in trades:
            tid = self.next_tid()
            data.append(
                {
                    "coin": coin,
                    "side": "B",
                    "px": repr(price),
                    "sz": repr(size),
                    "time": ts,
                    "hash": f"0x{tid:064x}",
                    "tid": tid,
                    "users": [buyer, seller],
                }
            )
        await self._send(f"trades:{coin}", json.dumps({"channel": "trades", "data": data}))

    async def trade(
        self, coin: str, buyer: str, seller: str, size: float = 0.01, price: float | None = None
    ) -> None:
        """Broadcast one trade between ``buyer`` and ``seller`` (at the mark unless ``price``
        is given) to the coin's subscribers."""
        px = price if price is not None else self._mark(coin)
        await self.trades(coin, [(buyer, seller, size, px, int(time.time() * 1000))])
