"""How many log lines an anonymous client makes a served tracker write.

uvicorn logs a warning for each request whose fault is its own: an ``Upgrade`` other than
WebSocket (``h2c``), a request that is not HTTP. No key is needed for either. Against a running
``purpleflea serve`` (its port, its process id and the file its stderr goes to)::

    .venv/bin/python bench/log_noise.py --port PORT --pid PID --log serve.err

sends ``--upgrades`` h2c upgrade requests on one keep-alive connection (each answered as plain
HTTP/1.1), then ``--invalid`` requests that are not HTTP, each on a new connection (answered
400 and closed), and prints the time taken, the server's CPU seconds (from /proc) and how many
lines and bytes its log grew by. With ``--resets N`` (``--upgrades 0 --invalid 0`` to run it
alone), N connections each read one ``GET /v1/health`` answer and are then reset (RST), and
the count waits past uvicorn's 5 s keep-alive timer, which fired on reset connections.

Results: bench/results/attack.md (branch ``attack4``).
"""

from __future__ import annotations

import argparse
import socket
import struct
import time
from pathlib import Path

from procfs import cpu_seconds

H2C = (
    b"GET /v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\n"
    b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
)


def upgrades(port: int, count: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.settimeout(10)
        received = b""
        for sent in range(1, count + 1):
            conn.sendall(H2C)
            while received.count(b"HTTP/1.1 ") < sent:
                received += conn.recv(65536)


def not_http(port: int, count: int) -> None:
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.settimeout(10)
            conn.sendall(b"GARBAGE\r\n\r\n")
            conn.recv(1000)


def answered_then_reset(port: int, count: int) -> None:
    for _ in range(count):
        conn = socket.create_connection(("127.0.0.1", port))
        conn.settimeout(10)
        conn.sendall(b"GET /v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        received = b""
        while b"\r\n\r\n" not in received:  # the head; the body is in the same write
            received += conn.recv(65536)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # with SO_LINGER 0: a reset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True, help="the server's stderr file")
    parser.add_argument("--upgrades", type=int, default=2000)
    parser.add_argument("--invalid", type=int, default=500)
    parser.add_argument("--resets", type=int, default=0)
    args = parser.parse_args()
    text = args.log.read_bytes()
    lines, size = text.count(b"\n"), len(text)
    cpu = cpu_seconds(args.pid)
    start = time.monotonic()
    upgrades(args.port, args.upgrades)
    middle = time.monotonic()
    not_http(args.port, args.invalid)
    end = time.monotonic()
    answered_then_reset(args.port, args.resets)
    resets = time.monotonic() - end
    time.sleep(6.5 if args.resets else 0.5)  # the keep-alive timers; the last lines
    cpu = cpu_seconds(args.pid) - cpu
    text = args.log.read_bytes()
    grew = text.count(b"\n") - lines
    print(
        f"{args.upgrades} h2c upgrades in {middle - start:.2f} s, {args.invalid} not-HTTP "
        f"requests in {end - middle:.2f} s, {args.resets} reset connections in {resets:.2f} s; "
        f"server CPU {cpu:.2f} s; its log grew by "
        f"{grew} lines, {len(text) - size} bytes"
    )


if __name__ == "__main__":
    main()
