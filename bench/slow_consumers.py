"""Stalled stream clients: how soon the server cuts them, and how soon SIGTERM exits with them.

Run (one command, from the repository root)::

    .venv/bin/python bench/slow_consumers.py                  # 100 SSE + 100 WebSocket
    .venv/bin/python bench/slow_consumers.py --clients 20     # quicker look

The server is the real command (``purpleflea serve --source sim``, real-time speed unless
``--speed``) in its own process. This process opens ``--clients`` SSE streams and as many
WebSocket streams that subscribe and then never read (small receive windows, as a client
that stalls), plus one SDK client that reads everything. It reports when the server's
``/v1/health`` counts the stalled ones cut as slow consumers, how many events the reading
client got (and whether it had to reconnect), then opens a fresh set of stalled SSE clients
and times the exit after SIGTERM. Issue 16 found stalled SSE clients held for 60 s and more
(never cut), stalled WebSocket clients cut in 20-35 s, and SIGTERM hanging 40 s and more.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

import purpleflea
from serving import until_serving


def stalled_socket(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4_096)
    sock.connect(("127.0.0.1", port))
    return sock


def stalled_sse(port: int, key: str) -> socket.socket:
    sock = stalled_socket(port)
    sock.sendall(f"GET /v1/stream/sse?api_key={key} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return sock


async def stalled_ws(port: int, key: str) -> ClientConnection:
    raw = stalled_socket(port)
    raw.setblocking(False)
    ws = await connect(
        f"ws://127.0.0.1:{port}/v1/stream",
        additional_headers={"X-API-Key": key},
        max_queue=1,  # stops reading the socket once one frame waits unread
        sock=raw,
    )
    await ws.send(json.dumps({"op": "subscribe"}))
    return ws


async def health(http: httpx.AsyncClient) -> dict[str, Any]:
    return dict((await http.get("/v1/health")).json())


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="pf-slow-") as data_dir:
        command = [
            str(Path(sys.executable).with_name("purpleflea")),
            "serve",
            "--data-dir",
            data_dir,
            "--port",
            "0",
            "--speed",
            str(args.speed),
            # Every client here belongs to one account: lift the per-account caps.
            "--streams-per-account",
            str(10 * args.clients),
            "--stream-opens-per-min",
            str(10 * args.clients),
        ]
        if args.buffer_bytes:
            command += ["--stream-buffer-bytes", str(args.buffer_bytes)]
        log = Path(data_dir) / "server.log"
        with log.open("wb") as out:
            server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            port = await until_serving(log, timeout_s=30, process=server)
            await measure(args, server, port, f"http://127.0.0.1:{port}")
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()


async def measure(
    args: argparse.Namespace, server: subprocess.Popen[bytes], port: int, url: str
) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        key = (await http.post("/v1/keys", json={"account": "bench"})).json()["key"]
        client = purpleflea.LiquidationClient(api_key=key, base_url=url)
        received = 0
        async with client.stream() as fast:

            async def read_fast() -> None:
                nonlocal received
                async for _ in fast:
                    received += 1

            reader = asyncio.create_task(read_fast())
            sse = [stalled_sse(port, key) for _ in range(args.clients)]
            ws = [await stalled_ws(port, key) for _ in range(args.clients)]
            stalled = 2 * args.clients
            started = time.monotonic()
            first_seq = (await health(http))["last_seq"]
            print(f"{stalled} stalled clients open ({args.clients} SSE, {args.clients} WebSocket)")
            print("| s | slow consumers cut | streams open | events published | fast client got |")
            print("|---|---|---|---|---|")
            cut_all = None
            while time.monotonic() - started < args.limit:
                await asyncio.sleep(1.0)
                state = await health(http)
                cut = state["streams_closed"].get("slow_consumer", 0)
                elapsed = time.monotonic() - started
                print(
                    f"| {elapsed:.0f} | {cut} | {state['stream_clients']} | "
                    f"{state['last_seq'] - first_seq} | {received} |"
                )
                if cut >= stalled:
                    cut_all = elapsed
                    break
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            reconnects = fast.reconnects
        for sock in sse:
            sock.close()
        for connection in ws:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 1)
        if cut_all is None:
            print(f"\nnot every stalled client was cut within {args.limit:g} s")
        else:
            print(f"\nall {stalled} stalled clients cut within {cut_all:.0f} s")
        print(f"the reading client: {received} events, {reconnects} reconnects")
        print(f"streams closed, by reason: {(await health(http))['streams_closed']}")
        fresh = [stalled_sse(port, key) for _ in range(args.clients)]
        await asyncio.sleep(2.0)  # let their socket buffers fill
        signalled = time.monotonic()
        server.send_signal(signal.SIGTERM)
        while server.poll() is None and time.monotonic() - signalled < 60:
            await asyncio.sleep(0.05)
        took = time.monotonic() - signalled
        print(f"SIGTERM with {args.clients} fresh stalled SSE clients: exited in {took:.2f} s")
        for sock in fresh:
            sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=100, help="stalled clients of each kind")
    parser.add_argument("--speed", type=float, default=1.0, help="simulator speed")
    parser.add_argument("--buffer-bytes", type=int, default=0, help="--stream-buffer-bytes")
    parser.add_argument("--limit", type=float, default=180.0, help="seconds to wait for cuts")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
