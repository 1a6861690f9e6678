"""Requests whose fault is their own cost their sender, not the server's log: uvicorn logged a
warning line for each (an ``Upgrade: h2c``, a request that is not HTTP), for anyone and
without a key, so one client wrote the operator's log at its own pace."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from purpleflea.server import serving
from tests.server.conftest import make_config, running_server

H2C = (
    b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\n"
    b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def uvicorn_lines() -> Iterator[list[str]]:
    """What uvicorn's error logger writes (it does not propagate to pytest's handler, and
    uvicorn's logging setup removes handlers added before the server starts)."""
    handler = _Lines()
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)


async def _metric(url: str, name: str) -> dict[str, float]:
    async with httpx.AsyncClient() as client:
        text = (await client.get(url + "/v1/metrics")).text
    found = {}
    for line in text.splitlines():
        if line.startswith(f"purpleflea_{name}{{"):
            labels, value = line.split(" ")
            found[labels.split('"')[1]] = float(value)
    return found


async def _h2c_upgrades(host: str, port: int, count: int) -> None:
    """``count`` h2c upgrades on one keep-alive connection: each is served as HTTP/1.1."""
    reader, writer = await asyncio.open_connection(host, port)
    for _ in range(count):
        writer.write(H2C)
        await writer.drain()
        async with asyncio.timeout(5):
            status = await reader.readline()
            assert status.startswith(b"HTTP/1.1 "), status
            length = 0
            while (line := await reader.readline()) != b"\r\n":
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
    writer.close()


async def _not_http(host: str, port: int, count: int) -> None:
    """``count`` requests that are not HTTP, each on its own connection: 400 and closed."""
    for _ in range(count):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"NOT HTTP\r\n\r\n")
        async with asyncio.timeout(5):
            assert (await reader.readline()).startswith(b"HTTP/1.1 400")
        writer.close()


async def test_upgrades_and_bad_requests_are_counted_not_logged_each(tmp_path: Path) -> None:
    async with running_server(make_config(tmp_path)) as live:
        host, port = live.url.removeprefix("http://").split(":")
        with uvicorn_lines() as lines:
            await _h2c_upgrades(host, int(port), 40)
            await _not_http(host, int(port), 10)
            counted = await _metric(live.url, "http_client_errors_total")
    noise = [line for line in lines if line.startswith(tuple(serving.CLIENT_NOISE))]
    assert (counted["invalid_request"], counted["unsupported_upgrade"]) == (10.0, 40.0)
    # One line for the first; the rest within the minute are counted only.
    assert len(noise) == 1, noise
    assert "1 such request(s)" in noise[0]


async def test_the_next_line_after_the_interval_says_how_many_came(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serving, "CLIENT_NOISE_LOG_S", 0.3)
    async with running_server(make_config(tmp_path)) as live:
        host, port = live.url.removeprefix("http://").split(":")
        with uvicorn_lines() as lines:
            await _h2c_upgrades(host, int(port), 5)
            await asyncio.sleep(0.4)
            await _not_http(host, int(port), 1)
    noise = [line for line in lines if line.startswith(tuple(serving.CLIENT_NOISE))]
    assert len(noise) == 2, noise
    assert noise[0].startswith("Unsupported upgrade request. (1 such request(s)")
    # The four upgrades counted silently, and the request that brought the line.
    assert noise[1].startswith("Invalid HTTP request received. (5 such request(s)")


async def _answered_then_reset(port: int) -> None:
    """One ``GET /v1/health`` kept alive, its answer read, then the connection reset (RST: a
    close with ``SO_LINGER`` 0, as a client killed or a middlebox dropping it does)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    async with asyncio.timeout(10):
        length = 0
        while (line := await reader.readline()) != b"\r\n":
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def test_a_connection_reset_after_its_answer_writes_no_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # uvicorn cancels the keep-alive timer of a connection lost cleanly only: after a reset
    # the timer fired 5 s later on a closed socket, and our check for a request already
    # waiting (``_bytes_waiting``) raised on its descriptor, -1: asyncio's "Exception in
    # callback" and an 8-line traceback in the log per connection, for anyone, no key needed.
    caplog.set_level(logging.ERROR)
    async with running_server(make_config(tmp_path)) as live:
        port = int(live.url.rsplit(":", 1)[1])
        for _ in range(3):
            await _answered_then_reset(port)
        # What must not happen: wait past uvicorn's keep-alive timer (5 s) for it.
        await asyncio.sleep(live.uv.config.timeout_keep_alive + 1.5)
    tracebacks = [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= 40]
    assert tracebacks == []
