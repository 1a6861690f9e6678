"""One fresh account opening the dashboard twice, 4 s apart, while the open hour is busy: what
its REST requests cost the server and what they leave of the account's rate limit.

Run (from the repository root; niced, the machine is shared)::

    nice -n 10 .venv/bin/python bench/dashboard_budget.py --data-dir /tmp/crash [--top default]

``--data-dir`` holds a simulated history whose last hour is now; the script makes one first if
the folder has none (``purpleflea sim``, 275 markets, from yesterday 00:00 UTC to now: ~1 day,
a few minutes of CPU). It starts a tracker on that folder on a loopback port (the tests'
harness, the default rate limit of 10 requests/s after a burst of 40), creates a fresh
account, and sends the REST requests the dashboard makes when it opens (history page, active
cascades, markets, coverage, the top markets of the last hour) ``--opens`` times (2),
``--gap`` seconds apart. Per request: status, wall seconds, the process's CPU seconds (server
and this client share it; the client's part is a few ms; with ``--busy``, the other work's
too) and the account's tokens left after it (below 0: any request is refused, 429, and the
account's stream replays wait, until the refill pays the debt).

``--busy F`` keeps the server's event loop busy F of each 25 ms with other work (a crash's
ingest and streams, which shared the loop with the aggregate in the served simulator): the
requests' wall time stretches as it did at load 10-12, their own CPU does not.

``--top default`` asks for the top markets as the dashboard did (the estimate computed and
dropped); ``--top measured`` as it does now (``estimate=false``; a base without the parameter
refuses it). Run a base commit with ``PYTHONPATH=<its src>`` to compare; state the load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' server harness is reused, not copied

from tests.server.conftest import make_config, running_server  # noqa: E402

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


def ensure_history(data_dir: Path) -> None:
    """A simulated history ending now (``sim`` ends it at ``--start`` plus ``--days``)."""
    if (data_dir / "purpleflea.sqlite").exists():
        return
    now = time.time() * 1000
    start = int(now) // DAY_MS * DAY_MS - DAY_MS
    days = round((now - start) / DAY_MS + 0.005, 2)
    day = time.strftime("%Y-%m-%d", time.gmtime(start / 1000))
    subprocess.run(
        [
            *(sys.executable, "-m", "purpleflea.cli", "sim", "--data-dir", str(data_dir)),
            *("--days", str(days), "--start", day, "--no-progress"),
        ],
        check=True,
    )


def dashboard_requests(top: str) -> list[tuple[str, dict[str, object]]]:
    """What the dashboard asks when it opens (app.js, coverage.js, top.js)."""
    start = (int(time.time() * 1000) - HOUR_MS) // 60_000 * 60_000
    aggregate: dict[str, object] = {"interval": "1h", "group_by": "market", "start": start}
    if top == "measured":
        aggregate["estimate"] = "false"
    return [
        ("/v1/liquidations", {"limit": 50}),
        ("/v1/cascades", {"status": "active"}),
        ("/v1/markets", {}),
        ("/v1/coverage", {}),
        ("/v1/liquidations/aggregate", aggregate),
    ]


async def other_work(busy: float) -> None:
    """Spin ``busy`` of every 25 ms on the loop, as other work between a request's steps."""
    while True:
        until = time.perf_counter() + 0.025 * busy
        while time.perf_counter() < until:
            pass
        await asyncio.sleep(0.025 * (1 - busy))


async def main(args: argparse.Namespace) -> None:
    config = make_config(args.data_dir)
    async with running_server(config) as live:
        busy = asyncio.create_task(other_work(args.busy)) if args.busy > 0 else None
        key = live.server.keys.create("fresh", "bench")
        limiter = live.server.gate.limiter
        async with httpx.AsyncClient(
            base_url=live.url, headers={"X-API-Key": key.key}, timeout=60
        ) as http:
            for opening in range(1, args.opens + 1):
                if opening > 1:
                    await asyncio.sleep(args.gap)
                for path, params in dashboard_requests(args.top):
                    cpu, wall = time.process_time(), time.monotonic()
                    answer = await http.get(path, params=params)
                    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
                    tokens, _ = limiter._buckets["fresh"]  # a bench's peek at the bucket
                    note = ""
                    if answer.status_code != 200:
                        note = answer.json()["error"]["message"][-40:]
                    print(
                        f"open {opening} {path:28} {answer.status_code} wall {wall:5.2f} s "
                        f"cpu {cpu:5.3f} s tokens left {tokens:6.1f} {note}"
                    )
        if busy is not None:
            busy.cancel()
    print(f"load {os.getloadavg()[0]:.1f} (1 min) at the end")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--top", choices=("default", "measured"), default="measured")
    parser.add_argument("--gap", type=float, default=4.0)
    parser.add_argument("--opens", type=int, default=2, help="how many times it is opened")
    parser.add_argument("--busy", type=float, default=0.0, help="other work's share of the loop")
    arguments = parser.parse_args()
    arguments.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_history(arguments.data_dir)
    asyncio.run(main(arguments))
