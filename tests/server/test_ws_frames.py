"""WebSocket frames the stream never sees as messages: pings and the fragments of a message.

The stream's flood rule counted client messages (20 a second) and its slow-consumer rule the
bytes of events waiting; pings (answered by the WebSocket layer itself) and the empty
fragments of a message that never ends passed under both. One stream pinging as fast as it
could, reading nothing, grew the server by ~4.6 MB a second, every byte a pong waiting for it;
one sending empty continuation frames kept the event loop so busy that a ``GET /v1/health``
took 6 s (bench/ws_frame_flood.py, bench/results/attack.md)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import pytest

from purpleflea.server.streaming import MAX_FRAGMENTS, MAX_FRAMES_PER_S
from tests.server.conftest import Running, make_config, running_server, until, venue_event

_MASK = b"\x00\x00\x00\x00"  # any mask is valid; zeros leave the payload as it is


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True) -> bytes:
    """One masked client frame of at most 125 bytes of payload."""
    return bytes((opcode | (0x80 if fin else 0), 0x80 | len(payload))) + _MASK + payload


def _open_stream(live: Running, *, receive_buffer: int = 0) -> socket.socket:
    """A subscribed stream over a raw socket (its ``subscribed`` frame read)."""
    raw = socket.socket()
    if receive_buffer:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    raw.connect(("127.0.0.1", int(live.url.rsplit(":", 1)[1])))
    raw.sendall(
        (
            "GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nX-API-Key: {live.key}\r\n\r\n"
        ).encode()
    )
    raw.settimeout(10)
    head = b""
    while b"\r\n\r\n" not in head:
        head += raw.recv(1)
    assert b" 101 " in head.split(b"\r\n", 1)[0], head
    raw.sendall(frame(0x1, json.dumps({"op": "subscribe", "batch": False}).encode()))
    opcode, payload = _read_frame(raw)
    assert opcode == 0x1
    assert json.loads(payload)["type"] == "subscribed"
    return raw


def _read_exact(raw: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = raw.recv(size - len(data))
        if not chunk:
            raise EOFError(f"connection closed after {len(data)} of {size} bytes")
        data += chunk
    return data


def _read_frame(raw: socket.socket) -> tuple[int, bytes]:
    """The next server frame (unmasked): its opcode and payload."""
    first, second = _read_exact(raw, 2)
    size = second & 0x7F
    if size == 126:
        size = int.from_bytes(_read_exact(raw, 2), "big")
    elif size == 127:
        size = int.from_bytes(_read_exact(raw, 8), "big")
    return first & 0x0F, _read_exact(raw, size)


def _frames_until_close(raw: socket.socket) -> list[tuple[int, bytes]]:
    frames: list[tuple[int, bytes]] = []
    while not frames or frames[-1][0] != 0x8:
        frames.append(_read_frame(raw))
    return frames


def _flood_ends_stream(raw: socket.socket, burst: bytes) -> list[tuple[int, bytes]]:
    raw.sendall(burst)
    return _frames_until_close(raw)


def _assert_flood(frames: list[tuple[int, bytes]]) -> None:
    texts = [json.loads(payload) for opcode, payload in frames if opcode == 0x1]
    errors = [t for t in texts if t.get("type") == "error"]
    assert [e["code"] for e in errors] == ["flood"], texts
    close = frames[-1][1]
    assert int.from_bytes(close[:2], "big") == 4429
    assert close[2:] == b"flood"


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_ping_flood_ends_the_stream_as_a_flood(tmp_path: Path, workers: int) -> None:
    async with running_server(make_config(tmp_path, stream_workers=workers)) as live:
        raw = await asyncio.to_thread(_open_stream, live)
        burst = frame(0x9, b"p" * 125) * (MAX_FRAMES_PER_S * 10)
        frames = await asyncio.to_thread(_flood_ends_stream, raw, burst)
        raw.close()
        _assert_flood(frames)
        # Answered at most a second's worth of them, not the thousand.
        assert sum(opcode == 0xA for opcode, _ in frames) <= MAX_FRAMES_PER_S
        await until(lambda: len(live.server.gate.streams) == 0, 10, "the stream's slot")


async def test_a_message_that_never_ends_ends_the_stream_as_a_flood(tmp_path: Path) -> None:
    async with running_server(make_config(tmp_path)) as live:
        raw = await asyncio.to_thread(_open_stream, live)
        # Slower than the frame rate: the number of parts is what gives it away.
        start = frame(0x1, b"{", fin=False)
        await asyncio.to_thread(raw.sendall, start)
        for _ in range(MAX_FRAGMENTS // 10 + 1):
            await asyncio.to_thread(raw.sendall, frame(0x0, fin=False) * 10)
            await asyncio.sleep(0.3)
        frames = await asyncio.to_thread(_frames_until_close, raw)
        raw.close()
        _assert_flood(frames)
        await until(lambda: len(live.server.gate.streams) == 0, 10, "the stream's slot")


async def test_a_fragmented_message_within_the_limits_is_read(live: Running) -> None:
    raw = await asyncio.to_thread(_open_stream, live)
    parts = [b'{"op"', b': "pi', b'ng"}']
    fragmented = frame(0x1, parts[0], fin=False) + frame(0x0, parts[1], fin=False)
    await asyncio.to_thread(raw.sendall, fragmented + frame(0x0, parts[2]))
    opcode, payload = await asyncio.to_thread(_read_frame, raw)
    while json.loads(payload)["type"] == "heartbeat":
        opcode, payload = await asyncio.to_thread(_read_frame, raw)
    raw.close()
    assert (opcode, json.loads(payload)) == (0x1, {"type": "pong"})


def _count_pongs_after_reading_all(raw: socket.socket, events: int) -> int:
    """Reads the ``events`` liquidations the stream was stalled on, and a second more."""
    pongs = seen = 0
    deadline = None
    while deadline is None or time.monotonic() < deadline:
        opcode, payload = _read_frame(raw)
        pongs += opcode == 0xA
        assert opcode != 0x8, f"the stream closed: {payload!r}"
        if opcode == 0x1 and json.loads(payload)["type"] == "liquidation":
            seen += 1
            if seen == events:
                deadline = time.monotonic() + 1.0
    return pongs


@pytest.mark.parametrize("workers", [1, 2])
async def test_pings_of_a_client_that_reads_nothing_get_one_pong_when_it_reads_again(
    tmp_path: Path, workers: int
) -> None:
    config = make_config(tmp_path, stream_workers=workers, socket_send_buffer=16_384)
    async with running_server(config) as live:
        raw = await asyncio.to_thread(_open_stream, live, receive_buffer=4_096)
        # ~600 KB of events: far past what the sockets and the transport hold, well under
        # the 4 MiB a slow consumer may have waiting: the stream is stalled, not cut.
        await live.push(*[venue_event() for _ in range(2_000)])
        await asyncio.sleep(1.0)
        pings = MAX_FRAMES_PER_S // 2
        await asyncio.to_thread(raw.sendall, frame(0x9, b"p" * 125) * pings)
        await asyncio.sleep(1.0)
        pongs = await asyncio.to_thread(_count_pongs_after_reading_all, raw, 2_000)
        raw.close()
    # RFC 6455 5.5.3: a pong may answer only the latest ping; before, each of them waited in
    # the server's memory for a client that was taking nothing. That one is owed, and sent
    # once the client takes what waits: unanswered, a client checking the connection by ping
    # (the SDK's websockets, every 20 s) ended a healthy stream that was busy at the time.
    assert pongs == 1
