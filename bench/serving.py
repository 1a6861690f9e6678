"""The wait of every benchmark that starts ``purpleflea serve``: until it answers its health.

The server binds ``--port 0`` and its banner, in its log, names the port it got: a port
picked by the benchmark and released could be taken by another process before the server
bound it (the server then fails, or the benchmark measures the other one). Until the server's
startup is done a request waits or is refused: the benchmarks ask ``GET /v1/health`` every
0.1 s, each on a new connection the server closes after answering
(a server capped at one connection per address counts no probe past the one answered), until
one is answered 200. A server that exits first, or does not answer in time, ends the
benchmark with the reason and the end of its log when there is one.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' banner reading is reused, not copied

from tests.ports import announced_port  # noqa: E402

_EVERY_S = 0.1


async def until_serving(
    log: Path,
    *,
    timeout_s: float,
    process: subprocess.Popen[Any] | None = None,
    local_address: str | None = None,
) -> int:
    """The port the server bound, once its banner in ``log`` (its output) names it and its
    ``/v1/health`` answers 200; raise :class:`SystemExit` when ``process`` (the server)
    exits first or ``timeout_s`` passes. ``local_address``: where the probes come from (not
    the address whose one slot a benchmark holds)."""
    deadline = time.monotonic() + timeout_s
    transport = httpx.AsyncHTTPTransport(local_address=local_address)
    closing = {"Connection": "close"}
    port = 0
    async with httpx.AsyncClient(transport=transport, headers=closing) as http:
        while True:
            if process is not None and process.poll() is not None:
                raise SystemExit(
                    f"the server exited with {process.returncode} before it answered" + _tail(log)
                )
            if not port and log.exists():
                port = announced_port(log.read_text(errors="replace"))
            if port:
                with contextlib.suppress(httpx.TransportError):
                    health = await http.get(f"http://127.0.0.1:{port}/v1/health")
                    if health.status_code == 200:
                        return port
            if time.monotonic() > deadline:
                where = f"port {port}" if port else "a port its banner names"
                raise SystemExit(
                    f"the server did not answer on {where} within {timeout_s:g} s" + _tail(log)
                )
            await asyncio.sleep(_EVERY_S)


def _tail(log: Path) -> str:
    """The end of the server's log, to follow an error message."""
    if not log.exists():
        return ""
    return ":\n" + log.read_text(errors="replace")[-3000:]
