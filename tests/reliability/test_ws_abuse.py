"""Hostile WebSocket clients: malformed, oversized and flooding messages.

Each abuser gets a clear error frame and/or close code; the server keeps serving, and a
well-behaved client connected alongside receives every event pushed before and after.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.reliability.conftest import Running, venue_event

pytestmark = pytest.mark.asyncio(loop_scope="module")

# uvicorn's ws_max_size in `purpleflea serve` and the test server.
WS_MAX_SIZE = 65_536


@asynccontextmanager
async def subscriber(live: Running, **filters: object) -> AsyncIterator[ClientConnection]:
    headers = {"Authorization": f"Bearer {live.key}"}
    async with connect(live.ws_url, additional_headers=headers) as ws:
        await ws.send(json.dumps({"op": "subscribe", **filters}))
        assert json.loads(await ws.recv())["type"] == "subscribed"
        yield ws


async def next_liquidation(ws: ClientConnection, timeout: float = 5.0) -> dict[str, object]:
    frame = await next_of_type(ws, "liquidation", timeout)
    data = frame["data"]
    assert isinstance(data, dict)
    return data


async def assert_still_serving(live: Running, bystander: ClientConnection) -> None:
    """The server answers HTTP and the bystander gets a fresh event, with nothing skipped."""
    event = venue_event(market="SOL-PERP")
    await live.push(event)
    while (await next_liquidation(bystander))["id"] != event.id:
        pass  # events the test itself pushed before this one
    async with httpx.AsyncClient(base_url=live.url) as http:
        assert (await http.get("/v1/health")).status_code == 200


async def refused(ws: ClientConnection) -> tuple[str, int | None]:
    """The error code of the server's last frame and the close code."""
    code = ""
    async with asyncio.timeout(5):
        while True:
            try:
                raw = await ws.recv()
            except ConnectionClosed:
                break
            frame = json.loads(raw)
            if frame.get("type") == "error":
                code = frame["code"]
    return code, ws.close_code


async def next_of_type(ws: ClientConnection, kind: str, timeout: float = 5.0) -> dict[str, object]:
    async def read() -> dict[str, object]:
        while True:
            frame: dict[str, object] = json.loads(await ws.recv())
            if frame["type"] == kind:
                return frame

    return await asyncio.wait_for(read(), timeout)


BAD_FIRST_MESSAGES: list[str | bytes] = [
    "not json at all",
    "[1, 2, 3]",
    '"subscribe"',
    "{}",
    '{"op": "unsubscribe"}',
    '{"op": "subscribe", "min_usd": "lots"}',
    '{"op": "subscribe", "min_usd": -5}',
    '{"op": "subscribe", "min_usd": 1e999}',
    '{"op": "subscribe", "channels": ["secrets"]}',
    '{"op": "subscribe", "channels": "liquidations,admin"}',
    '{"op": "subscribe", "sides": ["up"]}',
    '{"op": "subscribe", "exchanges": ["ftx"]}',
    '{"op": "subscribe", "markets": [1, 2]}',
    '{"op": "subscribe", "markets": {"$ne": null}}',
    '{"op": "subscribe", "since_seq": -1}',
    '{"op": "subscribe", "since_seq": "1 OR 1=1"}',
    '{"op": "subscribe", "since_seq": 1e30}',
    '{"op": "subscribe", "admin": true}',
    '{"op": "subscribe", "markets": ["' + "A" * 65 + '"]}',
    json.dumps({"op": "subscribe", "markets": [f"M{i}" for i in range(501)]}),
    b"\x00\xff binary subscribe",
    b'{"op": "subscribe"}',  # right text, wrong frame type
]


@pytest.mark.parametrize("first", BAD_FIRST_MESSAGES, ids=range(len(BAD_FIRST_MESSAGES)))
async def test_a_malformed_subscription_gets_bad_subscription_and_4400(
    shared_server: Running, first: str | bytes
) -> None:
    async with subscriber(shared_server) as bystander:
        headers = {"X-API-Key": shared_server.key}
        async with connect(shared_server.ws_url, additional_headers=headers) as ws:
            await ws.send(first)
            code, close = await refused(ws)
        assert (code, close) == ("bad_subscription", 4400)
        await assert_still_serving(shared_server, bystander)


async def test_an_oversized_message_closes_only_that_client_with_1009(
    shared_server: Running,
) -> None:
    async with subscriber(shared_server) as bystander, subscriber(shared_server) as abuser:
        await abuser.send('{"op":"ping","pad":"' + "x" * WS_MAX_SIZE + '"}')
        await abuser.wait_closed()
        assert abuser.close_code == 1009  # "message too big"
        await assert_still_serving(shared_server, bystander)


async def test_an_oversized_first_message_is_refused_too(shared_server: Running) -> None:
    async with subscriber(shared_server) as bystander:
        headers = {"X-API-Key": shared_server.key}
        async with connect(shared_server.ws_url, additional_headers=headers, max_size=None) as ws:
            await ws.send(json.dumps({"op": "subscribe", "markets": ["A" * (WS_MAX_SIZE + 1)]}))
            await ws.wait_closed()
        assert ws.close_code == 1009
        await assert_still_serving(shared_server, bystander)


async def test_a_flooding_client_is_cut_with_flood_4429(shared_server: Running) -> None:
    async with subscriber(shared_server) as bystander, subscriber(shared_server) as abuser:
        for _ in range(200):
            await abuser.send('{"op":"ping"}')
        code, close = await refused(abuser)
        assert (code, close) == ("flood", 4429)
        await assert_still_serving(shared_server, bystander)


@pytest.mark.parametrize(
    "junk",
    ["not json", '{"op":"subscribe","min_usd":"x"}', "\u0000" * 100, b"\x80\x81binary"],
    ids=["text", "second-subscribe", "nul", "binary"],
)
async def test_junk_after_subscribing_neither_kills_the_stream_nor_the_server(
    shared_server: Running, junk: str | bytes
) -> None:
    async with subscriber(shared_server) as bystander, subscriber(shared_server) as client:
        await client.send(junk)
        await client.send('{"op":"ping"}')  # still answered: the read loop survived
        assert await next_of_type(client, "pong") == {"type": "pong"}
        event = venue_event(market="XRP-PERP")
        await shared_server.push(event)
        assert (await next_liquidation(client))["id"] == event.id
        await assert_still_serving(shared_server, bystander)


async def test_a_client_that_never_subscribes_does_not_block_others(shared_server: Running) -> None:
    headers = {"X-API-Key": shared_server.key}
    async with (
        connect(shared_server.ws_url, additional_headers=headers) as idle,
        subscriber(shared_server) as bystander,
    ):
        await assert_still_serving(shared_server, bystander)
        assert idle.close_code is None
