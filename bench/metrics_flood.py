"""What anonymous clients asking ``/v1/metrics`` as fast as they can cost a served tracker.

Against a running ``purpleflea serve`` (its port and process id)::

    .venv/bin/python bench/metrics_flood.py --port PORT --pid PID --window 10 --clients 1

For each route (``/v1/metrics``, then ``/v1/health`` to compare), ``--clients`` keep-alive
clients ask back to back for ``--window`` seconds. Printed per route: answers a second, the
server's CPU seconds per answer and its share of a core over the window (from /proc: the
server's own CPU, not this client's), and the slowest answer.

``--profile`` instead renders ``/v1/metrics`` in this process ``--renders`` times under
cProfile (a server built as ``serve --source none`` builds it, on a fresh data folder, its
startup heap settled as ``serve`` settles it) and prints the costliest functions.

Results: bench/results/attack.md (third round, fourth round).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

import httpx

from procfs import cpu_seconds


async def flood(port: int, pid: int, route: str, clients: int, window: float) -> None:
    answers: list[float] = []
    refused = 0

    async def ask(http: httpx.AsyncClient, until: float) -> None:
        nonlocal refused
        while time.monotonic() < until:
            started = time.perf_counter()
            answer = await http.get(route)
            if answer.status_code != 200:
                refused += 1
                continue
            answers.append(time.perf_counter() - started)

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30
    ) as http:
        await http.get(route)  # the connection opened before the window
        cpu, started = cpu_seconds(pid), time.monotonic()
        until = started + window
        await asyncio.gather(*(ask(http, until) for _ in range(clients)))
        elapsed, spent = time.monotonic() - started, cpu_seconds(pid) - cpu
    print(
        f"{route}: {clients} client(s), {len(answers)} answers in {elapsed:.1f} s "
        f"({len(answers) / elapsed:.0f}/s, {refused} refused), server CPU {spent:.2f} s "
        f"({spent / elapsed:.2f} of a core, {1000 * spent / max(1, len(answers)):.2f} ms an "
        f"answer), slowest {1000 * max(answers, default=0):.0f} ms"
    )


def profile(renders: int) -> None:
    # Imported here: the flood needs only httpx, and a profile builds a whole server.
    from starlette.requests import Request
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from purpleflea.server.app import create_app
    from purpleflea.server.config import ServerConfig
    from purpleflea.server.heap import settle_startup_heap

    with tempfile.TemporaryDirectory() as folder:
        app = create_app(ServerConfig(data_dir=Path(folder), source="none"))
        endpoint = next(
            r.endpoint for r in app.routes if isinstance(r, Route) and r.path == "/v1/metrics"
        )
        request = Request({"type": "http", "method": "GET", "path": "/v1/metrics", "headers": []})
        profiler = cProfile.Profile()

        async def render() -> tuple[float, int]:
            # On the server's own loop (the portal's thread), as a request is answered.
            size = len((await endpoint(request)).body)
            cpu = time.thread_time()
            profiler.enable()
            for _ in range(renders):
                await endpoint(request)
            profiler.disable()
            return (time.thread_time() - cpu) / renders, size

        with TestClient(app) as client:  # its lifespan starts the tracker
            settle_startup_heap()  # as `serve` does once started (its frozen heap is counted)
            each, size = client.portal.call(render)
    print(f"{renders} renders of {size:,} bytes on the server's loop: {1000 * each:.2f} ms each")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int)
    parser.add_argument("--pid", type=int)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--renders", type=int, default=400)
    args = parser.parse_args()
    if args.profile:
        profile(args.renders)
        return
    if args.port is None or args.pid is None:
        parser.error("--port and --pid name the server to flood (or --profile)")
    for route in ("/v1/metrics", "/v1/health"):
        asyncio.run(flood(args.port, args.pid, route, args.clients, args.window))


if __name__ == "__main__":
    main()
