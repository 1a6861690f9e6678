"""The stream: filters, resume without gaps or duplicates, bad subscriptions, slow consumers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time

import httpx
import pytest
from websockets.asyncio.client import connect

import purpleflea
from purpleflea.client import BadRequestError
from purpleflea.model import Liquidation
from tests.server.conftest import Running, make_config, running_server, venue_event


async def _collect(
    stream: purpleflea.Stream, count: int, timeout: float = 10.0
) -> list[Liquidation]:
    got: list[Liquidation] = []

    async def read() -> None:
        async for item in stream:
            if isinstance(item, Liquidation):
                got.append(item)
                if len(got) >= count:
                    return

    await asyncio.wait_for(read(), timeout)
    return got


async def test_sdk_stream_filters_on_the_server(live: Running) -> None:
    client = purpleflea.LiquidationClient(api_key=live.key, base_url=live.url)
    async with client.stream(min_usd=100_000, markets=["ETH-PERP"], sides="short") as stream:
        await live.push(
            venue_event(market="ETH-PERP", side="short", size_usd=50_000),
            venue_event(market="BTC-PERP", side="short", size_usd=500_000),
            venue_event(market="ETH-PERP", side="long", size_usd=500_000),
            venue_event(market="ETH-PERP", side="short", size_usd=250_000),
        )
        [event] = await _collect(stream, 1)
    assert (event["market"], event["side"], event["size_usd"]) == ("ETH-PERP", "short", 250_000)
    assert isinstance(event["cascade_score"], int)


async def test_resume_after_disconnect_gets_every_missed_event_once_in_order(
    live: Running,
) -> None:
    client = purpleflea.LiquidationClient(api_key=live.key, base_url=live.url)
    async with client.stream() as stream:
        await live.push(*[venue_event() for _ in range(10)])
        first = await _collect(stream, 10)
        cursor = stream.last_seq
    # Disconnected: events keep flowing.
    await live.push(*[venue_event() for _ in range(25)])
    async with client.stream(since_seq=cursor) as stream:
        await live.push(*[venue_event() for _ in range(5)])
        rest = await _collect(stream, 30)
    seqs = [e.seq for e in first + rest]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 40
    stored = await live.server.store.since(0, 1000)
    assert [e.seq for e in stored] == seqs


async def test_sdk_reconnects_by_itself_when_the_connection_drops(live: Running) -> None:
    client = purpleflea.LiquidationClient(api_key=live.key, base_url=live.url)
    async with client.stream(max_backoff=0.2) as stream:
        await live.push(*[venue_event() for _ in range(3)])
        got = await _collect(stream, 3)
        assert stream._ws is not None
        await stream._ws.close()  # the network drops the connection
        await live.push(*[venue_event() for _ in range(7)])
        got += await _collect(stream, 7)
    assert stream.reconnects == 1
    assert [e.seq for e in got] == sorted({e.seq for e in got})
    assert len(got) == 10


async def test_stream_filters_take_known_names_in_any_case(live: Running) -> None:
    """``exchanges=["BYBIT"]`` was refused as unknown; the SDK, the WebSocket and SSE now take
    it (and ``sides``, ``coverages``) as the ids events carry, and say so in the ack."""
    client = purpleflea.LiquidationClient(api_key=live.key, base_url=live.url)
    async with client.stream(exchanges=["BYBIT"], sides="Short", coverages="COMPLETE") as stream:
        await live.push(
            venue_event(exchange="okx", side="short"),
            venue_event(exchange="bybit", side="long"),
            venue_event(exchange="bybit", side="short", size_usd=123_000),
        )
        [event] = await _collect(stream, 1)
    assert (event["exchange"], event["side"], event["size_usd"]) == ("bybit", "short", 123_000)
    headers = {"Authorization": f"Bearer {live.key}"}
    async with connect(live.ws_url, additional_headers=headers) as ws:
        await ws.send(json.dumps({"op": "subscribe", "exchanges": ["Binance_USDM", "OKX"]}))
        ack = json.loads(await ws.recv())
        assert ack["type"] == "subscribed", ack
        assert ack["filters"]["exchanges"] == ["binance_usdm", "okx"]
    async with (
        httpx.AsyncClient(base_url=live.url, headers=headers) as http,
        http.stream("GET", "/v1/stream/sse", params={"exchanges": "Binance"}) as refused,
    ):
        assert refused.status_code == 400
        assert "unknown exchange(s) Binance" in (await refused.aread()).decode()


async def test_bad_subscription_is_refused_with_a_clear_error(live: Running) -> None:
    headers = {"Authorization": f"Bearer {live.key}"}
    for message, word in [
        ({"op": "subscribe", "min_usd": "lots"}, "min_usd"),
        ({"op": "subscribe", "channels": ["trades"]}, "channel"),
        ({"op": "subscribe", "sides": ["up"]}, "sides"),
        ({"op": "subscribe", "exchanges": ["nyse"]}, "exchange"),
        # An exchange symbol waited forever for an event no market name can match.
        ({"op": "subscribe", "markets": ["BTC-PERP", "BTCUSDT"]}, "'BTCUSDT' is not a market"),
        ({"op": "subscribe", "colour": "red"}, "colour"),
        ({"op": "subscribe", "since_seq": -3}, "since_seq"),
        ({"op": "listen"}, "subscribe"),
        # The server's own frames say "type": a subscribe written so was told only the
        # expected shape, not what in it was wrong.
        ({"type": "subscribe", "markets": ["BTC-PERP"]}, 'got no "op" but "type": "subscribe"'),
        ({"op": "Subscribe"}, "got \"op\": 'Subscribe'"),
        (["subscribe"], "got a JSON array"),
    ]:
        async with connect(live.ws_url, additional_headers=headers) as ws:
            await ws.send(json.dumps(message))
            error = json.loads(await ws.recv())
            assert error["type"] == "error"
            assert error["code"] == "bad_subscription"
            assert word in error["message"], error
            await ws.wait_closed()
            assert ws.close_code == 4400
    client = purpleflea.LiquidationClient(api_key=live.key, base_url=live.url)
    with pytest.raises(BadRequestError, match="min_usd"):
        async with client.stream(min_usd=-5):
            pass


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
async def test_a_min_usd_that_is_no_number_is_refused_by_its_value(
    live: Running, value: float
) -> None:
    # The SDK encoded a NaN min_usd as JSON null: the stream was refused with "min_usd must
    # be a number, got None" (the CLI's `tail --min-usd nan` said the same), and
    # create_webhook(min_usd=inf) failed in the JSON encoder with "Out of range float values
    # are not JSON compliant", naming no argument. history(min_usd=nan) said what was wrong.
    client = purpleflea.LiquidationClient(api_key=live.key, base_url=live.url)
    wanted = f"min_usd must be a finite number >= 0, got '{value}'"
    with pytest.raises(BadRequestError) as refused:
        await _collect(client.stream(min_usd=value), 1)
    assert str(refused.value) == wanted
    with pytest.raises(BadRequestError) as refused:
        await client.create_webhook("https://example.com/pf", min_usd=value)
    assert wanted in str(refused.value)
    with pytest.raises(BadRequestError) as refused:
        await client.history(min_usd=value)
    assert wanted in str(refused.value)
    await client.aclose()


async def test_heartbeats_advance_the_cursor_past_filtered_events(live: Running) -> None:
    headers = {"Authorization": f"Bearer {live.key}"}
    async with connect(live.ws_url, additional_headers=headers) as ws:
        await ws.send(json.dumps({"op": "subscribe", "min_usd": 10**9}))
        assert json.loads(await ws.recv())["type"] == "subscribed"
        await live.push(*[venue_event() for _ in range(3)])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            frame = json.loads(await ws.recv())
            assert frame["type"] == "heartbeat"
            if frame["seq"] == live.server.tracker.last_seq:
                break
        else:
            pytest.fail("no heartbeat carried the latest seq")


async def test_sse_stream_with_filters_and_last_event_id(live: Running) -> None:
    await live.push(*[venue_event(size_usd=1_000.0 * (i + 1)) for i in range(6)])
    params = {"api_key": live.key, "min_usd": "3000", "since_seq": "0"}
    lines: list[str] = []
    async with httpx.AsyncClient(base_url=live.url, timeout=5) as http:
        async with http.stream("GET", "/v1/stream/sse", params=params) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                lines.append(line)
                if sum(x.startswith('data: {"type":"liquidation"') for x in lines) == 4:
                    break
        data = [json.loads(x[6:]) for x in lines if x.startswith("data: ")]
        sizes = [d["data"]["size_usd"] for d in data if d.get("type") == "liquidation"]
        assert sizes == [3000.0, 4000.0, 5000.0, 6000.0]
        response = await http.get("/v1/stream/sse", params={"api_key": live.key, "sides": "up"})
        assert response.status_code == 400
        assert "sides" in response.json()["error"]["message"]


async def test_sse_filters_repeated_in_the_query_all_count(live: Running) -> None:
    # The document says "comma-separated or repeated": repeated, only the last value was kept
    # (?markets=BTC-PERP&markets=ETH-PERP streamed ETH-PERP alone).
    await live.push(
        venue_event(market="BTC-PERP"),
        venue_event(market="SOL-PERP"),
        venue_event(market="ETH-PERP"),
    )
    params = [
        ("api_key", live.key),
        ("since_seq", "0"),
        ("markets", "BTC-PERP"),
        ("markets", "ETH-PERP"),
        ("channels", "liquidations"),
        ("channels", "cascades"),
    ]
    markets: list[str] = []

    async def read(response: httpx.Response) -> None:
        async for line in response.aiter_lines():
            if line.startswith('data: {"type":"liquidation"'):
                markets.append(json.loads(line[6:])["data"]["market"])
                if len(markets) == 2:
                    return

    async with httpx.AsyncClient(base_url=live.url, timeout=5) as http:
        async with http.stream("GET", "/v1/stream/sse", params=params) as response:
            assert response.status_code == 200
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(read(response), 5)
        assert markets == ["BTC-PERP", "ETH-PERP"]
        # An empty value beside others is refused as the REST routes refuse it, not dropped.
        empty = [("api_key", live.key), ("markets", "BTC-PERP"), ("markets", "")]
        response = await http.get("/v1/stream/sse", params=empty)
        assert response.status_code == 400
        assert "markets" in response.json()["error"]["message"]


@pytest.mark.timing
async def test_slow_consumer_is_cut_with_a_reason_and_others_are_unaffected(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = make_config(tmp_path, stream_buffer_bytes=300_000)
    async with running_server(config) as live:
        headers = {"Authorization": f"Bearer {live.key}"}
        client = purpleflea.LiquidationClient(api_key=live.key, base_url=live.url)
        # The slow client subscribes, then never reads (a small receive window, so the
        # backlog builds up on the server, as it does with a real client that stalls).
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8_192)
        raw.connect(("127.0.0.1", int(live.url.rsplit(":", 1)[1])))
        raw.setblocking(False)
        slow = await connect(live.ws_url, additional_headers=headers, max_queue=1, sock=raw)
        await slow.send(json.dumps({"op": "subscribe"}))
        async with client.stream() as fast:
            latencies: list[float] = []

            async def fast_reader() -> None:
                async for item in fast:
                    assert isinstance(item, Liquidation)
                    latencies.append(time.time() * 1000 - item.received_at)
                    if len(latencies) >= 10_000:
                        return

            reader = asyncio.create_task(fast_reader())
            pad = 200_000.0
            for _burst in range(100):
                for _ in range(100):
                    live.server.tracker.submit(venue_event(size_usd=pad))
                await live.server.tracker.drain()
                await asyncio.sleep(0.02)
            await asyncio.wait_for(reader, 60)
            assert fast.reconnects == 0
        assert live.server.streams.closed.get("slow_consumer") == 1
        latencies.sort()
        assert latencies[int(len(latencies) * 0.99)] < 250, latencies[-10:]
        # The slow client finds the reason at the end of what it was sent.
        frames = []
        try:
            async for raw in slow:
                frames.append(json.loads(raw))
        except Exception:
            pass
        assert frames[-1]["type"] == "error"
        assert frames[-1]["code"] == "slow_consumer"
        assert "since_seq" in frames[-1]["message"]
        assert slow.close_code == 4008


async def test_batched_subscription_carries_waiting_events_in_one_frame(live: Running) -> None:
    headers = {"Authorization": f"Bearer {live.key}"}
    async with connect(live.ws_url, additional_headers=headers) as ws:
        await ws.send(json.dumps({"op": "subscribe", "batch": True, "min_usd": 1_000}))
        subscribed = json.loads(await ws.recv())
        assert subscribed["batch"] is True
        assert json.loads(await ws.recv())["type"] == "heartbeat"
        await live.push(*[venue_event(size_usd=500.0 * (i % 4)) for i in range(400)])
        seqs: list[int] = []
        frames = 0
        while len(seqs) < 200:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if frame["type"] == "heartbeat":
                continue
            frames += 1
            items = frame["items"] if frame["type"] == "batch" else [frame]
            for item in items:
                assert item["type"] == "liquidation"
                assert item["data"]["size_usd"] >= 1_000  # filters still apply per item
                seqs.append(item["data"]["seq"])
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == 200
        assert frames < 50  # the burst arrived in a few frames, not 200
    async with connect(live.ws_url, additional_headers=headers) as ws:
        await ws.send(json.dumps({"op": "subscribe", "batch": "yes"}))
        error = json.loads(await ws.recv())
        assert error["code"] == "bad_subscription"
        assert "batch" in error["message"]
