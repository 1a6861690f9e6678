"""SIGTERM on a real `purpleflea serve`: every stream is told, and the process exits within 5 s
even while a client that never reads holds an SSE stream (issue 16: 40 s and more, and
WebSocket clients got 1012 with no reason)."""

from __future__ import annotations

import asyncio
import fcntl
import json
import signal
import socket
import struct
import termios
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from tests.server.test_process import _key, _serve, _write_events

_EVENTS = 4_000  # ~1.4 MB of SSE frames: more than a stuck client's socket buffers hold


def _unread_bytes(sock: socket.socket) -> int:
    """Bytes waiting in ``sock``'s receive buffer (what the server sent and we did not read)."""
    raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, struct.pack("i", 0))
    return int(struct.unpack("i", raw)[0])


async def _until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


async def test_sigterm_tells_every_stream_and_exits_within_5_s_despite_a_stuck_client(
    tmp_path: Path,
) -> None:
    events = tmp_path / "events.jsonl"
    _write_events(events, "shutdown", [150_000.0] * _EVENTS)
    data = tmp_path / "data"
    data.mkdir()
    key = _key(data)
    with _serve(data, "--source", "replay", "--replay", str(events), "--speed", "1000") as served:
        process, port, url = served.process, served.port, served.url

        def health() -> dict[str, int]:
            return dict(httpx.get(f"{url}/v1/health", timeout=2).json())

        await _until(lambda: health()["last_seq"] >= _EVENTS, 60, "the replay to be stored")
        # The stuck client asks for everything stored, then never reads: the server's writes
        # to it block once its socket buffers are full.
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4_096)
        stuck.connect(("127.0.0.1", port))
        stuck.sendall(
            f"GET /v1/stream/sse?api_key={key}&since_seq=0 HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n\r\n".encode()
        )
        await _until(lambda: _unread_bytes(stuck) > 1_000, 30, "the stuck client's buffer")
        async with (
            connect(
                f"ws://127.0.0.1:{port}/v1/stream", additional_headers={"X-API-Key": key}
            ) as ws,
            httpx.AsyncClient(base_url=url, timeout=30) as http,
            http.stream("GET", "/v1/stream/sse", params={"api_key": key}) as sse,
        ):
            await ws.send(json.dumps({"op": "subscribe"}))
            assert json.loads(await ws.recv())["type"] == "subscribed"
            await _until(lambda: health()["stream_clients"] == 3, 30, "three streams")
            sse_lines: list[str] = []

            async def read_sse() -> None:
                async for line in sse.aiter_lines():
                    sse_lines.append(line)

            reader = asyncio.create_task(read_sse())
            ws_frames: list[dict[str, object]] = []

            async def read_ws() -> None:
                async for raw in ws:
                    ws_frames.append(json.loads(raw))

            ws_reader = asyncio.create_task(read_ws())
            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM)
            await _until(lambda: process.poll() is not None, 8, "the server to exit")
            took = time.monotonic() - signalled
            await asyncio.wait_for(asyncio.gather(ws_reader, reader), 10)
        stuck.close()
        assert process.stdout is not None
        output = "\n".join(served.startup) + process.stdout.read()
    assert took < 5.0, f"exit took {took:.1f} s after SIGTERM"
    # Quietly: the stalled client's connection is aborted, not left to uvicorn's timeout.
    assert "Traceback" not in output, output
    assert "ERROR" not in output, output
    assert ws.close_code == 1001
    assert ws.close_reason == "server_shutdown"
    assert ws_frames[-1]["type"] == "error"
    assert ws_frames[-1]["code"] == "server_shutdown"
    # The SSE client that reads gets the reason as its last event, before the body ends.
    events_seen = [line for line in sse_lines if line.startswith("event: ")]
    assert events_seen[-1] == "event: error"
    last_data = json.loads(next(x for x in reversed(sse_lines) if x.startswith("data: "))[6:])
    assert last_data["code"] == "server_shutdown"
