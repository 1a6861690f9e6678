"""What a connection refused by the per-address cap costs the server, against one admitted.

    nice -n 10 .venv/bin/python bench/conncap.py --connections 3000

Starts ``purpleflea serve --source none`` on a loopback port of its choosing (``--port 0``) with
``--connections-per-address 1``, holds that one slot from 127.0.0.1, and opens connections one
after another from the same address (refused) and from 127.0.0.2 (admitted), each sending
``GET /v1/health`` and reading to the end, and from 127.0.0.2 connections closed by the client
at once (what accepting one costs uvicorn, as an attacker's did before the cap). Server CPU
(user + system, from ``/proc/PID/stat``) over each batch and a settling second after it (the
server may still be accepting when the client is done), less what the idle server spends in a
second, divided by the connections, is the figure; wall time is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from procfs import cpu_seconds
from serving import until_serving

_SETTLE_S = 1.0
_REQUEST = b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def one(port: int, source: str, request: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), source_address=(source, 0)) as conn:
        if not request:  # the client hangs up first: what accepting alone costs
            return b"(none)"
        conn.sendall(_REQUEST)
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass  # the refusal's close may reset: the unread request is discarded
        return answer[:12]


def batch(
    pid: int, port: int, source: str, n: int, request: bool
) -> tuple[float, float, dict[bytes, int]]:
    seen: dict[bytes, int] = {}
    cpu, wall = cpu_seconds(pid), time.perf_counter()
    for _ in range(n):
        status = one(port, source, request)
        seen[status] = seen.get(status, 0) + 1
    wall = time.perf_counter() - wall
    time.sleep(_SETTLE_S)
    return cpu_seconds(pid) - cpu, wall, seen


def idle_cpu_s(pid: int) -> float:
    """What the idle server spends in :data:`_SETTLE_S` (its timers)."""
    cpu = cpu_seconds(pid)
    time.sleep(_SETTLE_S)
    return cpu_seconds(pid) - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pf-conncap-") as data:
        command = [str(Path(sys.executable).with_name("purpleflea")), "serve", "--source", "none"]
        command += ["--data-dir", data, "--port", "0", "--connections-per-address", "1"]
        log = Path(data) / "server.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            # From 127.0.0.2: 127.0.0.1's one slot is the one the rounds hold.
            wait = until_serving(log, timeout_s=60, process=proc, local_address="127.0.0.2")
            port = asyncio.run(wait)
            print(f"load average: {os.getloadavg()}")
            for _ in range(args.rounds):
                for kind, source, request in (
                    ("refused", "127.0.0.1", True),
                    ("admitted", "127.0.0.2", True),
                    ("accepted, client hangs up", "127.0.0.2", False),
                ):
                    # 127.0.0.1's one slot, opened afresh: the header deadline closes an idle
                    # connection after 10 s.
                    held = socket.create_connection(("127.0.0.1", port))
                    while one(port, "127.0.0.1").startswith(b"HTTP/1.1 200"):  # until it counts
                        time.sleep(0.05)
                    idle = idle_cpu_s(proc.pid)
                    cpu, wall, seen = batch(proc.pid, port, source, args.connections, request)
                    held.close()
                    cpu -= idle
                    per = cpu / args.connections * 1e6
                    print(
                        f"{kind:26} {args.connections} connections: server CPU {cpu:.2f} s "
                        f"({per:.0f} us each), wall {wall:.2f} s, answers {seen}"
                    )
            print(f"load average: {os.getloadavg()}")
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
