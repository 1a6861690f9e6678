"""What one connection may cost the server before any key is checked: request bodies are
read only up to their limit and within a deadline (POST /v1/keys needs no key)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from purpleflea.server import http
from tests.server.conftest import make_config, running_server


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
            b"POST /v1/keys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
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
            b"POST /v1/webhooks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
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
        head = b"POST /v1/keys HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
        reader, writer = await _raw(live.url, head, b'{"account": ')
        status, raw = await _status(reader, 5)
        writer.close()
        assert status == 400
        assert b"request body not received within 0.5 s" in raw
