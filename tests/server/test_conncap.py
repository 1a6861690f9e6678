"""The per-address connection cap: one address cannot hold every file descriptor."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import websockets

from purpleflea.server.conncap import ConnectionCap
from tests.server.conftest import Running, make_config, running_server, until


@contextlib.asynccontextmanager
async def connection(
    live: Running, source: str = "127.0.0.1"
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    port = int(live.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def health(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """One keep-alive request on a raw connection; the response's status line."""
    writer.write(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    status = await asyncio.wait_for(reader.readline(), 5)
    headers = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = next(
        int(line.split(b":")[1]) for line in headers.split(b"\r\n") if b"content-length" in line
    )
    await reader.readexactly(length)
    return status


async def test_an_address_past_its_cap_is_refused_others_are_not_and_a_close_frees_a_slot(
    tmp_path: Path,
) -> None:
    async with (
        running_server(make_config(tmp_path, connections_per_address=3)) as live,
        contextlib.AsyncExitStack() as held,
    ):
        cap = live.server.connections
        # Three from 127.0.0.1: two keep-alive HTTP connections and a WebSocket stream.
        first = await held.enter_async_context(connection(live))
        second = await held.enter_async_context(connection(live))
        for conn in (first, second):
            assert (await health(*conn)).startswith(b"HTTP/1.1 200")
        stream = await held.enter_async_context(
            websockets.connect(live.ws_url, additional_headers={"X-API-Key": live.key})
        )
        await stream.send('{"op": "subscribe"}')
        assert cap.held("127.0.0.1") == 3

        # The fourth is refused when it is accepted, before its request is read.
        async with connection(live) as (reader, writer):
            writer.write(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 5)
        assert answer.startswith(b"HTTP/1.1 503"), answer
        assert b"too_many_connections" in answer
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(live.ws_url, additional_headers={"X-API-Key": live.key})
        assert refused.value.response.status_code == 503

        # Another address is counted apart.
        async with connection(live, "127.0.0.2") as other:
            assert (await health(*other)).startswith(b"HTTP/1.1 200")
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        async with httpx.AsyncClient(transport=transport) as client:
            metrics = (await client.get(f"{live.url}/v1/metrics")).text
        assert "purpleflea_connections_refused_total 2" in metrics

        # A closed connection frees its slot, an upgraded one too.
        first[1].close()
        await until(lambda: cap.held("127.0.0.1") == 2, 5, "the closed connection's slot")
        async with connection(live) as again:
            assert (await health(*again)).startswith(b"HTTP/1.1 200")
        await stream.close()
        await until(lambda: cap.held("127.0.0.1") == 1, 5, "the WebSocket's slot")


async def test_a_trusted_proxy_is_not_capped(tmp_path: Path) -> None:
    config = make_config(tmp_path, connections_per_address=1, trusted_proxies=("127.0.0.1",))
    async with running_server(config) as live, connection(live) as one, connection(live) as two:
        for conn in (one, two):
            assert (await health(*conn)).startswith(b"HTTP/1.1 200")
        assert live.server.connections.refused == 0


def test_ipv6_is_counted_by_its_64_and_ipv4_mapped_as_ipv4() -> None:
    cap = ConnectionCap(2)
    assert cap.admit(("2001:db8:1:2::1", 5000, 0, 0)) == "2001:db8:1:2::/64"
    assert cap.admit(("2001:db8:1:2:ffff::9", 5001, 0, 0)) == "2001:db8:1:2::/64"
    assert cap.admit(("2001:db8:1:2::77", 5002, 0, 0)) is None  # same /64: the third
    assert cap.admit(("2001:db8:1:3::1", 5003, 0, 0)) == "2001:db8:1:3::/64"
    assert cap.admit(("::ffff:192.0.2.7", 5004, 0, 0)) == "192.0.2.7"
    assert cap.admit(("192.0.2.7", 5005)) == "192.0.2.7"
    assert cap.admit(("192.0.2.7", 5006)) is None
    cap.release("2001:db8:1:2::/64")
    assert cap.admit(("2001:db8:1:2::77", 5007, 0, 0)) == "2001:db8:1:2::/64"
    assert cap.refused == 2


def test_no_cap_counts_nothing() -> None:
    cap = ConnectionCap(0)
    assert all(cap.admit(("192.0.2.7", port)) == "" for port in range(1000))
    assert cap.held("192.0.2.7") == 0
