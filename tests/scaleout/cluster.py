"""Nodes as real processes (``python -m purpleflea.cli serve --role ...``) on a real
PostgreSQL and NATS JetStream, each test with its own database, stream and subject prefix."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
import psycopg

import purpleflea
from purpleflea.model import CascadeAlert, Liquidation
from purpleflea.server.keys_postgres import PostgresKeyStore
from tests.ports import announced_port
from tests.services import PG_HOST, PG_PORT, ensure_nats, ensure_postgres

T0 = 1_760_000_000_000
_START_TIMEOUT_S = 30.0


def write_events(path: Path, prefix: str, count: int, *, spacing_ms: int) -> None:
    """``count`` replayable events ``spacing_ms`` apart; every 7th is large (cascade fuel)."""
    with path.open("w") as out:
        for n in range(count):
            price = 60_000.0 - n
            size = 2_500_000.0 if n % 7 == 0 else 5_000.0 + n
            event = {
                "id": f"{prefix}:{n}",
                "exchange": "binance_usdm" if n % 2 else "bybit",
                "symbol": "BTCUSDT",
                "market": "BTC-PERP" if n % 3 else "ETH-PERP",
                "side": "long",
                "price": price,
                "quantity": size / price,
                "size_usd": size,
                "ts": T0 + n * spacing_ms,
            }
            out.write(json.dumps(event) + "\n")


@dataclass
class Node:
    """One ``purpleflea serve`` process, on a port of its own choosing (``--port 0``): its
    banner says which (a port picked here and released before the node bound it could be
    taken by another test's server meanwhile, and that one would have answered for it). A
    node started again gets a new port; :attr:`url` is known once :meth:`wait_ready` saw it."""

    name: str
    args: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    #: Its port, from its banner (0 until then).
    port: int = 0
    #: Where this run's output begins in the log (a node started again appends to it).
    _log_from: int = 0

    @property
    def url(self) -> str:
        assert self.port, f"{self.name} has not said its port yet (wait_ready)"
        return f"http://127.0.0.1:{self.port}"

    def spawn(self) -> None:
        self.port = 0
        self._log_from = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "purpleflea.cli", "serve", "--port", "0", *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _announced(self) -> int:
        """The port this run's banner names, 0 before it is printed (once it answers)."""
        with self.log.open("rb") as log:
            log.seek(self._log_from)
            return announced_port(log.read().decode(errors="replace"))

    async def wait_ready(self) -> None:
        """Wait until this run's banner names its port and its health answers 200."""
        assert self.process is not None
        deadline = time.monotonic() + _START_TIMEOUT_S
        async with httpx.AsyncClient(timeout=0.5) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"{self.name} exited: {self.log.read_text()[-3000:]}")
                self.port = self.port or self._announced()
                if self.port:
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get(f"{self.url}/v1/health")).status_code == 200:
                            return
                await asyncio.sleep(0.1)
        raise AssertionError(f"{self.name} did not start: {self.log.read_text()[-3000:]}")

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.url}/v1/health", timeout=5).json()
        return body

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        """Graceful stop (SIGTERM), SIGKILL after 10 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


@dataclass
class Cluster:
    """The shared services of one test and the nodes started on them."""

    root: Path
    store_url: str
    bus_url: str
    stream: str
    key: str
    nodes: list[Node] = field(default_factory=list)

    def node(self, name: str, role: str, *extra: str, data_dir: str = "api") -> Node:
        node = Node(
            name,
            [
                "--role",
                role,
                "--store",
                self.store_url,
                "--bus",
                self.bus_url,
                "--data-dir",
                str(self.root / data_dir),
                "--heartbeat",
                "0.3",
                *extra,
            ],
            self.root / f"{name}.log",
        )
        self.nodes.append(node)
        return node

    async def start(self, *nodes: Node) -> None:
        """Spawn ``nodes`` together (their imports overlap) and wait until all answer."""
        for node in nodes:
            node.spawn()
        for node in nodes:
            await node.wait_ready()

    def stored(self) -> dict[int, str]:
        """Every seq in the store (events and cascade alerts) and its id."""
        with psycopg.connect(self.store_url) as connection:
            rows = connection.execute(
                "SELECT seq, id FROM liquidations UNION ALL SELECT seq, id FROM cascades"
            ).fetchall()
        return {int(seq): str(item_id) for seq, item_id in rows}


def _admin(sql: str) -> None:
    with psycopg.connect(f"postgresql://{PG_HOST}:{PG_PORT}/postgres", autocommit=True) as conn:
        conn.execute(sql.encode())  # composed by this module from its own names


async def _delete_streams(url: str, *names: str) -> None:
    client = await nats.connect(url)
    try:
        for name in names:
            with contextlib.suppress(Exception):
                await client.jetstream().delete_stream(name)
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def cluster(root: Path) -> AsyncIterator[Cluster]:
    """A fresh database and stream; every node is stopped and both are dropped afterwards."""
    ensure_postgres()  # starts the server when it is not running
    nats_url = ensure_nats()
    tag = uuid.uuid4().hex[:10]
    database, stream = f"pf_scaleout_{os.getpid()}_{tag}", f"PFSO_{tag}"
    _admin(f'CREATE DATABASE "{database}"')
    (root / "api").mkdir(parents=True, exist_ok=True)
    store_url = f"postgresql://{PG_HOST}:{PG_PORT}/{database}"
    keys = PostgresKeyStore(store_url)  # every node reads keys from the shared database
    key = keys.create("scaleout", "test").key
    keys.close()
    built = Cluster(
        root=root,
        store_url=store_url,
        bus_url=f"{nats_url}?stream={stream}&prefix=pfso{tag}",
        stream=stream,
        key=key,
    )
    try:
        yield built
    finally:
        for node in built.nodes:
            # Off the event loop: a node closing its connections to a fake venue served by this
            # loop waits for the fake's answer (2 s for the sampler's in test_measured_relay).
            await asyncio.to_thread(node.stop)
        await _delete_streams(nats_url, stream, f"{stream}_HEATMAPS")
        _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@dataclass
class Reader:
    """One SDK client streaming both channels from ``since_seq=0`` over ``servers``."""

    servers: list[str]
    key: str
    items: list[Liquidation | CascadeAlert] = field(default_factory=list)
    stream: purpleflea.Stream | None = None

    async def run(self) -> None:
        client = purpleflea.LiquidationClient(api_key=self.key, base_url=self.servers)
        stream = client.stream(channels=("liquidations", "cascades"), since_seq=0, max_backoff=0.3)
        self.stream = stream
        async with stream:
            async for item in stream:
                self.items.append(item)

    @property
    def seqs(self) -> list[int]:
        return [item.seq for item in self.items]


@contextlib.asynccontextmanager
async def reading(readers: list[Reader]) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(reader.run()) for reader in readers]
    try:
        yield
        for task in tasks:
            if task.done():
                task.result()  # a reader that failed fails the test with its error
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait (polling) until ``condition()`` is true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)
