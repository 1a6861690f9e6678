"""A bounded soak: clients connect and drop at random while events flow.

Each client does what the SDK does (resume with ``since_seq`` = the last event or heartbeat
seq it saw) but leaves abruptly, cleanly or mid-replay at random moments. At the end every
client must hold every stored event exactly once, in order; the server must have let go of
every connection (bus subscriptions, key registry, tasks); and the memory the server's own
code holds must not trend upward between the middle and the end of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import random
import time
import tracemalloc
from array import array
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.reliability.conftest import Running, reliability_config, running_server, venue_event

SOAK_S = 20.0
CLIENTS = 8
EVENTS_PER_S = 150
MARKETS = ("BTC-PERP", "ETH-PERP", "SOL-PERP", "DOGE-PERP")
#: Code whose allocations are the server's per-connection state.
SERVER_CODE = ("purpleflea/server/", "purpleflea/bus/", "starlette/", "uvicorn/")
#: Allowed growth of that memory from mid-run to the end (a leak of a few hundred bytes per
#: connection, times the hundreds of connections made, would exceed it).
MAX_GROWTH_BYTES = 256 * 1024


class Client:
    """One churning client: its cursor and every event seq it was sent."""

    def __init__(self, live: Running, rng: random.Random) -> None:
        self.live = live
        self.rng = rng
        self.cursor = 0
        self.seqs = array("q")
        self.connections = 0

    def _take(self, raw: str | bytes) -> None:
        frame = json.loads(raw)
        if frame["type"] == "liquidation":
            seq = frame["data"]["seq"]
            self.seqs.append(seq)
            self.cursor = max(self.cursor, seq)
        elif frame["type"] == "heartbeat":
            self.cursor = max(self.cursor, frame["seq"])
        elif frame["type"] == "error":
            raise AssertionError(f"server error frame: {frame}")

    async def session(self, stay_s: float) -> None:
        headers = {"X-API-Key": self.live.key}
        ws = await connect(self.live.ws_url, additional_headers=headers)
        self.connections += 1
        try:
            await ws.send(json.dumps({"op": "subscribe", "since_seq": self.cursor}))
            assert json.loads(await ws.recv())["type"] == "subscribed"
            deadline = time.monotonic() + stay_s
            while (left := deadline - time.monotonic()) > 0:
                try:
                    raw = await asyncio.wait_for(ws.recv(), left)
                except TimeoutError:
                    break
                self._take(raw)
        finally:
            if self.rng.random() < 0.5:
                ws.transport.abort()  # vanish: no close frame, like a dropped network
            else:
                await ws.close()

    async def churn(self, until: float) -> None:
        while time.monotonic() < until:
            with contextlib.suppress(ConnectionClosed, OSError):
                await self.session(self.rng.uniform(0.05, 1.5))
            await asyncio.sleep(self.rng.uniform(0.0, 0.3))

    async def catch_up(self, last_seq: int) -> None:
        """One last connection that stays until the cursor reaches the final seq."""
        for _ in range(50):
            if self.cursor >= last_seq:
                return
            await self.session(0.3)
        raise AssertionError(f"client stuck at {self.cursor} < {last_seq}")


async def produce(live: Running, until: float, rng: random.Random) -> None:
    while time.monotonic() < until:
        for _ in range(EVENTS_PER_S // 10):
            live.server.tracker.submit(
                venue_event(market=rng.choice(MARKETS), size_usd=rng.uniform(1e3, 2e6))
            )
        await asyncio.sleep(0.1)


async def _released(live: Running, forwarders: int, tasks_before: int) -> None:
    """Every connection was let go of: fan-out queues, key registry, worker streams, tasks."""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and (
        live.server.streams.fanout.clients > forwarders or len(live.server.gate.streams)
    ):
        await asyncio.sleep(0.05)
    assert live.server.streams.fanout.clients == forwarders
    assert len(live.server.gate.streams) == 0
    pool = live.server.streams.workers
    assert pool is None or sum(pool.streams().values()) == 0
    assert len(asyncio.all_tasks()) <= tasks_before


def server_bytes(snapshot: tracemalloc.Snapshot) -> int:
    return sum(
        stat.size
        for stat in snapshot.statistics("filename")
        if any(part in stat.traceback[0].filename for part in SERVER_CODE)
    )


@pytest.mark.timing
@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "2-stream-workers"])
async def test_churning_clients_lose_and_repeat_nothing_and_the_server_does_not_grow(
    tmp_path: Path, workers: int
) -> None:
    rng = random.Random(7)
    config = reliability_config(tmp_path, heartbeat_s=0.3, stream_workers=workers)
    # With stream workers, main's fan-out keeps one queue per worker (its batch forwarder).
    forwarders = workers if workers > 1 else 0
    try:
        async with running_server(config) as live:
            tasks_before = len(asyncio.all_tasks())
            started = time.monotonic()
            until = started + SOAK_S
            clients = [Client(live, random.Random(rng.random())) for _ in range(CLIENTS)]
            work = [asyncio.create_task(produce(live, until, rng))]
            work += [asyncio.create_task(c.churn(until)) for c in clients]
            # Tracing from a third of the way in (it slows Python down): a leak after that
            # point is traced, which is all the mid-to-end comparison needs.
            await asyncio.sleep(SOAK_S / 3)
            tracemalloc.start(1)
            await asyncio.sleep(SOAK_S / 6)
            gc.collect()
            middle = server_bytes(tracemalloc.take_snapshot())
            await asyncio.gather(*work)
            await live.server.tracker.drain()
            last_seq = live.server.tracker.last_seq
            # The churn is over: every connection it made must be let go of, and the memory
            # is compared now, before the catch-up (untraced: tracing slows it several-fold).
            await _released(live, forwarders, tasks_before)
            gc.collect()
            end = server_bytes(tracemalloc.take_snapshot())
            tracemalloc.stop()
            caught_up = time.monotonic()
            await asyncio.gather(*(c.catch_up(last_seq) for c in clients))
            catch_up_s = time.monotonic() - caught_up
            await _released(live, forwarders, tasks_before)

            stored = [e.seq for e in await live.server.store.since(0, 1_000_000)]
            assert len(stored) > SOAK_S * EVENTS_PER_S * 0.5  # events really flowed
            for client in clients:
                assert client.connections > 10  # it really churned
                assert list(client.seqs) == stored  # every event once, in order
            connections = sum(c.connections for c in clients)
            print(
                f"soak: {len(stored)} events, {connections} connections, catch-up "
                f"{catch_up_s:.1f} s, server-side traced memory {middle:,} -> {end:,} bytes"
            )
            assert end - middle < MAX_GROWTH_BYTES, (
                f"server-side memory grew {end - middle:,} bytes from mid-run to the end "
                f"over {connections} connections"
            )
    finally:
        tracemalloc.stop()
