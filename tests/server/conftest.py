"""A real server on a loopback port for each test, with events injected through its tracker."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from purpleflea.model import VenueLiquidation
from purpleflea.server.app import Server, create_app, open_server
from purpleflea.server.config import ServerConfig
from purpleflea.server.net import listen_socket
from purpleflea.server.serving import TrackerServer, uvicorn_config

T0 = 1_760_000_000_000
_ids = itertools.count(1)


def venue_event(
    *,
    market: str = "BTC-PERP",
    side: str = "long",
    size_usd: float = 150_000.0,
    price: float = 60_000.0,
    exchange: str = "binance_usdm",
    ts: int | None = None,
) -> VenueLiquidation:
    n = next(_ids)
    return VenueLiquidation(
        id=f"test:{n}",
        exchange=exchange,
        symbol=market.replace("-PERP", "USDT"),
        market=market,
        side=side,  # type: ignore[arg-type]
        price=price,
        quantity=size_usd / price,
        size_usd=size_usd,
        ts=ts if ts is not None else T0 + n,
    )


@dataclass
class Running:
    server: Server
    url: str
    key: str
    #: The HTTP server (its open connections: ``uv.server_state.connections``).
    uv: TrackerServer | None = None

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[4:] + "/v1/stream"

    async def push(self, *events: VenueLiquidation) -> None:
        for event in events:
            self.server.tracker.submit(event)
        await self.server.tracker.drain()


@contextlib.asynccontextmanager
async def running_server(config: ServerConfig) -> AsyncIterator[Running]:
    server = await open_server(config)  # build_server for one machine; a role connects
    app = create_app(config, server=server)
    uv = TrackerServer(uvicorn_config(app, config, server.connections), server.streams)
    sock = listen_socket("127.0.0.1", 0, send_buffer=config.socket_send_buffer)
    task = asyncio.create_task(uv.serve(sockets=[sock]))
    while not uv.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = uv.servers[0].sockets[0].getsockname()[1]
    key = server.keys.create("tester", "test").key
    try:
        yield Running(server, f"http://127.0.0.1:{port}", key, uv)
    finally:
        uv.should_exit = True
        await asyncio.wait_for(task, 10)


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait until ``condition()`` holds, failing the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def make_config(tmp_path: Path, **overrides: object) -> ServerConfig:
    base = ServerConfig(data_dir=tmp_path, source="none", heartbeat_s=0.5, revocation_poll_s=0.2)
    return replace(base, **overrides)  # type: ignore[arg-type]


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Running]:
    async with running_server(make_config(tmp_path)) as running:
        yield running


#: Ten minutes of warm-up for the served market instead of its two hours (building 275
#: markets: 1.25 -> 0.65 s of CPU, 10 markets: 0.3 -> 0.05 s, at load 9; in the served 2.5 s
#: blocks the two hours were 6.5 and 2.7 s).
QUICK_WARMUP_MS = 600_000


@pytest.fixture
def quick_warmup(monkeypatch: pytest.MonkeyPatch) -> None:
    """The served simulator warmed up for :data:`QUICK_WARMUP_MS`: for tests of what does not
    depend on how settled its book is (saving, health, coverage, storage faults), which would
    otherwise spend seconds building it. A test that cancels the source during the warm-up
    also waits for it at teardown: its thread cannot be cancelled."""
    quicken_warm_up(monkeypatch)


def hold_warm_up_halfway(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """The served simulator's warm-up (its real blocks) held halfway until the returned
    event is set; set it before the server stops (its thread cannot be cancelled)."""
    from purpleflea.server import sources

    release = threading.Event()
    build = sources.live_simulator

    def paused(*args: Any, progress: Any = None, **kwargs: Any) -> Any:
        def report(done: int, total: int) -> None:
            progress(done, total)
            if done == total // 2:
                release.wait(60.0)

        return build(*args, progress=report, **kwargs)

    monkeypatch.setattr(sources, "live_simulator", paused)
    return release


def quicken_warm_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """What :func:`quick_warmup` does, for a test outside tests/server."""
    # Imported here: numpy and the simulator load only for the tests that use them.
    from purpleflea.sim import SimConfig

    served = SimConfig.served

    def quick(**overrides: int | float | None) -> SimConfig:
        return served(**{"warmup_ms": QUICK_WARMUP_MS, **overrides})

    monkeypatch.setattr(SimConfig, "served", quick)
