"""A stream the server counts as open gets every event published from that moment on.

The server counts a WebSocket stream open (its account's slot, ``open_for``) as soon as the
key is checked, before the client's subscribe message arrives; the live feed used to start
where the tracker was when that message was read. An event published in between was never
sent: the subscribed frame's seq was already past it. A test that waited for ``open_for == 1``
and then published (tests/server/test_sdk_sync_stream_with.py) waited for good under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from purpleflea.server.streaming import EventStream
from tests.server.conftest import Running, make_config, running_server, until, venue_event


async def _frames_until_liquidation(ws: ClientConnection, timeout: float) -> list[dict[str, Any]]:
    """Frames up to the first liquidation (or all that came within ``timeout`` seconds)."""
    frames: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not frames or frames[-1]["type"] != "liquidation":
        left = deadline - loop.time()
        if left <= 0:
            break
        try:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
        except TimeoutError:
            break
    return frames


async def _published_while_open_not_subscribed(
    live: Running, workers: int = 0
) -> tuple[int, list[dict[str, Any]]]:
    """Connect, wait until the server counts the stream open, publish one event, then
    subscribe: the live seq before the event, and the frames up to the first liquidation
    (the stream written by one of ``workers`` stream worker processes when there are any)."""
    async with connect(live.ws_url, additional_headers={"X-API-Key": live.key}) as ws:
        # Counted open, not subscribed yet: the window the lost event fell into.
        await until(lambda: live.server.gate.streams.open_for("tester") == 1, 10, "admission")
        before = live.server.tracker.last_seq
        await live.push(venue_event(market="ETH-PERP"))
        await ws.send(json.dumps({"op": "subscribe"}))
        frames = await _frames_until_liquidation(ws, 5)
        if workers:
            handed = live.server.streams.workers
            assert handed is not None
            assert sum(handed.streams().values()) == 1  # a worker writes it
    return before, frames


async def test_an_event_published_after_a_stream_counts_open_reaches_it(live: Running) -> None:
    before, frames = await _published_while_open_not_subscribed(live)
    assert frames[0]["type"] == "subscribed"
    assert frames[0]["seq"] == before  # the client resumes from where it was counted open
    liquidations = [f["data"] for f in frames if f["type"] == "liquidation"]
    assert [(e["market"], e["seq"]) for e in liquidations] == [("ETH-PERP", before + 1)]


@pytest.mark.timeout(120)
async def test_so_it_does_on_a_stream_worker(tmp_path: Path) -> None:
    # The worker went on from the seq it had read, past the event main had counted it open for.
    async with running_server(make_config(tmp_path, stream_workers=2)) as live:
        before, frames = await _published_while_open_not_subscribed(live, workers=2)
    assert frames[0]["type"] == "subscribed"
    assert frames[0]["seq"] == before
    liquidations = [f["data"] for f in frames if f["type"] == "liquidation"]
    assert [e["seq"] for e in liquidations] == [before + 1]


async def test_so_it_does_on_sse_when_the_event_comes_before_its_subscription(
    live: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SSE admits in the request handler and subscribes once its response runs: publish there.
    run = EventStream._run
    published: list[int] = []

    async def run_late(self: EventStream, scope: Any, receive: Any, send: Any) -> str:
        assert live.server.gate.streams.open_for("tester") == 1  # counted open already
        published.append(live.server.tracker.last_seq)
        await live.push(venue_event(market="ETH-PERP"))
        return await run(self, scope, receive, send)

    monkeypatch.setattr(EventStream, "_run", run_late)
    seqs: list[int] = []
    async with (
        httpx.AsyncClient(base_url=live.url, timeout=10) as http,
        http.stream("GET", "/v1/stream/sse", params={"api_key": live.key}) as response,
    ):
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                async for line in response.aiter_lines():
                    if line.startswith('data: {"type":"liquidation"'):
                        seqs.append(json.loads(line[6:])["data"]["seq"])
                        break
    assert seqs == [published[0] + 1]
