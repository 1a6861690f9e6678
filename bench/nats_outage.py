"""What a NATS publish outage costs the readers of the bus: an ingest node's tracker (SQLite
store, NATS through a relay this script cuts) stores ``--events`` events while its connection
is down; then NATS is back and no event comes for ``--quiet`` seconds; then one event comes.

For two readers, an API node's stream clients (its own NATS connection) and the ingest node's
own reader of the bus (what its webhook dispatcher reads), it reports how many of the stored
events each had within the quiet spell and how long after the reconnect, then after the next
event; in seq order or not, and duplicates. Run against another checkout with
``PYTHONPATH=<checkout>/src`` to compare (needs NATS on 127.0.0.1:4222, as the tests).

    python bench/nats_outage.py --events 5000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.services import TcpRelay, ensure_nats

from purpleflea.bus.local import LocalSubscription
from purpleflea.bus.nats import NatsBus
from purpleflea.model import VenueLiquidation
from purpleflea.server.pipeline import Pipeline
from purpleflea.store.sqlite import SQLiteStore

T0 = 1_760_000_000_000


def _venue(n: int) -> VenueLiquidation:
    return VenueLiquidation(
        id=f"outage:{n}",
        exchange="okx",
        symbol="BTC-USDT-SWAP",
        market="BTC-PERP" if n % 3 else "ETH-PERP",
        side="long",
        price=60_000.0 - n % 1000,
        quantity=1.0,
        size_usd=60_000.0,
        ts=T0 + n,
    )


class Reader:
    """One subscription's seqs, read as they come, with when each one came."""

    def __init__(self, name: str, subscription: LocalSubscription) -> None:
        self.name = name
        self.seqs: list[int] = []
        self.times: list[float] = []
        self.task = asyncio.create_task(self._read(subscription))

    async def _read(self, subscription: LocalSubscription) -> None:
        async for message in subscription:
            self.seqs.append(message.seq)
            self.times.append(time.monotonic())

    def got(self, low: int, high: int) -> list[int]:
        return [s for s in self.seqs if low <= s <= high]

    def when_all(self, low: int, high: int) -> float | None:
        """When the last seq of ``low..high`` came (None: not all came)."""
        wanted, last = set(range(low, high + 1)), None
        for seq, at in zip(self.seqs, self.times, strict=True):
            if seq in wanted:
                wanted.discard(seq)
                last = at
        return last if not wanted else None


async def _wait(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        await asyncio.sleep(0.01)


async def run(events: int, quiet: float, folder: Path) -> None:
    url = ensure_nats()
    host, port = url.removeprefix("nats://").split(":")
    relay = TcpRelay(host, int(port))
    await relay.open()
    tag = uuid.uuid4().hex[:10]
    stream, prefix = f"PFBENCH_{tag}", f"pfbench{tag}"
    store = SQLiteStore(folder / "history.sqlite")
    ingest = await NatsBus.connect(
        f"nats://127.0.0.1:{relay.port}", stream=stream, prefix=prefix, store=store
    )
    api = await NatsBus.connect(url, stream=stream, prefix=prefix, store=store)
    tracker = Pipeline(store, ingest)
    try:
        await api.start()
        await tracker.start()
        await ingest.start(after_seq=tracker.last_seq)
        readers = [
            Reader("API node's clients", api.subscribe(64 << 20)),
            Reader("ingest node's bus reader (webhooks)", ingest.subscribe(64 << 20)),
        ]
        warm = 100
        for n in range(warm):
            tracker.submit(_venue(n))
        await tracker.drain()
        await relay.cut()
        await _wait(lambda: not ingest.connected, 10)
        for n in range(warm, warm + events):
            tracker.submit(_venue(n))
            if n % 500 == 0:
                await tracker.drain()
        await tracker.drain()
        first, last = warm + 1, warm + events
        assert await store.last_seq() == last
        await relay.open()
        await _wait(lambda: ingest.connected, 30)
        back = time.monotonic()
        cpu = time.process_time()
        await asyncio.sleep(quiet)  # no event comes
        cpu_quiet = time.process_time() - cpu
        print(f"load {Path('/proc/loadavg').read_text().split()[:3]}; {events} events stored")
        print(f"in the {quiet:.0f} s after the reconnect, no new event (CPU {cpu_quiet:.2f} s):")
        for reader in readers:
            at = reader.when_all(first, last)
            took = "never" if at is None else f"all by {at - back:.2f} s"
            print(f"  {reader.name}: {len(reader.got(first, last))} of {events} ({took})")
        tracker.submit(_venue(warm + events))
        await tracker.drain()
        nxt = time.monotonic()
        await asyncio.sleep(min(quiet, 5.0))
        print("after the next event:")
        for reader in readers:
            at = reader.when_all(first, last + 1)
            seqs = reader.seqs
            ordered = seqs == sorted(seqs)
            dups = len(seqs) - len(set(seqs))
            took = "not all" if at is None else f"all by {at - nxt:.2f} s after it"
            print(
                f"  {reader.name}: {len(reader.got(first, last + 1))} of {events + 1} ({took}); "
                f"in order: {ordered}, duplicates: {dups}"
            )
        counters = dict(tracker.counters)
        print(
            f"tracker: stored_unpublished {counters.get('stored_unpublished', 0)}, "
            f"republished {counters.get('republished', 0)}; API node: backfilled "
            f"{api.counters['backfilled']}; CPU (process) {resource.getrusage(0).ru_utime:.1f} s"
        )
        for reader in readers:
            reader.task.cancel()
    finally:
        await tracker.stop()
        await ingest.close()
        await api.close()
        await store.close()
        client = await nats.connect(url)
        with contextlib.suppress(Exception):
            await client.jetstream().delete_stream(stream)
        await client.close()
        await relay.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--quiet", type=float, default=10.0)
    args = parser.parse_args()
    print(f"purpleflea from {os.path.dirname(__import__('purpleflea').__file__)}")
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run(args.events, args.quiet, Path(folder)))


if __name__ == "__main__":
    main()
