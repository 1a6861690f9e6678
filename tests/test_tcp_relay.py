"""The tests' TCP relay (tests/services.py) keeps its port through an outage: a cut closes its
connections and refuses new ones, but the port stays the relay's, so no other process (another
test's server) takes it before the relay opens again."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket

import pytest

from tests.services import TcpRelay


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    writer.close()


async def _round_trip(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(payload)), 10)
    finally:
        writer.close()


def _bind_error(port: int) -> int | None:
    """The errno of binding ``port`` as a server does (SO_REUSEADDR, as asyncio's and
    uvicorn's: a connection of the port's left in TIME_WAIT does not stop it), None when it
    could."""
    error = None
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            other.bind(("127.0.0.1", port))
        except OSError as exc:
            error = exc.errno
    return error


async def test_a_cut_relay_keeps_its_port_refuses_and_relays_again_when_opened() -> None:
    target = await asyncio.start_server(_echo, "127.0.0.1", 0)
    relay = TcpRelay("127.0.0.1", target.sockets[0].getsockname()[1])
    try:
        await relay.open()
        port = relay.port
        assert await _round_trip(port, b"before") == b"before"
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"held")
        assert await asyncio.wait_for(reader.readexactly(4), 10) == b"held"

        await relay.cut()
        # The connection held is dropped, a new one refused, and the port stays taken: the
        # relay re-bound it by number at open(), and another process could take it meanwhile.
        with contextlib.suppress(ConnectionError):
            assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
        assert _bind_error(port) == errno.EADDRINUSE

        await relay.open()
        assert relay.port == port
        assert await _round_trip(port, b"after") == b"after"
        await relay.cut()
        await relay.open()  # as often as a test cuts it
        assert await _round_trip(port, b"again") == b"again"
    finally:
        await relay.close()
        target.close()
        await target.wait_closed()
    assert _bind_error(port) is None  # closed, the relay gives its port back


async def test_a_reserved_relay_refuses_until_opened_on_the_port_it_named() -> None:
    target = await asyncio.start_server(_echo, "127.0.0.1", 0)
    relay = TcpRelay("127.0.0.1", target.sockets[0].getsockname()[1])
    try:
        relay.reserve()
        port = relay.port
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
        assert _bind_error(port) == errno.EADDRINUSE
        await relay.open()
        assert relay.port == port
        assert await _round_trip(port, b"up") == b"up"
    finally:
        await relay.close()
        target.close()
        await target.wait_closed()
