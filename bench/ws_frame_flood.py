"""What a WebSocket client that floods frames the application never sees costs the server.

The stream's own limits count the client's messages (``flood``: 20 a second) and the bytes of
events waiting for it (``slow_consumer``). Two kinds of frame never reach them:

- **pings** (``--mode ping``): the WebSocket layer answers each with a pong at once, written
  to the socket whether or not the client reads;
- **fragments** (``--mode fragments``): a text message that never ends, its parts empty
  continuation frames, each kept until the message is complete.

Against a running ``purpleflea serve`` (its port and process id)::

    .venv/bin/python bench/ws_frame_flood.py --port PORT --pid PID --mode ping --seconds 20

One new account opens one stream (a filter that matches nothing), then sends frames as fast
as it can for ``--seconds`` and never reads (a 4 KiB receive buffer). Printed each second:
the server's CPU seconds and RSS (from /proc), what was sent, and whether the server still
holds the connection; then how long a ``GET /v1/health`` from another connection takes.

Results: bench/results/attack.md (third round).
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import time
import urllib.request

from procfs import cpu_seconds

#: A masked client frame with an all-zero mask (RFC 6455 allows any mask; XOR with zeros
#: leaves the payload as it is).
_MASK = b"\x00\x00\x00\x00"


def frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """One client frame of at most 125 bytes of payload."""
    assert len(payload) <= 125
    return bytes((opcode | (0x80 if fin else 0), 0x80 | len(payload))) + _MASK + payload


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS"))
    return int(line.split()[1]) / 1000


def register(port: int) -> str:
    body = json.dumps({"account": f"flood-{secrets.token_hex(4)}"}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/keys",
        data=body,
        headers={"Content-Type": "application/json", "Host": "127.0.0.1"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        key: str = json.loads(answer.read())["key"]
    return key


def open_stream(port: int, key: str) -> socket.socket:
    """A subscribed WebSocket stream over a raw socket that will not read from now on."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4_096)
    raw.connect(("127.0.0.1", port))
    raw.sendall(
        (
            "GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nX-API-Key: {key}\r\n\r\n"
        ).encode()
    )
    raw.settimeout(10)
    head = b""
    while b"\r\n\r\n" not in head:
        head += raw.recv(1)
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise SystemExit(f"no WebSocket: {head!r}")
    subscribe = json.dumps({"op": "subscribe", "markets": ["NOPE-PERP"]}).encode()
    raw.sendall(frame(0x1, subscribe))
    return raw


def batch(mode: str, count: int) -> bytes:
    if mode == "ping":
        return frame(0x9, b"p" * 125) * count
    return frame(0x0, b"", fin=False) * count


def health_ms(port: int) -> float:
    started = time.perf_counter()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/health", headers={"Host": "127.0.0.1"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        answer.read()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--mode", choices=("ping", "fragments"), default="ping")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()

    key = register(args.port)
    raw = open_stream(args.port, key)
    if args.mode == "fragments":  # the message that never ends
        raw.sendall(frame(0x1, b"{", fin=False))
    chunk = batch(args.mode, 2_000)
    raw.settimeout(0.05)
    cpu0, rss0, start = cpu_seconds(args.pid), _rss_mb(args.pid), time.monotonic()
    print(f"mode {args.mode}: server at {rss0:.0f} MB RSS, {health_ms(args.port):.0f} ms health")
    sent, next_report, held = 0, start + 1.0, True
    while time.monotonic() - start < args.seconds:
        try:
            sent += raw.send(chunk)
        except TimeoutError:
            pass  # the server stopped reading us (its backpressure): keep trying
        except OSError as exc:  # the server closed the connection
            print(f"connection ended after {time.monotonic() - start:.1f} s: {exc!r}")
            held = False
            break
        now = time.monotonic()
        if now >= next_report:
            next_report += 1.0
            print(
                f"{now - start:5.1f} s: sent {sent / 1e6:7.1f} MB, server CPU "
                f"{cpu_seconds(args.pid) - cpu0:5.1f} s, RSS {_rss_mb(args.pid):7.0f} MB"
            )
    elapsed = time.monotonic() - start
    print(
        f"total: {elapsed:.1f} s, sent {sent / 1e6:.1f} MB, server CPU "
        f"{cpu_seconds(args.pid) - cpu0:.1f} s, RSS {rss0:.0f} -> {_rss_mb(args.pid):.0f} MB, "
        f"connection {'held' if held else 'closed by the server'}; "
        f"a health check now takes {health_ms(args.port):.0f} ms"
    )
    raw.close()


if __name__ == "__main__":
    main()
