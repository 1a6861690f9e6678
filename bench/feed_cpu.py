"""Tracker CPU per stream delivery on the real feed path, without sockets (issue 21).

Run (from the repository root; niced, the machine is shared)::

    nice -n 10 .venv/bin/python bench/feed_cpu.py
    nice -n 10 .venv/bin/python bench/feed_cpu.py --compare /tmp/beat-base/src --rounds 5

One process holds a :class:`~purpleflea.bus.local.LocalBus`, the node's
:class:`~purpleflea.server.fanout.Fanout` and ``--clients`` streams, each one
:func:`~purpleflea.server.feed.client_feed` read by a writer that does what the WebSocket
writer does short of the socket (takes the frame's text). Events are published one at a
time, each after every client took the one before (or paced at ``--rate`` events/s): the
low-rate case of issue 21, where every event is its own chunk and its own frame for every
client, and every client waits for the next chunk. It reports the process's CPU seconds
(``time.process_time``) over ``clients x events`` deliveries, and the load average.

``--compare SRC`` runs this checkout and the ``src`` folder of another (a ``git archive``
copy of an older commit) in alternating child processes, ``--rounds`` times each, so both
see the same neighbours. Before the fan-out's heartbeat timer the heartbeat interval was a
``client_feed`` argument; the script passes it where the code under test takes it.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent.parent


async def measure(clients: int, events: int, rate: float, heartbeat_s: float) -> dict[str, Any]:
    from purpleflea.bus.base import Message, liquidation_frame
    from purpleflea.bus.local import LocalBus
    from purpleflea.server.fanout import Fanout
    from purpleflea.server.feed import Item, client_feed
    from purpleflea.server.filters import StreamFilter
    from purpleflea.store.sqlite import SQLiteStore

    bus, store = LocalBus(), SQLiteStore(":memory:")
    old_api = "heartbeat_s" in inspect.signature(client_feed).parameters
    fanout = Fanout(bus) if old_api else Fanout(bus, heartbeat_s=heartbeat_s)
    fanout.start()
    feed_args: dict[str, Any] = {"heartbeat_s": heartbeat_s} if old_api else {}
    taken = 0
    all_taken = asyncio.Event()

    async def stream(feed: AsyncIterator[Item]) -> None:
        nonlocal taken
        async for item in feed:
            text = item.text or item.data.decode()
            if text and item.kind != "heartbeat":
                taken += 1
                if taken == clients:
                    all_taken.set()

    feeds = [
        client_feed(store, fanout.subscribe(1 << 24), StreamFilter(), start_seq=0, **feed_args)
        for _ in range(clients)
    ]
    tasks = [asyncio.create_task(stream(feed)) for feed in feeds]
    await asyncio.sleep(0.05)  # every client past its first heartbeat, waiting live

    prepared = [_message(seq, liquidation_frame, Message) for seq in range(1, events + 1)]
    gap = 1.0 / rate if rate > 0 else 0.0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for message in prepared:
        taken = 0
        all_taken.clear()
        bus.publish_now(message)
        await all_taken.wait()
        if gap:
            await asyncio.sleep(gap)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await fanout.stop()
    await store.close()
    return _result("feed", clients, events, rate, cpu, wall)


#: The other end of every client's socket: a process that reads and drops, so the sockets
#: never fill and its CPU is not the measured process's.
_DRAIN = """
import selectors, socket, sys
selector = selectors.DefaultSelector()
for fd in sys.argv[1:]:
    selector.register(socket.socket(fileno=int(fd)), selectors.EVENT_READ)
while selector.get_map():
    for key, _ in selector.select():
        if not key.fileobj.recv(1 << 20):
            selector.unregister(key.fileobj)
"""


async def measure_worker(
    clients: int, events: int, rate: float, heartbeat_s: float
) -> dict[str, Any]:
    """The stream worker's whole path per client (``Worker._stream``: its fan-out, feed,
    websockets' sans-I/O frames, the socket write, the ``written`` latency)."""
    import socket

    from purpleflea.bus.base import Message, liquidation_frame
    from purpleflea.server.filters import StreamFilter
    from purpleflea.server.stream_worker import Worker
    from purpleflea.server.streaming import _ender
    from purpleflea.server.worker_wire import Open, Settings
    from purpleflea.store.sqlite import SQLiteStore

    control, control_peer = socket.socketpair()
    batches, batches_peer = socket.socketpair()
    control.setblocking(False)
    worker = Worker(control, batches, Settings(":memory:", heartbeat_s, 1 << 24, 0))
    worker.store = SQLiteStore(":memory:")
    worker.fanout.start()
    pairs = [socket.socketpair() for _ in range(clients)]
    drain = subprocess.Popen(
        [sys.executable, "-c", _DRAIN, *(str(theirs.fileno()) for _, theirs in pairs)],
        pass_fds=[theirs.fileno() for _, theirs in pairs],
    )
    for _, theirs in pairs:
        theirs.close()
    taken = 0
    all_taken = asyncio.Event()
    written = worker._written

    def counted(item: Any) -> None:
        nonlocal taken
        written(item)
        if item.published:
            taken += 1
            if taken == clients:
                all_taken.set()

    worker._written = counted  # type: ignore[method-assign]
    kicks = []
    streams = []
    for index, (ours, _) in enumerate(pairs):
        ended, kick = _ender()
        kicks.append(kick)
        opened = Open(index, StreamFilter(), 1)
        streams.append(asyncio.create_task(worker._stream(opened, ours, ended, kick)))
    await asyncio.sleep(0.2)  # every client subscribed and past its first heartbeat

    prepared = [_message(seq, liquidation_frame, Message) for seq in range(1, events + 1)]
    gap = 1.0 / rate if rate > 0 else 0.0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for message in prepared:
        taken = 0
        all_taken.clear()
        worker.bus.publish_now(message)
        await all_taken.wait()
        if gap:
            await asyncio.sleep(gap)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    for kick in kicks:
        kick("server_shutdown")
    await asyncio.gather(*streams, return_exceptions=True)
    await worker.fanout.stop()
    await worker.store.close()
    drain.kill()
    drain.wait()
    for sock in (control, control_peer, batches, batches_peer):
        sock.close()
    return _result("worker", clients, events, rate, cpu, wall)


def _result(
    mode: str, clients: int, events: int, rate: float, cpu: float, wall: float
) -> dict[str, Any]:
    """One run's figures, as a child process prints them for :func:`compare`."""
    import purpleflea  # the tree under test (PYTHONPATH, see child)

    return {
        "src": str(Path(purpleflea.__file__).parent.parent),
        "mode": mode,
        "clients": clients,
        "events": events,
        "rate": rate,
        "cpu_s": round(cpu, 4),
        "wall_s": round(wall, 4),
        "us_per_delivery": round(cpu / (clients * events) * 1e6, 3),
        "load": os.getloadavg()[0],
    }


def _message(seq: int, frame: Any, message: Any) -> Any:
    """Event ``seq`` as the bus carries it (imports passed in: the code under test's)."""
    from purpleflea.model import Liquidation

    event = Liquidation(
        id=f"bench-{seq}",
        seq=seq,
        exchange="binance_usdm",
        market="BTC-PERP",
        symbol="BTCUSDT",
        side="long",
        price=60_000.0,
        quantity=0.5,
        size_usd=30_000.0,
        ts=1_700_000_000_000 + seq,
        received_at=1_700_000_000_000 + seq,
        coverage="complete",
    )
    return message("liquidations", seq, event, frame(event), time.monotonic())


def child(src: str, args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=src)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--one",
        f"--clients={args.clients}",
        f"--events={args.events}",
        f"--rate={args.rate}",
        f"--heartbeat={args.heartbeat}",
        *(["--worker"] if args.worker else []),
    ]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def compare(args: argparse.Namespace) -> None:
    variants = {"this": str(_HERE / "src"), "other": str(Path(args.compare).resolve())}
    runs: dict[str, list[float]] = {name: [] for name in variants}
    print(f"uptime: {os.getloadavg()}; {args.clients} clients x {args.events} events")
    for round_ in range(args.rounds):
        order = list(variants) if round_ % 2 == 0 else list(reversed(variants))
        for name in order:
            result = child(variants[name], args)
            runs[name].append(result["us_per_delivery"])
            print(
                f"round {round_ + 1} {name:5} {result['us_per_delivery']:7.2f} us CPU/delivery "
                f"(cpu {result['cpu_s']:.2f} s, wall {result['wall_s']:.2f} s, "
                f"load {result['load']:.2f}) {result['src']}",
                flush=True,
            )
    for name, values in runs.items():
        print(
            f"{name:5} median {statistics.median(values):.2f} us, min {min(values):.2f}, "
            f"max {max(values):.2f} ({variants[name]})"
        )


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--events", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=0.0, help="events/s; 0: back to back")
    parser.add_argument("--heartbeat", type=float, default=10.0, help="heartbeat interval, s")
    parser.add_argument("--compare", help="another checkout's src folder: interleaved A/B")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--worker", action="store_true", help="the stream worker's path, sockets included"
    )
    parser.add_argument("--one", action="store_true", help="one run, JSON on stdout")
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> None:
    args = parse(argv)
    if args.compare:
        compare(args)
        return
    run = measure_worker if args.worker else measure
    result = asyncio.run(run(args.clients, args.events, args.rate, args.heartbeat))
    print(json.dumps(result) if args.one else result)


if __name__ == "__main__":
    main(sys.argv[1:])
