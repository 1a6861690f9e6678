"""The SDK's CPU per received frame, socket included: what a stream client spends per delivery.

    .venv/bin/python bench/sdk_receive.py                # about 80 s
    .venv/bin/python bench/sdk_receive.py --clients 50   # many streams in one process
    .venv/bin/python bench/sdk_receive.py --sync         # the blocking client's stream too

A bare ``websockets`` server (its own process, on CPU 0 when the machine has two) sends each
client the tracker's wire frames as fast as the socket takes them: single-event frames (what a
client gets at a steady rate, one event per published batch), then ``batch`` frames of
``--batch`` events (a crash burst); then both paced, a frame a millisecond per client
(``--paced`` frames): a client that keeps up finds nothing held and waits for each frame,
so this prices a wait (its idle timeout, the event loop's wakeup) as a steady stream, or one
fed a crash burst's published batches as they come, pays it. The client process (CPU 1)
reads them through ``LiquidationClient.stream()`` and, for reference, through a bare
``websockets`` ``recv()`` loop that decodes nothing. Reported: client CPU seconds
(``time.process_time``) per frame and per event. Issue 21's (d) is 1,000 clients at 500
events/s, one event a frame: 500,000 frames a second, so every microsecond here is half a
core on the measuring side.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import multiprocessing.synchronize
import os
import sys
import time
from pathlib import Path

import msgspec
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.events import stored_event  # noqa: E402

from purpleflea.client import LiquidationClient, SyncLiquidationClient  # noqa: E402


def _frames(events: int, batch: int) -> list[str]:
    items = [
        msgspec.json.encode({"type": "liquidation", "data": stored_event(seq)})
        for seq in range(1, events + 1)
    ]
    if batch == 1:
        return [item.decode() for item in items]
    return [
        (b'{"type":"batch","items":[' + b",".join(items[i : i + batch]) + b"]}").decode()
        for i in range(0, events, batch)
    ]


#: The paced case's gap between one client's frames.
PACE_S = 0.001


def _serve(
    port: multiprocessing.sharedctypes.Synchronized[int],
    ready: multiprocessing.synchronize.Event,
    events: int,
    batch: int,
    paced: bool,
) -> None:
    frames = _frames(events, batch)

    async def session(ws: ServerConnection) -> None:
        await ws.recv()  # the subscribe message
        await ws.send('{"type":"subscribed","seq":0}')
        for frame in frames:
            await ws.send(frame)
            if paced:
                await asyncio.sleep(PACE_S)
        await ws.wait_closed()

    async def main() -> None:
        async with serve(session, "127.0.0.1", 0, compression=None, max_size=2**22) as server:
            port.value = server.sockets[0].getsockname()[1]
            ready.set()
            await asyncio.Future()

    asyncio.run(main())


async def _sdk(url: str, clients: int, events: int) -> None:
    client = LiquidationClient(api_key="pf_bench", base_url=url)

    async def one() -> None:
        taken = 0
        async with client.stream() as stream:
            async for _ in stream:
                taken += 1
                if taken == events:
                    return

    await asyncio.gather(*(one() for _ in range(clients)))


def _sync(url: str, clients: int, events: int) -> None:
    """The blocking client's stream (one: ``clients`` is 1 for it), as a script reads it."""
    taken = 0
    with SyncLiquidationClient(api_key="pf_bench", base_url=url) as client:
        for _ in client.stream():
            taken += 1
            if taken == events:
                return


async def _bare(url: str, clients: int, frames: int) -> None:
    async def one() -> None:
        async with connect(url.replace("http", "ws") + "/v1/stream", compression=None) as ws:
            await ws.send("{}")
            await ws.recv()
            for _ in range(frames):
                await ws.recv()

    await asyncio.gather(*(one() for _ in range(clients)))


def _run(batch: int, events: int, clients: int, reader: str, paced: bool) -> tuple[float, int]:
    """Client CPU seconds to read every frame, and the frames read per client."""
    port = multiprocessing.Value("i", 0)
    ready = multiprocessing.Event()
    server = multiprocessing.Process(
        target=_serve, args=(port, ready, events, batch, paced), daemon=True
    )
    server.start()
    ready.wait()
    if len(os.sched_getaffinity(0)) >= 2:
        os.sched_setaffinity(server.pid or 0, {0})
        os.sched_setaffinity(0, {1})
    url = f"http://127.0.0.1:{port.value}"
    frames = -(-events // batch)
    started = time.process_time()
    if reader == "sdk":
        asyncio.run(_sdk(url, clients, events))
    elif reader == "sync sdk":
        _sync(url, clients, events)
    else:
        asyncio.run(_bare(url, clients, frames))
    cpu = time.process_time() - started
    server.kill()
    server.join()
    return cpu, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events per client")
    parser.add_argument("--batch", type=int, default=40, help="events per batch frame")
    parser.add_argument("--clients", type=int, default=1, help="streams in the client process")
    parser.add_argument("--runs", type=int, default=3, help="runs per case; the best is kept")
    parser.add_argument(
        "--paced", type=int, default=3_000, help="frames per client in the paced cases (0: none)"
    )
    parser.add_argument(
        "--sync",
        action="store_true",
        help="also read through SyncLiquidationClient.stream() (one client)",
    )
    args = parser.parse_args()
    if args.sync and args.clients != 1:
        parser.error("--sync reads with one client: leave --clients at 1")
    print(
        f"load average before: {os.getloadavg()[0]:.2f}; {args.clients} client(s), "
        f"{args.events:,} events each; best of {args.runs}"
    )
    cases = [(1, args.events, False), (args.batch, args.events, False)]
    if args.paced:
        cases += [(1, args.paced, True), (args.batch, args.paced * args.batch, True)]
    for batch, events, paced in cases:
        for reader in ("sdk", *(("sync sdk",) if args.sync else ()), "bare recv()"):
            runs = [_run(batch, events, args.clients, reader, paced) for _ in range(args.runs)]
            cpu, frames = min(runs)
            per_frame = cpu / (frames * args.clients) * 1e6
            per_event = cpu / (events * args.clients) * 1e6
            print(
                f"  {batch:>3} event(s) a frame{', paced' if paced else '':<7}, {reader:<11}: "
                f"{per_frame:7.2f} us a frame, {per_event:6.2f} us an event"
            )


if __name__ == "__main__":
    main()
