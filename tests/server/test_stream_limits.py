"""The stream limits of issue 16: slow SSE consumers are cut by bytes buffered, a since_seq
beyond the last seq is refused naming it, and streams are capped per account."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from purpleflea.server import streaming
from purpleflea.server.streaming import _MAX_INBOUND_PER_S, InboundRate, is_ping
from tests.server.conftest import Running, make_config, running_server, until, venue_event


def _stuck_sse_client(live: Running, path: str) -> socket.socket:
    """An SSE client that sends its request and then never reads (a small receive window, so
    the backlog builds up on the server as it does when a real client stalls)."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4_096)
    raw.connect(("127.0.0.1", int(live.url.rsplit(":", 1)[1])))
    raw.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return raw


def _read_until(raw: socket.socket, end: bytes, timeout: float) -> bytes:
    raw.settimeout(timeout)
    received = bytearray()
    while not received.endswith(end):
        chunk = raw.recv(65_536)
        if not chunk:
            break
        received += chunk
    return bytes(received)


async def test_a_stalled_sse_client_is_cut_by_bytes_and_a_fast_one_is_unaffected(
    tmp_path: Path,
) -> None:
    # A small kernel buffer per client, so what the socket absorbs is small beside the limit.
    config = make_config(tmp_path, stream_buffer_bytes=200_000, socket_send_buffer=32_768)
    async with running_server(config) as live:
        slow = await asyncio.to_thread(
            _stuck_sse_client, live, f"/v1/stream/sse?api_key={live.key}"
        )
        await until(lambda: len(live.server.gate.streams) == 1, 10, "the slow stream")
        total = 3_000  # ~1 MB of frames: several times the limit plus the socket buffers
        fast_seqs: list[int] = []
        async with (
            httpx.AsyncClient(base_url=live.url, timeout=30) as http,
            http.stream("GET", "/v1/stream/sse", params={"api_key": live.key}) as fast,
        ):

            async def read_fast() -> None:
                async for line in fast.aiter_lines():
                    if line.startswith('data: {"type":"liquidation"'):
                        fast_seqs.append(json.loads(line[6:])["data"]["seq"])
                        if len(fast_seqs) == total:
                            return

            reader = asyncio.create_task(read_fast())
            await until(lambda: len(live.server.gate.streams) == 2, 10, "the fast stream")
            for burst in range(1, 31):
                await live.push(*[venue_event() for _ in range(total // 30)])
                # Paced by the fast reader (in this process, so a loaded machine could starve
                # it): it stays well inside its own limit while the stalled one falls behind.
                await until(
                    lambda n=burst: len(fast_seqs) >= n * (total // 30) - 200, 30, "the fast reader"
                )
            # Cut within a bounded time of passing the limit (the push is done by now).
            await until(
                lambda: live.server.streams.closed.get("slow_consumer") == 1,
                10,
                "the stalled SSE client to be cut",
            )
            assert len(live.server.gate.streams) == 1  # its slot is released
            await asyncio.wait_for(reader, 60)
        assert fast_seqs == sorted(set(fast_seqs))
        assert len(fast_seqs) == total
        await until(
            lambda: live.server.streams.closed == {"slow_consumer": 1, "client_disconnected": 1},
            10,
            "the fast client's stream to close",
        )
        # The stalled client, reading at last, finds the reason, then the end of the body.
        body = await asyncio.to_thread(_read_until, slow, b"0\r\n\r\n", 10)
        slow.close()
    assert body.endswith(b"0\r\n\r\n")
    last = body[body.rindex(b"event: ") :]
    assert last.startswith(b"event: error\r\n") or last.startswith(b"event: error\n")
    error = json.loads(last.split(b"data: ", 1)[1].split(b"\n", 1)[0])
    assert error["code"] == "slow_consumer"
    assert "200000 bytes" in error["message"]


async def _refusal(ws: ClientConnection) -> dict[str, object]:
    """The error frame that ends ``ws`` (after any frames before it), with the close."""
    error = json.loads(await asyncio.wait_for(ws.recv(), 10))
    while error["type"] != "error":
        error = json.loads(await asyncio.wait_for(ws.recv(), 10))
    await asyncio.wait_for(ws.wait_closed(), 10)
    return dict(error, close_code=ws.close_code, close_reason=ws.close_reason)


async def test_since_seq_beyond_the_last_seq_is_refused_naming_it(live: Running) -> None:
    await live.push(*[venue_event() for _ in range(5)])
    last = live.server.tracker.last_seq
    headers = {"Authorization": f"Bearer {live.key}"}
    async with connect(live.ws_url, additional_headers=headers) as ws:
        await ws.send(json.dumps({"op": "subscribe", "since_seq": last + 100}))
        refused = await _refusal(ws)
    assert refused["code"] == "resume_ahead"
    assert f"since_seq {last + 100} is beyond the last seq {last}" in str(refused["message"])
    assert refused["close_code"] == 4400
    async with httpx.AsyncClient(base_url=live.url, timeout=10) as http:
        response = await http.get(
            "/v1/stream/sse", params={"api_key": live.key, "since_seq": str(last + 1)}
        )
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "resume_ahead"
        assert f"last seq {last}" in error["message"]
        response = await http.get(
            "/v1/stream/sse",
            params={"api_key": live.key},
            headers={"Last-Event-ID": str(last + 7)},
        )
        assert response.status_code == 400
    # The last seq itself is a valid cursor: nothing to replay, the live feed follows.
    async with connect(live.ws_url, additional_headers=headers) as ws:
        await ws.send(json.dumps({"op": "subscribe", "since_seq": last}))
        assert json.loads(await ws.recv())["type"] == "subscribed"
        heartbeat = json.loads(await ws.recv())
        assert (heartbeat["type"], heartbeat["seq"]) == ("heartbeat", last)
        await live.push(venue_event())
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        while frame["type"] == "heartbeat":
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert frame["data"]["seq"] == last + 1


async def test_streams_are_capped_per_account_whatever_the_key(tmp_path: Path) -> None:
    config = make_config(tmp_path, streams_per_account=3, stream_opens_per_min=5)
    async with running_server(config) as live:
        first = live.server.keys.create("acme", "a").key
        second = live.server.keys.create("acme", "b").key  # a second key is no way around
        other = live.server.keys.create("someone-else", "c").key

        async def open_ws(key: str) -> ClientConnection:
            ws = await connect(live.ws_url, additional_headers={"X-API-Key": key})
            with contextlib.suppress(ConnectionClosed):  # a refusal may close it first
                await ws.send(json.dumps({"op": "subscribe"}))
            return ws

        held = [await open_ws(first), await open_ws(first), await open_ws(second)]
        for ws in held:
            assert json.loads(await ws.recv())["type"] == "subscribed"
        refused = await _refusal(await open_ws(second))
        assert (refused["code"], refused["close_code"]) == ("too_many_streams", 4429)
        assert refused["close_reason"] == "too_many_streams"
        assert "'acme' already has 3 open streams" in str(refused["message"])
        async with httpx.AsyncClient(base_url=live.url, timeout=10) as http:
            response = await http.get("/v1/stream/sse", params={"api_key": second})
            assert response.status_code == 429
            assert response.json()["error"]["code"] == "too_many_streams"
            assert int(response.headers["Retry-After"]) >= 1
        # Another account is not affected.
        async with await open_ws(other) as ws:
            assert json.loads(await ws.recv())["type"] == "subscribed"
        # Closing a stream frees its slot: the 4th and 5th opens of this minute pass.
        for _ in range(2):
            await held.pop().close()
            await until(lambda: live.server.gate.streams.open_for("acme") == 2, 10, "a slot")
            held.append(await open_ws(second))
            assert json.loads(await held[-1].recv())["type"] == "subscribed"
        await held.pop().close()
        await until(lambda: live.server.gate.streams.open_for("acme") == 2, 10, "a slot")
        # The 6th open within the minute is over the rate, on either key.
        refused = await _refusal(await open_ws(first))
        assert (refused["code"], refused["close_code"]) == ("rate_limited", 4429)
        async with httpx.AsyncClient(base_url=live.url, timeout=10) as http:
            response = await http.get("/v1/stream/sse", params={"api_key": first})
            assert response.status_code == 429
            assert response.json()["error"]["code"] == "rate_limited"
            assert int(response.headers["Retry-After"]) >= 1
        assert live.server.gate.counters["too_many_streams"] == 2
        assert live.server.gate.counters["rate_limited"] == 2
        # Revoking a key still closes that key's streams (and only them).
        live.server.gate.revoked(live.server.keys.verify(first).key_id)  # type: ignore[union-attr]
        for ws in held:
            refused = await _refusal(ws)
            assert (refused["code"], refused["close_code"]) == ("key_revoked", 4403)
        await until(lambda: live.server.gate.streams.open_for("acme") == 0, 10, "no streams")


def test_more_client_messages_than_the_rate_within_one_second_are_a_flood(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    monkeypatch.setattr(streaming.time, "monotonic", lambda: clock[0])
    rate = InboundRate()  # the rule of main's streams and the stream workers' alike
    assert not any(rate.flooded() for _ in range(_MAX_INBOUND_PER_S))
    assert rate.flooded()
    clock[0] += 0.999
    assert rate.flooded()  # still the same second
    clock[0] += 0.001
    assert not any(rate.flooded() for _ in range(_MAX_INBOUND_PER_S))  # a new second
    assert rate.flooded()


def test_pings_in_either_spelling_are_recognised() -> None:
    assert is_ping('{"op":"ping"}')
    assert is_ping(' {"op": "ping"}\n')
    assert not is_ping('{"op":"subscribe"}')
    assert not is_ping("")


async def test_a_replay_from_storage_is_paced_by_its_account_s_rate_limit(
    tmp_path: Path,
) -> None:
    """A resume reads history as REST paging does, one 1,000-row page per read, and now pays
    for it as paging does: one request of the account's rate limit per page. It was free: one
    subscribe with ``since_seq: 0`` and a filter that matches nothing read the whole store
    (measured: 1.4-1.7 s of CPU per 200k stored events, decoded on the event loop), and an
    account could start 60 a minute, 20 at once, WebSocket or SSE, sending nothing back."""
    config = make_config(tmp_path, rate_per_s=2.0, rate_burst=2.0)
    async with running_server(config) as live:
        # 4 pages; the replay ends at the live position (3,500), with no empty read after it
        await live.push(*(venue_event() for _ in range(3_500)))
        headers = {"Authorization": f"Bearer {live.key}"}
        started = asyncio.get_running_loop().time()
        # A filter no index serves (coverage) reads every event: a page per 1,000 read. (One
        # an index serves, a market, reads that market's events only: tests/store/test_replay.)
        nothing = {"since_seq": 0, "coverages": ["sampled"]}
        async with connect(live.ws_url, additional_headers=headers) as ws:
            await ws.send(json.dumps({"op": "subscribe", **nothing}))
            assert json.loads(await ws.recv())["type"] == "subscribed"
            beat = json.loads(await asyncio.wait_for(ws.recv(), 10))
        waited = asyncio.get_running_loop().time() - started
        assert beat == {"type": "heartbeat", "seq": 3_500, "ts": beat["ts"]}
        # 4 reads: 2 from the burst, then one every 0.5 s.
        assert waited >= 0.9, waited
        async with httpx.AsyncClient(base_url=live.url) as http:
            await asyncio.sleep(1.0)  # the burst back
            started = asyncio.get_running_loop().time()
            params = {"since_seq": "0", "coverages": "sampled"}
            async with http.stream("GET", "/v1/stream/sse", params=params, headers=headers) as sse:
                assert sse.status_code == 200
                async for line in sse.aiter_lines():
                    if line == "event: heartbeat":
                        break
            assert asyncio.get_running_loop().time() - started >= 0.9
