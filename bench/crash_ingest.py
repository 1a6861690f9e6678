"""Crash-rate ingest: one fake venue sends 20,000 liquidations/s for 60 s through the tracker.

Run (from the repository root)::

    .venv/bin/python bench/crash_ingest.py                      # 20,000/s for 60 s
    .venv/bin/python bench/crash_ingest.py --rate 5000 --seconds 10   # a quick look

Three processes on loopback, one clock (``time.perf_counter_ns`` is CLOCK_MONOTONIC on
Linux, the same in every process):

- **this process**: the fake Binance USD-M exchange of ``bench/e2e.py`` (one ``forceOrder``
  frame per event, the venue's own format, sent at a paced rate; frame ``k`` carries
  ``o.T = T0 + k``);
- **the tracker** (``bench/e2e.py _tracker``): ``build_server`` + ``create_app`` under
  uvicorn as ``purpleflea serve`` runs it, the real ``LiveIngest`` on the fake: the
  connection runner, the USD-M normalizer, the cascade engine, SQLite, the bus;
- **one stream client** (``bench/crash_ingest.py _client``): the SDK's stream, recording
  when each event arrives; what it received is the published feed.

Zero loss: the client received every frame's event exactly once, and the tracker's counters
say every one was published (none dropped, none a duplicate). Lag: an event's arrival at the
client minus the moment its frame was sent, per second of sending (p99 and max), and minus
the moment the paced schedule said to send it (which also counts a send held up because the
tracker was not reading). Where the time goes: the tracker's ``/v1/metrics`` stage latencies
(receive -> persisted -> published -> written) and each process's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from websockets.asyncio.server import serve

sys.path.insert(0, str(Path(__file__).parent))  # the fake exchange is e2e.py's, not a copy
import e2e
from procfs import memory_mb


async def run_client(url: str, key: str, out: str) -> None:
    """The stream client: arrivals (frame index, perf_counter_ns) into ``out`` at SIGTERM."""
    receiver = e2e.Receiver()
    ready = asyncio.Event()
    task = asyncio.create_task(e2e.sdk_client(url, key, receiver, ready))
    await asyncio.wait_for(ready.wait(), 30)
    print(json.dumps({"ready": True}), flush=True)
    await e2e._until_terminated()
    task.cancel()
    np.savez(out, ks=np.frombuffer(receiver.ks, np.int64), at=np.frombuffer(receiver.at, np.int64))


def _stage_quantiles(metrics: str) -> dict[str, dict[str, float]]:
    """Per stage: count, mean and the p50/p99 bucket bounds from the histogram text."""
    buckets: dict[str, list[tuple[float, float]]] = {}
    sums: dict[str, float] = {}
    pattern = (
        r'^purpleflea_stage_latency_seconds_(bucket|sum)\{stage="(\w+)"(?:,le="([^"]+)")?\} (\S+)$'
    )
    for kind, stage, le, value in re.findall(pattern, metrics, re.M):
        if kind == "sum":
            sums[stage] = float(value)
        else:
            buckets.setdefault(stage, []).append((float(le), float(value)))
    out: dict[str, dict[str, float]] = {}
    for stage, rows in buckets.items():
        total = rows[-1][1]
        row = {"count": total, "mean_ms": 1e3 * sums.get(stage, 0.0) / max(total, 1)}
        for name, q in (("p50_ms", 0.5), ("p99_ms", 0.99)):
            row[name] = next((1e3 * le for le, n in rows if n >= q * total), float("inf"))
        out[stage] = row
    return out


async def main(args: argparse.Namespace) -> None:
    exchange = e2e.FakeBinance()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; load average before: {os.getloadavg()[0]:.2f}"
    )
    async with serve(
        exchange.handler, "127.0.0.1", 0, compression=None, ping_interval=None
    ) as fake:
        exchange_url = f"ws://127.0.0.1:{next(iter(fake.sockets)).getsockname()[1]}/market/ws"
        with tempfile.TemporaryDirectory(prefix="pf-crash-") as data_dir:
            profile = args.profile or ""
            # One stream worker (the tracker process itself): as `purpleflea serve` by default.
            tracker, ready = e2e.spawn(
                "_tracker", exchange_url, data_dir, profile, "shipped", "1", "settle"
            )
            out = Path(data_dir) / "arrivals.npz"
            client = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "_client",
                    f"http://127.0.0.1:{ready['port']}",
                    ready["key"],
                    str(out),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                assert client.stdout is not None
                if not client.stdout.readline():
                    raise RuntimeError("the stream client exited before it subscribed")
                await asyncio.wait_for(exchange.subscribed.wait(), 30)
                result = await _run(args, exchange, tracker, client, ready["port"])
            finally:
                e2e.stop(client)
                e2e.stop(tracker)
            arrivals = np.load(out)
    _report(args, exchange, arrivals["ks"], arrivals["at"], result)


async def _run(
    args: argparse.Namespace,
    exchange: e2e.FakeBinance,
    tracker: subprocess.Popen[str],
    client: subprocess.Popen[str],
    port: int,
) -> dict[str, Any]:
    pids = {"tracker": tracker.pid, "client": client.pid, "fake venue": os.getpid()}
    cpu = {name: e2e.cpu_seconds(pid) for name, pid in pids.items()}
    rss: list[float] = []

    async def sample_rss() -> None:
        while True:
            rss.append(memory_mb(tracker.pid, "VmHWM"))
            await asyncio.sleep(1.0)

    sampler = asyncio.create_task(sample_rss())
    started = time.perf_counter()
    sent = await exchange.paced(1, args.rate, args.seconds)
    send_wall = time.perf_counter() - started
    # Everything sent should arrive within the lag goal; wait longer, to count what is late.
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        deadline = time.monotonic() + 30
        published = 0
        while time.monotonic() < deadline:
            metrics = (await http.get("/v1/metrics", timeout=10)).text
            found = re.search(r'events_total\{outcome="published"\} (\S+)', metrics)
            published = int(float(found.group(1))) if found else 0
            if published >= sent:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.0)  # the last frames' way to the client
        metrics = (await http.get("/v1/metrics", timeout=10)).text
    wall = time.perf_counter() - started
    sampler.cancel()
    cores = {name: (e2e.cpu_seconds(pid) - cpu[name]) / wall for name, pid in pids.items()}
    counters = {
        k: int(float(v)) for k, v in re.findall(r'events_total\{outcome="(\w+)"\} (\S+)', metrics)
    }
    return {
        "sent": sent,
        "send_wall": send_wall,
        "wall": wall,
        "cores": cores,
        "counters": counters,
        "stages": _stage_quantiles(metrics),
        "rss_peak_mb": max(rss) if rss else float("nan"),
    }


def _report(
    args: argparse.Namespace,
    exchange: e2e.FakeBinance,
    ks: np.ndarray[Any, np.dtype[np.int64]],
    at: np.ndarray[Any, np.dtype[np.int64]],
    result: dict[str, Any],
) -> None:
    sent_ns = np.frombuffer(exchange.sent_ns, np.int64)
    phases = np.frombuffer(exchange.phase_of, np.int8)
    frames = np.flatnonzero(phases == 1)
    mask = np.isin(ks, frames)
    ks, at = ks[mask], at[mask]
    unique = np.unique(ks)
    lost = frames.size - unique.size
    repeated = ks.size - unique.size
    lag_ms = (at - sent_ns[ks]) / 1e6
    # A frame is stamped when the fake venue starts sending it, and that send waits while the
    # tracker reads too slowly to drain the socket: a tracker that falls behind by not reading
    # pushes its backlog into the venue, out of ``lag_ms``. Lag from each frame's place in the
    # paced schedule counts that wait too.
    due_ns = sent_ns[frames[0]] + (ks - frames[0]) * (1e9 / args.rate) if ks.size else ks
    due_lag_ms = (at - due_ns) / 1e6
    second = ((sent_ns[ks] - sent_ns[frames[0]]) // 1_000_000_000).astype(np.int64)
    per_second = [lag_ms[second == s] for s in range(int(second.max()) + 1)] if ks.size else []
    p99s = [float(np.percentile(v, 99)) for v in per_second if v.size]
    counters = result["counters"]
    print(
        f"\nsent {result['sent']:,} frames in {result['send_wall']:.1f} s "
        f"({result['sent'] / result['send_wall']:,.0f}/s offered {args.rate:,.0f}/s)"
    )
    print(f"tracker counters: {json.dumps(counters, sort_keys=True)}")
    print(f"client received {ks.size:,} events: {lost:,} lost, {repeated:,} repeated")
    if ks.size:
        print(
            f"lag (frame sent -> SDK callback): p50 {np.percentile(lag_ms, 50):.1f} ms, "
            f"p99 {np.percentile(lag_ms, 99):.1f} ms, max {lag_ms.max():.1f} ms; "
            f"worst second's p99 {max(p99s):.1f} ms"
        )
        print("p99 lag per second, ms: " + " ".join(f"{p:.0f}" for p in p99s))
        print(
            f"lag from schedule (frame due -> SDK callback): "
            f"p50 {np.percentile(due_lag_ms, 50):.1f} ms, "
            f"p99 {np.percentile(due_lag_ms, 99):.1f} ms, max {due_lag_ms.max():.1f} ms"
        )
    print(
        "\n| stage | events | mean ms | p50 ms (bucket) | p99 ms (bucket) |\n"
        "|---|---:|---:|---:|---:|"
    )
    for stage, row in result["stages"].items():
        print(
            f"| {stage} | {row['count']:,.0f} | {row['mean_ms']:.1f} | {row['p50_ms']:g} | "
            f"{row['p99_ms']:g} |"
        )
    cores = ", ".join(f"{name} {value:.2f}" for name, value in result["cores"].items())
    print(
        f"\ncores over {result['wall']:.1f} s: {cores}; "
        f"tracker RSS peak {result['rss_peak_mb']:.0f} MB"
    )
    # The figure load moves least: what the tracker spent per event, whatever it was given.
    per_event = result["cores"]["tracker"] * result["wall"] / max(result["sent"], 1)
    print(f"tracker CPU per event: {per_event * 1e6:.1f} µs")
    ok = lost == 0 and repeated == 0 and ks.size and lag_ms.max() < 1_000
    print(
        f"\nsummary: {args.rate:,.0f} events/s for {args.seconds:g} s: "
        f"{'met' if ok else 'missed'} (lost {lost:,}, max lag "
        f"{lag_ms.max() if ks.size else float('nan'):,.0f} ms, goal 0 lost and < 1,000 ms)"
    )


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20_000, help="events/s (default 20000)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long (default 60)")
    parser.add_argument("--profile", help="write a cProfile of the tracker process here")
    return parser.parse_args(argv)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_client":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        asyncio.run(run_client(*sys.argv[2:5]))
    else:
        asyncio.run(main(parse(sys.argv[1:])))
