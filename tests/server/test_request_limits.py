"""What one connection may cost the server before any key is checked: request headers and
bodies must arrive within deadlines, and bodies are read only up to their limit (POST
/v1/keys needs no key)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import select
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from purpleflea.server import http, serving
from tests.server.conftest import Running, make_config, running_server, until


async def _raw(
    url: str, head: bytes, body: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head + body)
    await writer.drain()
    return reader, writer


async def _status(reader: asyncio.StreamReader, timeout: float) -> tuple[int, bytes]:
    """The response's status and body, read within ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        status_line = await reader.readline()
        raw = await reader.read(4096)
    return int(status_line.split()[1]), raw


async def test_a_huge_declared_body_is_refused_before_it_is_read(tmp_path: Path) -> None:
    # 64 MiB announced, 32 KiB sent: the answer comes at once, not after the server waited
    # for (and buffered) the rest.
    async with running_server(make_config(tmp_path)) as live:
        head = (
            b"POST /v1/keys HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (64 << 20)
        )
        reader, writer = await _raw(live.url, head, b" " * 32_768)
        status, raw = await _status(reader, 5)
        writer.close()
        assert status == 400
        assert b"request body over 16384 bytes" in raw


async def test_a_chunked_body_is_cut_at_the_limit(tmp_path: Path) -> None:
    # No Content-Length: the body is refused once more than the limit has arrived, while
    # the client is still sending.
    async with running_server(make_config(tmp_path)) as live:
        head = (
            b"POST /v1/webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
            + live.key.encode()
            + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"%x\r\n%s\r\n" % (8192, b" " * 8192)
        reader, writer = await _raw(live.url, head, chunk * 4)  # 32 KiB, never terminated
        status, raw = await _status(reader, 5)
        writer.close()
        assert status == 400
        assert b"request body over 16384 bytes" in raw


async def test_a_body_that_never_ends_is_refused_after_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http, "BODY_TIMEOUT_S", 0.5)
    async with running_server(make_config(tmp_path)) as live:
        head = b"POST /v1/keys HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n"
        reader, writer = await _raw(live.url, head, b'{"account": ')
        status, raw = await _status(reader, 5)
        writer.close()
        assert status == 400
        assert b"request body not received within 0.5 s" in raw


async def _closed_within(reader: asyncio.StreamReader, timeout: float) -> bool:
    """Whether the server closes the connection within ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while await reader.read(4096):
                pass
    except TimeoutError:
        return False
    return True


async def test_a_connection_that_never_finishes_its_headers_is_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without a deadline each such connection held a file descriptor forever, and enough of
    # them (no key needed) left none for anybody else. Trickling bytes does not extend it.
    monkeypatch.setattr(serving, "HEADER_TIMEOUT_S", 0.5)
    async with running_server(make_config(tmp_path)) as live:
        silent, silent_writer = await _raw(live.url, b"", b"")
        reader, writer = await _raw(
            live.url, b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n", b""
        )
        for _ in range(3):
            await asyncio.sleep(0.2)
            writer.write(b"X")
        assert await _closed_within(silent, 2)
        assert await _closed_within(reader, 2)
        # After a response the next request's headers have the same deadline.
        again, again_writer = await _raw(
            live.url, b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", b""
        )
        status, _ = await _status(again, 2)
        assert status == 200
        again_writer.write(b"GET /v1/health HTTP/1.1\r\n")
        assert await _closed_within(again, 2)
        for w in (silent_writer, writer, again_writer):
            w.close()


async def test_requests_and_streams_outlive_the_header_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The deadline is for headers only: a WebSocket and a slow response are left alone.
    monkeypatch.setattr(serving, "HEADER_TIMEOUT_S", 0.3)
    async with running_server(make_config(tmp_path)) as live:
        async with websockets.connect(f"{live.ws_url}?api_key={live.key}") as ws:
            await asyncio.sleep(0.6)
            await ws.send(json.dumps({"op": "subscribe"}))
            assert json.loads(await ws.recv())["type"] == "subscribed"
            await asyncio.sleep(0.6)
            await ws.send(json.dumps({"op": "ping"}))
            kinds = [json.loads(await ws.recv())["type"] for _ in range(3)]
            assert "pong" in kinds
        head = (
            b"GET /v1/stream/sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
            + live.key.encode()
            + b"\r\n\r\n"
        )
        reader, writer = await _raw(live.url, head, b"")
        status, _ = await _status(reader, 2)
        assert status == 200
        assert not await _closed_within(reader, 1.0)
        writer.close()


async def test_a_deeply_nested_body_is_refused_as_a_bad_request(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """2 KB of ``[[[...]]]`` (or 16 KB of ``{"a":{"a":...}}``) made the JSON decoder raise
    RecursionError: a 500 and a ~5 KB traceback in the server's log for every such request,
    and registration (no key, and its rate limit is checked after the body) let anyone send
    them as fast as the server answers."""
    caplog.set_level(logging.ERROR)
    deep_list = b"[" * 1000 + b"]" * 1000
    deep_object = b'{"a":' * 2600 + b"1" + b"}" * 2600
    config = make_config(tmp_path)
    async with running_server(config) as live, httpx.AsyncClient(base_url=live.url) as client:
        for path, headers in (
            ("/v1/keys", {}),
            ("/v1/webhooks", {"Authorization": f"Bearer {live.key}"}),
        ):
            for body in (deep_list, deep_object):
                answer = await client.post(path, content=body, headers=headers)
                assert answer.status_code == 400, (path, answer.text[:200])
                error = answer.json()["error"]
                assert error["code"] == "bad_request"
                assert "nested too deeply" in error["message"]
    assert [r.getMessage() for r in caplog.records] == []


async def test_a_deeply_nested_subscribe_message_is_refused_with_its_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The same nesting in a WebSocket's subscribe message ended the connection with no
    close frame (1006) instead of ``bad_subscription``."""
    caplog.set_level(logging.ERROR)
    async with running_server(make_config(tmp_path)) as live:
        async with websockets.connect(f"{live.ws_url}?api_key={live.key}") as ws:
            await ws.send('{"op": "subscribe", "markets": ' + "[" * 3000 + "]" * 3000 + "}")
            error = json.loads(await asyncio.wait_for(ws.recv(), 5))
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
        assert error["code"] == "bad_subscription"
        assert "nested too deeply" in error["message"]
        assert ws.close_code == 4400
        assert live.server.streams.closed == {}  # refused before it started
    assert [r.getMessage() for r in caplog.records] == []


async def test_a_body_cut_short_by_its_client_writes_no_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that sends part of a body and leaves: the handler's read saw Starlette's
    ClientDisconnect, a 500 and a ~50-line traceback in the server's log per request, for
    anyone (registration needs no key)."""
    caplog.set_level(logging.ERROR)
    async with running_server(make_config(tmp_path)) as live:
        # uvicorn's loggers do not propagate to the root logger, where caplog listens.
        uvicorn_log = logging.getLogger("uvicorn.error")
        uvicorn_log.addHandler(caplog.handler)
        head = b"POST /v1/keys HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n"
        for _ in range(3):
            _, writer = await _raw(live.url, head, b'{"account": ')
            # The handler is reading the body when the client leaves.
            await until(lambda: bool(live.uv and live.uv.server_state.tasks), 5, "the request")
            writer.close()
            await until(lambda: not (live.uv and live.uv.server_state.tasks), 5, "its end")
        uvicorn_log.removeHandler(caplog.handler)
    assert [r.getMessage() for r in caplog.records] == []


_HEALTH = b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def _answer_status(reader: asyncio.StreamReader) -> int:
    """One whole response read off a keep-alive connection (head, then its Content-Length
    of body), its status returned; 0 when the server closed the connection instead."""
    async with asyncio.timeout(10):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return 0
        length = re.search(rb"(?im)^content-length: *(\d+)", head)
        assert length is not None, head
        await reader.readexactly(int(length.group(1)))
    return int(head.split()[1])


async def _next_request_unread(
    live: Running,
) -> tuple[Any, asyncio.StreamReader, asyncio.StreamWriter]:
    """A keep-alive connection whose first answer came and whose second request is in the
    server's socket, not yet read by its loop: the moment a timer and that read fall due in
    one turn of the loop (a loaded server's turns last long)."""
    reader, writer = await _raw(live.url, _HEALTH, b"")
    assert await _answer_status(reader) == 200
    assert live.uv is not None
    (protocol,) = live.uv.server_state.connections
    writer.write(_HEALTH)  # into the kernel at once: nothing awaits before the timer below
    poller = select.poll()
    poller.register(protocol.transport.get_extra_info("socket").fileno(), select.POLLIN)
    assert poller.poll(5_000), "the second request never reached the server's socket"
    return protocol, reader, writer  # the writer kept: collected, it closes the connection


async def test_the_keep_alive_timer_spares_a_request_already_in_the_socket(
    tmp_path: Path,
) -> None:
    """Its client saw "Server disconnected without sending a response" (a /v1/metrics flood
    under CPU burners, 4 runs of 4): the connection was closed with the request unread."""
    async with running_server(make_config(tmp_path)) as live:
        protocol, reader, writer = await _next_request_unread(live)
        protocol.timeout_keep_alive_handler()
        assert await _answer_status(reader) == 200
        writer.close()


async def test_the_header_deadline_spares_a_request_already_in_the_socket(
    tmp_path: Path,
) -> None:
    async with running_server(make_config(tmp_path)) as live:
        protocol, reader, writer = await _next_request_unread(live)
        protocol._headers_late(protocol.cycle)  # its timer, falling due now
        assert await _answer_status(reader) == 200
        writer.close()
