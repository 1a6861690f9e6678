"""Server memory: RSS of ``purpleflea serve --source sim`` (275 markets) with 100 stream clients.

Run (one command, from the repository root)::

    .venv/bin/python bench/memory.py                 # 4 minutes
    .venv/bin/python bench/memory.py --minutes 1     # quicker look
    .venv/bin/python bench/memory.py --minutes 90 --clients 10 --every 60 --poll 2   # a soak
    .venv/bin/python bench/memory.py --minutes 20 --clients 10 --every 60 --speed 20  # ~7 sim h

The server is the real command (``purpleflea serve --source sim``, default 275 simulated
markets, real-time speed) in its own process with a fresh data folder. This process opens
``--clients`` WebSocket streams to it (all channels, every event, each client reading as fast
as it can, as SDK users do) and samples the server's resident set size (``VmRSS`` and its
peak ``VmHWM`` from /proc) every ``--every`` seconds. Goal: at most 500 MB after a few minutes.

A soak asks whether anything grows without bound while the server runs for hours: with
``--poll S`` a dashboard's REST reads run every S seconds beside the streams (recent
liquidations, active cascades, markets, the hourly aggregate, one market's heatmap, coverage),
each table row adds the server's open file descriptors and threads, the data folder's size, and
what the bounded state holds (``/v1/metrics``: the dedupe window's ids, the sampler's accounts),
and the end gives the RSS trend over the run's second half (a least-squares slope, MB an hour)
and the data folder's growth (MB an hour), so a leak shows as a slope, not as a single reading.

"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from procfs import memory_mb
from serving import until_serving

GOAL_MB = 500.0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise RuntimeError(f"no Threads line in /proc/{pid}/status")


def folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per hour."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread * 3600


class Poller:
    """What an open dashboard asks every few seconds, with one market's heatmap in turn."""

    def __init__(self, http: httpx.AsyncClient, key: str) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {key}"}
        self.requests = 0
        self.failures: dict[str, int] = {}
        self.slowest_s = 0.0

    async def run(self, every: float) -> None:
        turn = 0
        while True:
            # The markets seen so far (none in the first seconds): the heatmap goes round them.
            markets = [m["market"] for m in await self._get("/v1/markets", {}, key="markets")]
            hour_ago = int(time.time() * 1000) - 3_600_000
            await self._get("/v1/liquidations", {"limit": 200})
            await self._get("/v1/cascades", {"status": "active"})
            hourly = {"interval": "1h", "group_by": "market", "start": hour_ago}
            await self._get("/v1/liquidations/aggregate", hourly)
            if markets:
                await self._get(f"/v1/heatmap/{markets[turn % len(markets)]}", {})
            await self._get("/v1/coverage", {})
            turn += 1
            await asyncio.sleep(every)

    async def _get(self, path: str, params: dict[str, Any], key: str = "") -> Any:
        started = time.monotonic()
        answer = await self.http.get(path, params=params, headers=self.headers, timeout=60)
        self.slowest_s = max(self.slowest_s, time.monotonic() - started)
        self.requests += 1
        if answer.status_code != 200:
            route = path.split("/")[2]
            self.failures[route] = self.failures.get(route, 0) + 1
            if self.failures[route] == 1:  # the first of each route's failures, in full
                print(f"{path} answered {answer.status_code}: {answer.text[:300]}", flush=True)
            return []
        body = answer.json()
        return body[key] if key else body


#: The ``/v1/metrics`` gauges of what the server's bounded memory holds: the sequencer's dedupe
#: window (ids of the last wall-clock hour, at most 500,000) and each position sampler's accounts.
HELD_GAUGES = ("purpleflea_dedupe_window_ids", "purpleflea_position_sampler_accounts")


async def held(http: httpx.AsyncClient) -> dict[str, float]:
    """Each :data:`HELD_GAUGES` gauge summed over its labels (empty if /v1/metrics timed out)."""
    try:
        text = (await http.get("/v1/metrics", timeout=30)).text
    except httpx.TimeoutException:
        return {}
    sums: dict[str, float] = {}
    for line in text.splitlines():
        name = line.partition("{")[0].partition(" ")[0]
        if name in HELD_GAUGES:
            sums[name] = sums.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return sums


async def reader(url: str, key: str, counts: list[int], index: int) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with connect(url, additional_headers=headers, max_size=2**22) as ws:
        await ws.send(json.dumps({"op": "subscribe", "channels": ["liquidations", "cascades"]}))
        async for _ in ws:
            counts[index] += 1


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="pf-mem-") as data_dir:
        log = Path(data_dir) / "server.log"
        with log.open("wb") as out:
            server = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("purpleflea")),
                    "serve",
                    "--source",
                    "sim",
                    "--markets",
                    str(args.markets),
                    "--speed",
                    str(args.speed),
                    "--data-dir",
                    data_dir,
                    "--port",
                    "0",
                    # Every client here belongs to one account: lift the per-account caps.
                    "--streams-per-account",
                    str(args.clients),
                    "--stream-opens-per-min",
                    str(args.clients),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            port = await until_serving(log, timeout_s=30, process=server)
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
        created = await http.post("/v1/keys", json={"account": "bench", "name": "memory"})
        created.raise_for_status()
        key = created.json()["key"]
        idle_rss = memory_mb(pid)
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}; server pid {pid}, {args.markets} simulated markets; "
            f"RSS before clients {idle_rss:.0f} MB",
            flush=True,
        )
        counts = [0] * args.clients
        ws_url = f"ws://127.0.0.1:{port}/v1/stream"
        tasks = [asyncio.create_task(reader(ws_url, key, counts, i)) for i in range(args.clients)]
        poller = Poller(http, key)
        if args.poll:
            tasks.append(asyncio.create_task(poller.run(args.poll)))
        started = time.monotonic()
        print(
            "| minute | server RSS MB | peak RSS MB | events stored | frames to clients "
            "| open fds | threads | data folder MB | dedupe ids | sampler accounts |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        samples: list[tuple[float, float]] = []
        folder: list[tuple[float, float]] = []
        while time.monotonic() - started < args.minutes * 60:
            await asyncio.sleep(args.every)
            elapsed = time.monotonic() - started
            failed = [t for t in tasks if t.done()]
            if failed:
                failed[0].result()  # a client died: show why
            rss, peak = memory_mb(pid), memory_mb(pid, "VmHWM")
            samples.append((elapsed, rss))
            folder.append((elapsed, folder_mb(data_dir)))
            try:
                stored = f"{(await http.get('/v1/health', timeout=30)).json()['last_seq']:,}"
            except httpx.TimeoutException:
                stored = "(health timed out)"  # a busy server: RSS is what is measured here
            gauges = await held(http)
            dedupe, accounts = (
                f"{gauges[name]:,.0f}" if name in gauges else "-" for name in HELD_GAUGES
            )
            print(
                f"| {elapsed / 60:.1f} | {rss:.0f} | {peak:.0f} | {stored} | {sum(counts):,} "
                f"| {open_fds(pid)} | {threads(pid)} | {folder[-1][1]:.0f} | {dedupe} "
                f"| {accounts} |",
                flush=True,
            )
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        final, peak = samples[-1][1], memory_mb(pid, "VmHWM")
        verdict = "meets" if peak <= GOAL_MB else "misses"
        print(
            f"\nafter {args.minutes:g} min with {args.clients} clients: RSS {final:.0f} MB, "
            f"peak {peak:.0f} MB ({verdict} the {GOAL_MB:.0f} MB goal); data folder "
            f"{folder[-1][1]:.0f} MB on disk"
        )
        second_half = [point for point in samples if point[0] >= samples[-1][0] / 2]
        if len(second_half) >= 3:
            print(
                f"RSS trend over the second half ({len(second_half)} samples): "
                f"{slope_per_hour(second_half):+.1f} MB an hour; data folder "
                f"{slope_per_hour(folder):+.0f} MB an hour"
            )
        if args.poll:
            print(
                f"dashboard reads: {poller.requests:,} requests, slowest "
                f"{poller.slowest_s * 1000:.0f} ms, failed by route: {poller.failures or 'none'}"
            )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--markets", type=int, default=275)
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--every", type=float, default=15.0)
    parser.add_argument(
        "--speed", type=float, default=1.0, help="simulated time per real second (a soak's hours)"
    )
    parser.add_argument(
        "--poll", type=float, default=0.0, help="seconds between a dashboard's REST reads (0: none)"
    )
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
