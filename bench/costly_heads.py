"""What one anonymous request with a costly head costs a served tracker, before any key.

Against a running ``purpleflea serve`` (its port and process id; ``--source none`` keeps the
server's own work out of the reading)::

    .venv/bin/python bench/costly_heads.py --port PORT --pid PID --requests 300

Each shape is sent ``--requests`` times, one request at a time, on a new connection each (a
server that closes after refusing a head cannot be asked again on the same one), as raw bytes
so the head is exactly what the row says. Printed per shape: the status the server answered,
and the server's CPU per request from /proc (the server's own, not this client's).

Shapes: ``GET /v1/health`` (the floor), the same with 3,000 short header lines (30 KB),
``GET /v1/liquidations`` with a 63 KB query of 4,500 parameters and no key, and the same
query on a path that does not exist; the dashboard's page and its largest script (anyone may
ask for them).

Results: bench/results/attack.md ("Costly heads for anyone").
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter

from procfs import cpu_seconds

QUERY = "&".join(["market=A-PERP"] * 4_500)


def head(target: str, extra_headers: int = 0) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"X-Pad-{n}: {n:06d}" for n in range(extra_headers)]
    return ("\r\n".join(lines) + "\r\nConnection: close\r\n\r\n").encode()


SHAPES = {
    "GET /v1/health": head("/v1/health"),
    "GET /v1/health + 3,000 header lines": head("/v1/health", 3_000),
    "GET /v1/liquidations?<63 KB, 4,500 parameters>, no key": head(f"/v1/liquidations?{QUERY}"),
    "GET /nope?<the same query>": head(f"/nope?{QUERY}"),
    "GET / (the dashboard's page)": head("/"),
    "GET /static/app.js (15 KB)": head("/static/app.js"),
}


async def ask(port: int, request: bytes) -> int:
    """The status the server answered ``request`` with; 0 for a connection closed first."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    status_line = b""
    try:
        writer.write(request)
        await writer.drain()
        status_line = await reader.readline()
        await reader.read()  # to the server's close
    except ConnectionResetError:
        pass  # a server refusing a head closes with the rest of it unread: a reset, here
    finally:
        writer.close()
    parts = status_line.split()
    return int(parts[1]) if len(parts) > 1 else 0


async def measure(port: int, pid: int, requests: int) -> None:
    for name, request in SHAPES.items():
        await ask(port, request)  # anything lazily built on a first request, outside the reading
        statuses: Counter[int] = Counter()
        cpu = cpu_seconds(pid)
        for _ in range(requests):
            statuses[await ask(port, request)] += 1
        spent = cpu_seconds(pid) - cpu
        answered = ", ".join(f"{status} x{n}" for status, n in sorted(statuses.items()))
        print(f"{name}: {answered}; server CPU {1000 * spent / requests:.2f} ms a request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True, help="the server's process id")
    parser.add_argument("--requests", type=int, default=300, help="of each shape")
    args = parser.parse_args()
    asyncio.run(measure(args.port, args.pid, args.requests))


if __name__ == "__main__":
    main()
