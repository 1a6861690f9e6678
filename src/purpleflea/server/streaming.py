"""The stream endpoints: WebSocket ``/v1/stream`` and Server-Sent Events ``/v1/stream/sse``.

WebSocket protocol (JSON text frames):

- connect with the key in ``Authorization: Bearer``, ``X-API-Key`` or ``?api_key=``;
- send ``{"op": "subscribe", "channels": ["liquidations", "cascades"], "min_usd": 100000,
  "markets": ["BTC-PERP"], "exchanges": [...], "sides": ["long"], "since_seq": 123}``
  (every field optional; ``since_seq`` resumes: everything after it is replayed from storage,
  then the live feed follows with no gap and no duplicate);
- receive ``{"type": "subscribed", "seq": N, "filters": {...}}``, then
  ``{"type": "liquidation", "data": {...}}``, ``{"type": "cascade", "data": {...}}`` and
  ``{"type": "heartbeat", "seq": N, "ts": ms}`` (every seq up to N was sent or filtered out,
  so resuming from the last heartbeat's seq misses nothing);
- errors arrive as ``{"type": "error", "code": ..., "message": ...}`` followed by a close:
  ``missing_api_key``/``invalid_api_key`` (4401), ``key_revoked`` (4403), ``bad_subscription``
  (4400), ``slow_consumer`` (4008), ``flood`` (4429), ``server_shutdown`` (1001).
- ``{"op": "ping"}`` is answered with ``{"type": "pong"}``;
- with ``"batch": true`` in the subscribe message, events that are already waiting when one
  is sent arrive together as ``{"type": "batch", "items": [frame, ...]}`` (each item a
  ``liquidation`` or ``cascade`` frame, in seq order): one frame per write instead of one per
  event, which is what keeps a busy stream cheap. The SDK asks for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from purpleflea.bus.base import Bus, Subscription, SubscriptionClosed
from purpleflea.model import encode
from purpleflea.server import http
from purpleflea.server.auth import AuthError, Gate, key_from
from purpleflea.server.feed import client_feed
from purpleflea.server.filters import BadSubscription, StreamFilter, parse_filter
from purpleflea.server.pipeline import Tracker

log = logging.getLogger("purpleflea.stream")

#: The WebSocket close code of each reason a stream ends (the OpenAPI document lists them).
CLOSE_CODES = {
    "missing_api_key": 4401,
    "invalid_api_key": 4401,
    "key_revoked": 4403,
    "bad_subscription": 4400,
    "slow_consumer": 4008,
    "flood": 4429,
    "server_shutdown": 1001,
}
_MAX_INBOUND_PER_S = 20
_SUBSCRIBE_TIMEOUT_S = 10.0
_SEND_TIMEOUT_S = 1.0
#: Items one batch frame may carry (clients that subscribe with "batch": true).
_MAX_BATCH = 500
_SLOW_REASON_TIMEOUT_S = 10.0
#: A resume point from an SSE client: empty (none) or a seq of at most 18 digits.
_LAST_EVENT_ID = re.compile(r"[0-9]{0,18}")


def _closed_code(bus_reason: str) -> str:
    return "slow_consumer" if bus_reason.startswith("slow consumer") else "server_shutdown"


async def _receive_text(ws: WebSocket) -> str | None:
    """The next client message's text, None for a binary frame (``receive_text`` would fail
    on one with a KeyError, killing the connection without a close reason)."""
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text: str | None = message.get("text")
    return text


def _error(code: str, message: str) -> str:
    return encode({"type": "error", "code": code, "message": message}).decode()


class Streams:
    """The two stream endpoints over one tracker, bus and gate."""

    def __init__(
        self,
        *,
        tracker: Tracker,
        bus: Bus,
        gate: Gate,
        known_exchanges: tuple[str, ...],
        heartbeat_s: float,
        client_buffer: int,
    ) -> None:
        self.tracker = tracker
        self.bus = bus
        self.gate = gate
        self.known_exchanges = known_exchanges
        self.heartbeat_s = heartbeat_s
        self.client_buffer = client_buffer
        self.closed: dict[str, int] = {}
        self.shutting_down = asyncio.Event()

    def _count(self, reason: str) -> None:
        self.closed[reason] = self.closed.get(reason, 0) + 1

    # -- WebSocket ---------------------------------------------------------------------------

    async def websocket(self, ws: WebSocket) -> None:
        await ws.accept()
        try:
            info = self.gate.authenticate(key_from(ws.headers, ws.query_params))
        except AuthError as exc:
            await self._refuse(ws, exc.code, exc.message)
            return
        try:
            wanted, batch = await self._read_subscription(ws)
        except BadSubscription as exc:
            await self._refuse(ws, "bad_subscription", str(exc))
            return
        except (WebSocketDisconnect, TimeoutError):
            with contextlib.suppress(Exception):
                await ws.close()
            return
        reason: list[str] = []
        sender = asyncio.current_task()

        def kick(why: str) -> None:
            """Stop this stream from outside its send loop (revocation, flood, slow)."""
            if not reason:
                reason.append(why)
                if sender is not None:
                    sender.cancel()

        self.gate.streams.add(info.key_id, kick)
        subscription = self.bus.subscribe(self.client_buffer)
        helpers = [
            asyncio.create_task(self._read_loop(ws, kick)),
            asyncio.create_task(self._watch(subscription, kick)),
        ]
        try:
            await self._send_loop(ws, wanted, batch, subscription, reason)
        except asyncio.CancelledError:
            if not reason:
                raise
        except (WebSocketDisconnect, RuntimeError, OSError):
            reason.append("client_disconnected")
        finally:
            subscription.close()
            self.gate.streams.remove(info.key_id, kick)
            for helper in helpers:
                helper.cancel()
            for helper in helpers:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await helper
        why = reason[0] if reason else "client_disconnected"
        self._count(why)
        if why in CLOSE_CODES:
            await self._refuse(ws, why, self._explain(why))

    @staticmethod
    async def _watch(subscription: Subscription, kick: Callable[[str], None]) -> None:
        """Notice a subscription the bus closed while the send loop is blocked on a socket
        that the client does not read."""
        while subscription.closed_reason is None:
            await asyncio.sleep(0.1)
        kick(_closed_code(subscription.closed_reason))

    def _explain(self, why: str) -> str:
        if why == "slow_consumer":
            return (
                f"slow consumer: more than {self.client_buffer} messages were waiting for this "
                "client; reconnect with since_seq to resume"
            )
        if why == "key_revoked":
            return "the API key of this stream was revoked"
        if why == "flood":
            return f"more than {_MAX_INBOUND_PER_S} client messages per second"
        if why == "server_shutdown":
            return "the server is shutting down; reconnect with since_seq to resume"
        return why

    async def _refuse(self, ws: WebSocket, code: str, message: str) -> None:
        # A slow consumer's socket is full: its reason queues behind what it was already
        # sent, so give it as long as a slow (not dead) reader needs to get there.
        deadline = _SLOW_REASON_TIMEOUT_S if code == "slow_consumer" else _SEND_TIMEOUT_S
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.send_text(_error(code, message)), deadline)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                ws.close(code=CLOSE_CODES.get(code, 1000), reason=code), _SEND_TIMEOUT_S
            )

    async def _read_subscription(self, ws: WebSocket) -> tuple[StreamFilter, int]:
        """The client's filters, and how many items one frame may carry (1: no batching)."""
        text = await asyncio.wait_for(_receive_text(ws), _SUBSCRIBE_TIMEOUT_S)
        if text is None:
            raise BadSubscription("the first message must be a JSON text frame, not binary")
        try:
            message = msgspec.json.decode(text)
        except msgspec.DecodeError:
            raise BadSubscription("the first message must be a JSON subscribe object") from None
        if not isinstance(message, dict) or message.pop("op", None) != "subscribe":
            raise BadSubscription('the first message must be {"op": "subscribe", ...}')
        batch = message.pop("batch", False)
        if not isinstance(batch, bool):
            raise BadSubscription(f"batch must be true or false, got {batch!r}")
        wanted = parse_filter(message, known_exchanges=self.known_exchanges)
        return wanted, _MAX_BATCH if batch else 1

    async def _read_loop(self, ws: WebSocket, kick: Callable[[str], None]) -> None:
        window_start = time.monotonic()
        count = 0
        while True:
            text = await _receive_text(ws) or ""  # a binary frame counts, and is ignored
            now = time.monotonic()
            if now - window_start >= 1.0:
                window_start, count = now, 0
            count += 1
            if count > _MAX_INBOUND_PER_S:
                kick("flood")
                return
            if text.strip() in ('{"op":"ping"}', '{"op": "ping"}'):
                await ws.send_text('{"type":"pong"}')

    async def _send_loop(
        self,
        ws: WebSocket,
        wanted: StreamFilter,
        batch: int,
        subscription: Subscription,
        reason: list[str],
    ) -> None:
        start_seq = self.tracker.last_seq
        subscribed = {
            "type": "subscribed",
            "seq": start_seq,
            "filters": wanted.describe(),
            "batch": batch > 1,
        }
        await ws.send_text(encode(subscribed).decode())
        feed = client_feed(
            self.tracker.store,
            subscription,
            wanted,
            start_seq=start_seq,
            heartbeat_s=self.heartbeat_s,
            batch=batch,
        )
        try:
            async for item in feed:
                await ws.send_text(item.data.decode())
        except SubscriptionClosed as exc:
            if not reason:
                reason.append(_closed_code(exc.reason))

    # -- Server-Sent Events ------------------------------------------------------------------

    async def sse(self, request: Request) -> Response:
        try:
            info = self.gate.authenticate(key_from(request.headers, request.query_params))
            fields: dict[str, Any] = {
                k: v for k, v in request.query_params.items() if k != "api_key"
            }
            last_event = request.headers.get("last-event-id", "")
            # Checked even when since_seq wins: a malformed header is refused, never ignored.
            if not _LAST_EVENT_ID.fullmatch(last_event):
                raise BadSubscription(f"Last-Event-ID must be a seq, got {last_event[:40]!r}")
            if last_event and "since_seq" not in fields:
                fields["since_seq"] = last_event
            wanted = parse_filter(fields, known_exchanges=self.known_exchanges)
        except AuthError as exc:
            return http.refusal(exc)
        except BadSubscription as exc:
            return http.error_response(400, "bad_subscription", str(exc))
        return StreamingResponse(
            self._sse_body(info.key_id, wanted),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _sse_body(self, key_id: str, wanted: StreamFilter) -> AsyncIterator[bytes]:
        subscription = self.bus.subscribe(self.client_buffer)
        reason: list[str] = []

        def kick(why: str) -> None:
            reason.append(why)
            subscription.close(why)

        self.gate.streams.add(key_id, kick)
        start_seq = self.tracker.last_seq
        try:
            feed = client_feed(
                self.tracker.store,
                subscription,
                wanted,
                start_seq=start_seq,
                heartbeat_s=self.heartbeat_s,
            )
            yield b"retry: 1000\n\n"
            async for item in feed:
                yield b"id: %d\nevent: %s\ndata: %s\n\n" % (
                    item.seq,
                    item.kind.encode(),
                    item.data,
                )
        except SubscriptionClosed as exc:
            why = (
                reason[0]
                if reason
                else (
                    "slow_consumer" if exc.reason.startswith("slow consumer") else "server_shutdown"
                )
            )
            self._count(why)
            yield b"event: error\ndata: %s\n\n" % _error(why, self._explain(why)).encode()
        finally:
            self.gate.streams.remove(key_id, kick)
            subscription.close()

    async def plain_http(self, request: Request) -> Response:
        """A plain HTTP request to the WebSocket endpoint. After the key checks every request
        gets, 426 says to upgrade (RFC 9110 15.5.22), where a 404 would say there is no stream."""
        try:
            self.gate.limit(self.gate.authenticate(key_from(request.headers, request.query_params)))
        except AuthError as exc:
            return http.refusal(exc)
        return http.error_response(
            426,
            "upgrade_required",
            f"{request.url.path} is a WebSocket: connect with Upgrade: websocket "
            "(see /openapi.json)",
            {"Upgrade": "websocket", "Connection": "Upgrade"},
        )

    def routes(self) -> list[Route | WebSocketRoute]:
        return [
            WebSocketRoute("/v1/stream", self.websocket),
            Route("/v1/stream", self.plain_http),
            Route("/v1/stream/sse", self.sse),
        ]
