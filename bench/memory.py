"""Server memory: RSS of ``purpleflea serve --source sim`` (275 markets) with 100 stream clients.

Run (one command, from the repository root)::

    .venv/bin/python bench/memory.py                 # 4 minutes
    .venv/bin/python bench/memory.py --minutes 1     # quicker look

The server is the real command (``purpleflea serve --source sim``, default 275 simulated
markets, real-time speed) in its own process with a fresh data folder. This process opens
``--clients`` WebSocket streams to it (all channels, every event, each client reading as fast
as it can, as SDK users do) and samples the server's resident set size (``VmRSS`` and its
peak ``VmHWM`` from /proc) every ``--every`` seconds. Goal: at most 500 MB after a few minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

GOAL_MB = 500.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


async def reader(url: str, key: str, counts: list[int], index: int) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with connect(url, additional_headers=headers, max_size=2**22) as ws:
        await ws.send(json.dumps({"op": "subscribe", "channels": ["liquidations", "cascades"]}))
        async for _ in ws:
            counts[index] += 1


async def run(args: argparse.Namespace) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="pf-mem-") as data_dir:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("purpleflea")),
                "serve",
                "--source",
                "sim",
                "--markets",
                str(args.markets),
                "--data-dir",
                data_dir,
                "--port",
                str(port),
                # Every client here belongs to one account: lift the per-account caps.
                "--streams-per-account",
                str(args.clients),
                "--stream-opens-per-min",
                str(args.clients),
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            await _measure(args, server.pid, port, Path(data_dir))
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


async def _measure(args: argparse.Namespace, pid: int, port: int, data_dir: Path) -> None:
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url) as http:
        for _ in range(300):
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/v1/health")).status_code == 200:
                    break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError("the server did not come up in 30 s")
        created = await http.post("/v1/keys", json={"account": "bench", "name": "memory"})
        created.raise_for_status()
        key = created.json()["key"]
        idle_rss, _ = memory_mb(pid)
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}; server pid {pid}, {args.markets} simulated markets; "
            f"RSS before clients {idle_rss:.0f} MB",
            flush=True,
        )
        counts = [0] * args.clients
        ws_url = f"ws://127.0.0.1:{port}/v1/stream"
        tasks = [asyncio.create_task(reader(ws_url, key, counts, i)) for i in range(args.clients)]
        started = time.monotonic()
        print("| minute | server RSS MB | peak RSS MB | events stored | frames to clients |")
        print("|---:|---:|---:|---:|---:|")
        samples: list[float] = []
        while time.monotonic() - started < args.minutes * 60:
            await asyncio.sleep(args.every)
            elapsed = time.monotonic() - started
            failed = [t for t in tasks if t.done()]
            if failed:
                failed[0].result()  # a client died: show why
            rss, peak = memory_mb(pid)
            samples.append(rss)
            try:
                stored = f"{(await http.get('/v1/health', timeout=30)).json()['last_seq']:,}"
            except httpx.TimeoutException:
                stored = "(health timed out)"  # a busy server: RSS is what is measured here
            print(
                f"| {elapsed / 60:.1f} | {rss:.0f} | {peak:.0f} | {stored} | {sum(counts):,} |",
                flush=True,
            )
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        db_mb = sum(f.stat().st_size for f in data_dir.glob("*.sqlite*")) / 1e6
        final, peak = samples[-1], memory_mb(pid)[1]
        verdict = "meets" if peak <= GOAL_MB else "misses"
        print(
            f"\nafter {args.minutes:g} min with {args.clients} clients: RSS {final:.0f} MB, "
            f"peak {peak:.0f} MB ({verdict} the {GOAL_MB:.0f} MB goal); data folder "
            f"{db_mb:.0f} MB on disk"
        )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--markets", type=int, default=275)
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--every", type=float, default=15.0)
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
