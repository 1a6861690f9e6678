"""The wait of every benchmark that starts ``purpleflea serve``: until it answers its health.

Until the server's startup is done a request waits or is refused: the benchmarks ask
``GET /v1/health`` every 0.1 s, each on a new connection the server closes after answering
(a server capped at one connection per address counts no probe past the one answered), until
one is answered 200. A server that exits first, or does not answer in time, ends the
benchmark with the reason and the end of its log when there is one.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

_EVERY_S = 0.1


async def until_healthy(
    url: str,
    *,
    timeout_s: float,
    process: subprocess.Popen[Any] | None = None,
    log: Path | None = None,
    local_address: str | None = None,
) -> None:
    """Return once ``url``'s ``/v1/health`` answers 200; raise :class:`SystemExit` when
    ``process`` (the server) exits first or ``timeout_s`` passes. ``local_address``: where
    the probes come from (not the address whose one slot a benchmark holds)."""
    deadline = time.monotonic() + timeout_s
    transport = httpx.AsyncHTTPTransport(local_address=local_address)
    closing = {"Connection": "close"}
    async with httpx.AsyncClient(base_url=url, transport=transport, headers=closing) as http:
        while True:
            if process is not None and process.poll() is not None:
                raise SystemExit(
                    f"the server exited with {process.returncode} before it answered at {url}"
                    + _tail(log)
                )
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/v1/health")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"the server did not answer at {url} within {timeout_s:g} s" + _tail(log)
                )
            await asyncio.sleep(_EVERY_S)


def _tail(log: Path | None) -> str:
    """The end of the server's log, to follow an error message."""
    if log is None or not log.exists():
        return ""
    return ":\n" + log.read_text(errors="replace")[-3000:]
