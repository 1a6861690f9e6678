"""What a hostile account costs a served tracker: stream replays and long aggregates.

Against a running ``purpleflea serve`` (its port and process id), with a store already full
(``bench/history.py`` generates one; serve it with ``--source none --data-dir`` its folder)::

    .venv/bin/python bench/replay_attack.py --port PORT --pid PID --streams 4 --window 30

1. **replay**: ``--streams`` WebSocket streams of one account subscribe with ``since_seq: 0``
   and a market no event has (the whole store is read, nothing is sent), for ``--window``
   seconds, while another account asks ``GET /v1/cascades?limit=1`` every 0.1 s. Printed: the
   server's CPU seconds over the window (from /proc), how many replays finished, and the
   victim's latency before and during.
2. **aggregates** (``--aggregates``): a few aggregate shapes, each with the server's CPU
   seconds, wall time and peak RSS (VmHWM) after it.

Results: bench/results/attack.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

import httpx
import websockets

_YEAR_START = 1_735_689_600_000  # bench/history.py's first day (2025-01-01)
_DAY = 86_400_000


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().split(")")[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_gb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmHWM"))
    return int(line.split()[1]) / 1e6


def _ms(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


async def _replay(port: int, key: str, finished: list[float]) -> None:
    url = f"ws://127.0.0.1:{port}/v1/stream"
    async with websockets.connect(url, additional_headers={"X-API-Key": key}) as ws:
        await ws.send(json.dumps({"op": "subscribe", "since_seq": 0, "markets": ["NOPE-PERP"]}))
        await ws.recv()  # subscribed
        while json.loads(await ws.recv())["type"] != "heartbeat":
            pass
        finished.append(time.perf_counter())


async def replays(args: argparse.Namespace, http: httpx.AsyncClient) -> None:
    tag = str(time.time_ns())
    attacker = (await http.post("/v1/keys", json={"account": "attacker-" + tag})).json()["key"]
    victim = (await http.post("/v1/keys", json={"account": "victim-" + tag})).json()["key"]
    latencies: list[float] = []

    async def ask() -> None:
        while True:
            started = time.perf_counter()
            answer = await http.get("/v1/cascades?limit=1", headers={"X-API-Key": victim})
            latencies.append(time.perf_counter() - started)
            answer.raise_for_status()
            await asyncio.sleep(0.1)

    asker = asyncio.create_task(ask())
    await asyncio.sleep(2)
    before, latencies[:] = list(latencies), []
    finished: list[float] = []
    cpu, started = _cpu(args.pid), time.perf_counter()
    streams = [
        asyncio.create_task(_replay(args.port, attacker, finished)) for _ in range(args.streams)
    ]
    await asyncio.wait(streams, timeout=args.window)
    used, wall = _cpu(args.pid) - cpu, time.perf_counter() - started
    for task in (*streams, asker):
        task.cancel()
    print(
        f"replay: streams={args.streams} window={wall:.1f}s finished={len(finished)} "
        f"server_cpu={used:.1f}s ({used / wall:.2f} cores); victim p50 before "
        f"{_ms(before, 0.5):.0f} ms, during {_ms(latencies, 0.5):.0f} ms "
        f"(p99 {_ms(latencies, 0.99):.0f} ms, max {_ms(latencies, 1.0):.0f} ms)"
    )


async def aggregates(args: argparse.Namespace, http: httpx.AsyncClient) -> None:
    key = (await http.post("/v1/keys", json={"account": f"agg-{time.time_ns()}"})).json()["key"]
    end = _YEAR_START + 180 * _DAY
    for query in (
        "interval=1d&start=0&min_usd=0.01&group_by=side",
        f"interval=1d&start={end - 7 * _DAY}&end={end}&min_usd=0.01&group_by=side",
        f"interval=1m&start={end - 7 * _DAY}&end={end}&group_by=side",
        "interval=1d&start=0&group_by=side",
    ):
        cpu, started = _cpu(args.pid), time.perf_counter()
        answer = await http.get(f"/v1/liquidations/aggregate?{query}", headers={"X-API-Key": key})
        print(
            f"aggregate: {answer.status_code} {len(answer.content):,} B "
            f"wall={time.perf_counter() - started:.2f}s cpu={_cpu(args.pid) - cpu:.2f}s "
            f"peak_rss={_peak_rss_gb(args.pid):.2f} GB  {query}"
        )


async def main(args: argparse.Namespace) -> None:
    base = f"http://127.0.0.1:{args.port}"
    async with httpx.AsyncClient(base_url=base, timeout=args.timeout) as http:
        await replays(args, http)
        if args.aggregates:
            await aggregates(args, http)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True, help="the server's process id")
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--aggregates", action="store_true")
    parser.add_argument("--timeout", type=float, default=600.0)
    asyncio.run(main(parser.parse_args()))
