"""The SDK stream's reading of the socket, against a loopback WebSocket server: every message
held is delivered in order, a silent server is left after the idle timeout (and the stream
resumes on a new connection), and a consumer slower than the idle timeout is not silence."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import msgspec
import pytest
from websockets.asyncio.server import ServerConnection, serve

from purpleflea.client import BadRequestError, LiquidationClient, PurpleFleaError
from tests.events import stored_event
from tests.ports import refused_url

Handler = Callable[[ServerConnection, dict[str, object]], Awaitable[None]]


def _event(seq: int) -> str:
    return msgspec.json.encode({"type": "liquidation", "data": stored_event(seq)}).decode()


def _batch(seqs: range) -> str:
    items = ",".join(_event(seq) for seq in seqs)
    return '{"type":"batch","items":[' + items + "]}"


@asynccontextmanager
async def _server(handler: Handler) -> AsyncIterator[tuple[str, list[dict[str, object]]]]:
    """A stream server on loopback; yields its URL and the subscribe messages it was sent."""
    subscribes: list[dict[str, object]] = []

    async def session(ws: ServerConnection) -> None:
        subscribe = json.loads(await ws.recv())
        subscribes.append(subscribe)
        await ws.send('{"type":"subscribed","seq":0}')
        await handler(ws, subscribe)

    async with serve(session, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}", subscribes


async def test_every_message_held_is_delivered_in_order() -> None:
    # Sent in one go while the consumer sleeps: the stream finds them all held at once.
    async def handler(ws: ServerConnection, _: dict[str, object]) -> None:
        for seq in range(1, 101):
            await ws.send(_event(seq))
        await ws.send('{"type":"heartbeat","seq":100}')
        await ws.send(_batch(range(101, 141)))
        for seq in range(141, 201):
            await ws.send(_event(seq))
        await ws.wait_closed()

    async with _server(handler) as (url, _):
        client = LiquidationClient(api_key="pf_x", base_url=url)
        got: list[int] = []
        async with client.stream(idle_timeout=5.0) as stream:
            await asyncio.sleep(0.3)
            async for event in stream:
                got.append(event.seq)
                if len(got) == 200:
                    break
            assert stream.last_seq == 200
            assert stream.reconnects == 0
    assert got == list(range(1, 201))


async def test_a_silent_server_is_left_after_the_idle_timeout_and_the_stream_resumes() -> None:
    async def handler(ws: ServerConnection, subscribe: dict[str, object]) -> None:
        if "since_seq" not in subscribe:
            await ws.send(_event(1))  # then nothing, not even a heartbeat, until the client goes
            await ws.wait_closed()
            return
        await ws.send(_event(2))
        await ws.wait_closed()

    async with _server(handler) as (url, subscribes):
        client = LiquidationClient(api_key="pf_x", base_url=url)
        got: list[int] = []
        async with client.stream(idle_timeout=0.4) as stream:
            started = time.monotonic()
            async for event in stream:
                got.append(event.seq)
                if len(got) == 2:
                    break
            waited = time.monotonic() - started
            assert stream.reconnects == 1
    assert got == [1, 2]
    assert subscribes[1]["since_seq"] == 1  # resumed after what it had
    assert 0.4 <= waited < 5.0


async def test_a_consumer_slower_than_the_idle_timeout_is_not_a_silent_server() -> None:
    async def handler(ws: ServerConnection, _: dict[str, object]) -> None:
        for seq in range(1, 4):
            await ws.send(_event(seq))
        await ws.wait_closed()

    async with _server(handler) as (url, subscribes):
        client = LiquidationClient(api_key="pf_x", base_url=url)
        got: list[int] = []
        async with client.stream(idle_timeout=0.2) as stream:
            async for event in stream:
                got.append(event.seq)
                if len(got) == 3:
                    break
                await asyncio.sleep(0.5)  # the consumer's own work, longer than the timeout
            assert stream.reconnects == 0
    assert got == [1, 2, 3]
    assert len(subscribes) == 1


async def test_a_server_it_cannot_reach_is_said_once_while_the_stream_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The stream retries forever (what a long-lived agent wants), but it did so in silence: a
    # script pointed at the wrong port, or whose server died, printed nothing at all.
    with (
        refused_url() as url,
        caplog.at_level(logging.WARNING, logger="purpleflea.client"),
        contextlib.suppress(TimeoutError),
    ):
        client = LiquidationClient(api_key="pf_x", base_url=url)
        async with asyncio.timeout(2.0), client.stream(since_seq=41):
            pytest.fail("connected to nothing")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # once per outage, not once per retry
    assert warnings[0].startswith(f"stream: cannot reach {url} (")
    assert "retrying with backoff up to 10 s, then resuming after seq 41" in warnings[0]


async def test_a_stream_the_server_ends_is_said_and_resumed_after_a_pause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A server restarting (or cutting a slow consumer) ended the stream in silence, and a
    # server that accepts and at once ends every stream was reconnected to in a tight loop.
    opened: list[float] = []

    async def handler(ws: ServerConnection, subscribe: dict[str, object]) -> None:
        opened.append(time.monotonic())
        if "since_seq" not in subscribe:
            await ws.send(_event(1))
            await ws.send('{"type":"error","code":"server_shutdown","message":"restarting"}')
            await ws.close(1001, "server_shutdown")
            return
        await ws.send(_event(2))
        await ws.wait_closed()

    async with _server(handler) as (url, subscribes):
        client = LiquidationClient(api_key="pf_x", base_url=url)
        got: list[int] = []
        with caplog.at_level(logging.WARNING, logger="purpleflea.client"):
            async with client.stream(idle_timeout=5.0) as stream:
                async for event in stream:
                    got.append(event.seq)
                    if len(got) == 2:
                        break
    assert got == [1, 2]
    assert subscribes[1]["since_seq"] == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"stream: {url} ended the stream (server_shutdown: restarting); reconnecting, "
        "resuming after seq 1"
    ]
    assert opened[1] - opened[0] >= 0.25  # it lasted less than QUICK_DROP_S: a pause first


async def test_a_stream_iterated_without_async_with_connects_and_counts_no_reconnect() -> None:
    async def handler(ws: ServerConnection, _: dict[str, object]) -> None:
        await ws.send(_event(1))
        await ws.wait_closed()

    async with _server(handler) as (url, _):
        stream = LiquidationClient(api_key="pf_x", base_url=url).stream()
        async for event in stream:
            assert event.seq == 1
            break
        assert stream.reconnects == 0  # it said 1: its first connection counted as a reconnect
        await stream.aclose()


async def test_a_refusal_frame_is_not_reported_as_a_missing_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The warning asked "is a server running there?" about a server that had just answered
    # "too many streams".
    sessions = 0

    async def session(ws: ServerConnection) -> None:
        nonlocal sessions
        sessions += 1
        await ws.recv()
        if sessions == 1:
            refusal = {"type": "error", "code": "too_many_streams", "message": "20 open"}
            await ws.send(json.dumps(refusal))
            await ws.close(4429, "too_many_streams")
            return
        await ws.send('{"type":"subscribed","seq":0}')
        await ws.send(_event(1))
        await ws.wait_closed()

    async with serve(session, "127.0.0.1", 0) as server:
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        client = LiquidationClient(api_key="pf_x", base_url=url)
        with caplog.at_level(logging.WARNING, logger="purpleflea.client"):
            async with client.stream(max_backoff=0.2) as stream:
                async for event in stream:
                    assert event.seq == 1
                    break
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings[0] == (
        f"stream: cannot reach {url} (20 open); retrying with backoff up to 0.2 s, then subscribing"
    )
    assert warnings[1].startswith(f"stream: connected to {url} after ")


async def test_a_server_whose_url_refuses_the_handshake_passes_the_stream_to_the_next() -> None:
    """An HTTP refusal of the handshake means nothing at that URL is a Purple Flea stream; with
    several servers (failover) the stream goes on to the next instead of stopping, and fails
    only when every one refuses."""

    async def handler(ws: ServerConnection, _: dict[str, object]) -> None:
        await ws.send(_event(1))
        await ws.wait_closed()

    def not_found(connection: ServerConnection, request: object) -> object:
        return connection.respond(404, "no stream here\n")

    async with (
        serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0, process_request=not_found) as other,
        _server(handler) as (url, _),
    ):
        wrong = f"http://127.0.0.1:{other.sockets[0].getsockname()[1]}"
        client = LiquidationClient(api_key="pf_x", base_url=[wrong, url])
        async with client.stream() as stream:
            async for event in stream:
                assert event.seq == 1
                break
        assert stream.server == url
        only_wrong = LiquidationClient(api_key="pf_x", base_url=[wrong, wrong + "/"])
        with pytest.raises(PurpleFleaError) as refused:
            async with only_wrong.stream():
                pytest.fail("subscribed to nothing")
        assert refused.value.code == "handshake_refused"


async def test_a_server_whose_store_started_anew_is_followed_live_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server restarted on a new store refuses to resume after a seq it never had
    (``resume_ahead``): the stream stopped the agent with a BadRequestError. It now says so
    and follows the live feed; a since_seq the user gave that is ahead still raises."""
    subscribes: list[dict[str, object]] = []

    async def session(ws: ServerConnection) -> None:
        subscribe = json.loads(await ws.recv())
        subscribes.append(subscribe)
        if len(subscribes) == 1:  # the old store
            await ws.send('{"type":"subscribed","seq":4}')
            await ws.send(_event(5))
            await ws.close(1001, "server_shutdown")
            return
        if "since_seq" in subscribe:  # the new store's last seq is 0
            refusal = {"type": "error", "code": "resume_ahead", "message": "since_seq 5 is beyond"}
            await ws.send(json.dumps(refusal))
            await ws.close(4400, "resume_ahead")
            return
        await ws.send('{"type":"subscribed","seq":0}')
        await ws.send(_event(1))
        await ws.wait_closed()

    async with serve(session, "127.0.0.1", 0) as server:
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        client = LiquidationClient(api_key="pf_x", base_url=url)
        got: list[int] = []
        with caplog.at_level(logging.WARNING, logger="purpleflea.client"):
            # (Before: it retried since_seq 5 with backoff for ever.)
            async with asyncio.timeout(10), client.stream(max_backoff=0.2) as stream:
                async for event in stream:
                    got.append(event.seq)
                    if len(got) == 2:
                        break
        assert got == [5, 1]
        assert [s.get("since_seq") for s in subscribes] == [None, 5, None]
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any(f"{url} cannot resume after seq 5" in w for w in warnings), warnings
        subscribes.clear()
        subscribes.append({})  # the next connection is the new store's
        with pytest.raises(BadRequestError) as refused:
            async with client.stream(since_seq=5):
                pytest.fail("resumed after a seq the server never had")
        assert refused.value.code == "resume_ahead"
