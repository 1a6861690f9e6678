"""End-to-end latency and fan-out: exchange frame sent -> SDK callback, against a bare broadcast.

Run (one command, from the repository root)::

    .venv/bin/python bench/e2e.py                 # about 3 minutes
    .venv/bin/python bench/e2e.py --quick         # shorter phases, for a smoke test
    .venv/bin/python bench/e2e.py --pin           # servers and measurer on separate CPUs
    .venv/bin/python bench/e2e.py --phases a --skip-bare --loop-probe
                                    # only (a), and what holds the tracker's loop (LoopProbe)

Processes on loopback (the machine's cores are shared, so this is how the work splits):

- **this process** runs a fake Binance USD-M exchange (a ``websockets`` server at
  ``/market/ws`` that acks ``!forceOrder@arr`` and sends ``forceOrder`` combined-stream frames
  at a paced rate, one event per frame);
- **client pools** (``--client-procs`` processes, 2 by default): the stream clients, spread
  evenly, so that neither server's ceiling is one client process's (in one process beside the
  fake exchange the measurer sat at 0.98 cores while the bare server used 0.65-0.73);
- **the tracker** (``bench/e2e.py _tracker``, a child process): ``build_server`` +
  ``create_app`` under uvicorn exactly as ``purpleflea serve`` configures it, fed by the real
  :class:`~purpleflea.ingest.live.LiveIngest` with the ``binance_usdm`` connection pointed at
  the fake (connection runner -> USD-M normalizer -> Pipeline -> SQLite -> bus -> WebSocket);
  with ``--stream-workers N`` (N > 1) its WebSockets are written by N worker processes
  (``purpleflea serve --stream-workers``), and the server's CPU and memory are summed over the
  tracker and its workers;
- **the bare reference** (``bench/e2e.py _bare``, run after the tracker exits): a minimal
  ``websockets`` server that reads the same exchange frames and ``broadcast``s each one, unparsed,
  to its clients. It is the physical ceiling of Python WebSocket fan-out on this machine.

What each server sends its clients: the tracker, ``{"type":"batch","items":[...]}`` frames
holding the events that were waiting when the client's write came (the SDK asks for them), so
a burst costs a few large frames per client; the bare broadcast, each exchange frame as it
came, one frame per event.

Latency is measured on one clock (``perf_counter_ns`` is CLOCK_MONOTONIC on Linux, the same in
every process): every frame carries a unique trade time ``o.T = T0 + k``; the sender records
the time for ``k`` just before ``send`` and the client callback records it on arrival (tracker
clients read ``event.ts`` through the SDK; bare clients decode ``data.o.T``). Phases: warm-up,
(a) steady rate, (b) a burst of many events in one second, (c) a rate ramp (the ceiling is the
highest rate whose p99 stays under 50 ms with every frame delivered to every client; a step
that fails is run again, ``--ramp-repeats`` times, and fails only when every run does), then
(d) ``--many-clients`` clients (1,000) at 500 events/s. The server's resident memory is read
at the end of every phase (and its peak at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import multiprocessing
import multiprocessing.connection
import multiprocessing.sharedctypes
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, broadcast, serve

from procfs import cpu_seconds, run_queue_seconds

STREAM = "!forceOrder@arr"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z: o.T = T0 + k identifies frame k
P99_LIMIT_MS = 50.0
#: The CPUs a server child keeps to (``--pin``), set by its parent.
CPUS_ENV = "PURPLEFLEA_BENCH_CPUS"
SYMBOLS = (
    ("BTCUSDT", 97_000.0),
    ("ETHUSDT", 3_400.0),
    ("SOLUSDT", 190.0),
    ("XRPUSDT", 2.2),
    ("DOGEUSDT", 0.31),
    ("BNBUSDT", 690.0),
    ("ADAUSDT", 0.95),
    ("AVAXUSDT", 36.0),
    ("LINKUSDT", 21.0),
    ("LTCUSDT", 105.0),
)


def frame(k: int) -> str:
    symbol, price = SYMBOLS[k % len(SYMBOLS)]
    qty = round(2_000 + (k * 7919) % 200_000, 0) / price
    t = T0 + k
    side = "SELL" if k % 3 else "BUY"
    return (
        f'{{"stream":"{STREAM}","data":{{"e":"forceOrder","E":{t},"o":{{"s":"{symbol}",'
        f'"S":"{side}","o":"LIMIT","f":"IOC","q":"{qty:.6f}","p":"{price * 0.99:.4f}",'
        f'"ap":"{price:.4f}","X":"FILLED","l":"{qty:.6f}","z":"{qty:.6f}","T":{t}}}}}}}'
    )


def family(pid: int) -> list[int]:
    """``pid`` and its child processes (a tracker's stream workers: the server is all of them)."""
    children: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            children.extend(int(c) for c in (task / "children").read_text().split())
    return [pid, *children]


def server_cpu_seconds(pid: int) -> float:
    total = 0.0
    for member in family(pid):
        with contextlib.suppress(OSError):  # a worker that just exited
            total += cpu_seconds(member)
    return total


def waited_seconds(pids: Sequence[int]) -> float:
    """Seconds the main threads (event loops) of the processes ``pids`` and of a server's
    workers waited for a CPU while runnable (``/proc/<pid>/schedstat``): the machine's share
    of a phase's latency."""
    total = 0.0
    for pid in pids:
        for member in family(pid):
            with contextlib.suppress(OSError):  # a worker that just exited
                total += run_queue_seconds(member)
    return total


# --- the fake exchange ------------------------------------------------------------------------


class FakeBinance:
    """``/market/ws`` speaking Binance's subscribe/ack; frames go to every subscribed socket."""

    def __init__(self) -> None:
        self.subscribers: set[ServerConnection] = set()
        self.subscribed = asyncio.Event()
        self.sent_ns = array("q")  # index k: perf_counter_ns when frame k was sent
        self.phase_of = array("b")  # index k: the phase number of frame k

    async def handler(self, ws: ServerConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            message = json.loads(await ws.recv())
            if message.get("method") != "SUBSCRIBE" or message.get("params") != [STREAM]:
                await ws.close(1008, "bad subscribe")
                return
            await ws.send(json.dumps({"result": None, "id": message.get("id")}))
            self.subscribers.add(ws)
            self.subscribed.set()
            try:
                # The tracker's keepalive asks LIST_SUBSCRIPTIONS every 30 s: answer as Binance.
                async for request in ws:
                    asked = json.loads(request)
                    if asked.get("method") == "LIST_SUBSCRIPTIONS":
                        await ws.send(json.dumps({"result": [STREAM], "id": asked.get("id")}))
            finally:
                self.subscribers.discard(ws)
                if not self.subscribers:
                    self.subscribed.clear()

    async def send_one(self, phase: int) -> None:
        k = len(self.sent_ns)
        text = frame(k)
        self.sent_ns.append(time.perf_counter_ns())
        self.phase_of.append(phase)
        for ws in tuple(self.subscribers):
            with contextlib.suppress(websockets.ConnectionClosed):
                await ws.send(text)

    async def paced(self, phase: int, rate: float, seconds: float) -> int:
        """Send ``rate`` frames/s for ``seconds``; returns how many were sent."""
        total = round(rate * seconds)
        started = time.perf_counter()
        sent = 0
        while sent < total:
            due = min(total, int((time.perf_counter() - started) * rate) + 1)
            while sent < due:
                await self.send_one(phase)
                sent += 1
            await asyncio.sleep(0.001)
        return sent


# --- the clients -------------------------------------------------------------------------------


@dataclass
class Receiver:
    """One client's arrivals: frame index and arrival time, appended in the callback (and
    counted in ``counter``, shared with the measuring process, when there is one)."""

    ks: array[int] = field(default_factory=lambda: array("q"))
    at: array[int] = field(default_factory=lambda: array("q"))
    counter: Any = None

    def record(self, ts: int) -> None:
        self.ks.append(ts - T0)
        self.at.append(time.perf_counter_ns())
        if self.counter is not None:
            self.counter.value += 1

    def take(self) -> tuple[bytes, bytes]:
        """What arrived since the last take, as raw int64 arrays."""
        taken = (self.ks.tobytes(), self.at.tobytes())
        self.ks, self.at = array("q"), array("q")
        return taken

    @property
    def count(self) -> int:
        return len(self.ks)


class _Order(msgspec.Struct):
    T: int


class _Data(msgspec.Struct):
    o: _Order


class _Combined(msgspec.Struct):
    data: _Data


_bare_decoder = msgspec.json.Decoder(_Combined)


async def sdk_client(url: str, key: str, receiver: Receiver, ready: asyncio.Event) -> None:
    """A tracker client doing what an agent does: the SDK's stream, one callback per event."""
    from purpleflea.client import LiquidationClient

    client = LiquidationClient(api_key=key, base_url=url)
    async with client.stream(idle_timeout=60.0) as stream:
        ready.set()
        async for event in stream:
            receiver.record(event.ts)  # type: ignore[union-attr]


async def bare_client(url: str, receiver: Receiver, ready: asyncio.Event) -> None:
    # No keepalive pings: on a loaded machine a late pong closed bare clients mid-phase (the
    # SDK reconnects and resumes; a bare client cannot), which measured the neighbours.
    async with connect(url, compression=None, max_size=2**22, ping_interval=None) as ws:
        ready.set()
        async for raw in ws:
            receiver.record(_bare_decoder.decode(raw).data.o.T)


# --- client pools: the clients, spread over processes --------------------------------------


def _pool_process(
    kind: str, url: str, key: str, counter: Any, conn: multiprocessing.connection.Connection
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the measuring process stops the pools
    asyncio.run(_pool(kind, url, key, counter, conn))


async def _pool(
    kind: str, url: str, key: str, counter: Any, conn: multiprocessing.connection.Connection
) -> None:
    """Serve the measuring process's commands: ``start`` n more clients, ``take`` what
    arrived, ``stop``."""
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    loop.add_reader(conn.fileno(), lambda: commands.put_nowait(conn.recv()))
    receivers: list[Receiver] = []
    tasks: list[asyncio.Task[None]] = []

    def factory(receiver: Receiver, ready: asyncio.Event) -> Awaitable[None]:
        if kind == "sdk":
            return sdk_client(url, key, receiver, ready)
        return bare_client(url, receiver, ready)

    while True:
        command, n = await commands.get()
        if command == "start":
            new = [Receiver(counter=counter) for _ in range(n)]
            tasks += await _start(factory, new)
            receivers += new
            conn.send(len(receivers))
        elif command == "take":
            ended = [t for t in tasks if t.done()]
            if ended:  # a client that stops receiving makes its deliveries short: say why
                why = ended[0].exception() if not ended[0].cancelled() else None
                print(f"{len(ended)} {kind} clients ended early: {why!r}", flush=True)
                tasks = [t for t in tasks if not t.done()]
            conn.send([r.take() for r in receivers])
        else:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            conn.send(len(receivers))
            return


class Pools:
    """Stream clients in ``procs`` processes; arrivals are counted in shared memory (for
    ``settle``) and fetched, with their times, after each phase."""

    def __init__(self, kind: str, url: str, key: str, procs: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.counters = [multiprocessing.sharedctypes.RawValue("q", 0) for _ in range(procs)]
        self.conns: list[multiprocessing.connection.Connection] = []
        self.procs = []
        for counter in self.counters:
            mine, theirs = context.Pipe()
            process = context.Process(
                target=_pool_process, args=(kind, url, key, counter, theirs), daemon=True
            )
            process.start()
            self.conns.append(mine)
            self.procs.append(process)
        self.clients = 0

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.pid is not None]

    @property
    def count(self) -> int:
        return sum(c.value for c in self.counters)

    async def _ask(self, command: str, ns: Sequence[int]) -> list[Any]:
        for conn, n in zip(self.conns, ns, strict=True):
            conn.send((command, n))
        return [await asyncio.to_thread(conn.recv) for conn in self.conns]

    async def start(self, n: int) -> None:
        """``n`` more clients, spread evenly; returns once every one has subscribed."""
        procs = len(self.conns)
        await self._ask("start", [n // procs + (i < n % procs) for i in range(procs)])
        self.clients += n

    async def take(self) -> list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
        """Each client's arrivals since the last take: (frame indexes, perf_counter_ns)."""
        taken = await self._ask("take", [0] * len(self.conns))
        return [
            (np.frombuffer(ks, dtype=np.int64), np.frombuffer(at, dtype=np.int64))
            for per_process in taken
            for ks, at in per_process
        ]

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ask("stop", [0] * len(self.conns)), 30)
        for process in self.procs:
            process.join(5)
            if process.is_alive():
                process.kill()


# --- child processes ---------------------------------------------------------------------------


def spawn(*args: str, cpus: set[int] | None = None) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Start ``bench/e2e.py <args>`` (on ``cpus`` only, with every process it starts) and read
    the JSON line it prints when it is ready."""
    env = dict(os.environ)
    if cpus is not None:  # applied by the child first thing, before it starts any process
        env[CPUS_ENV] = ",".join(map(str, sorted(cpus)))
    child = subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True, bufsize=1, env=env
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line:
        raise RuntimeError(f"child {args[0]} exited before it was ready ({child.wait()})")
    ready: dict[str, Any] = json.loads(line)
    return child, ready


def stop(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(30)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


async def _until_terminated() -> None:
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    loop.add_signal_handler(signal.SIGINT, done.set)
    await done.wait()


def nodelay_socket(sock: socket.socket) -> socket.socket:
    """``sock`` re-wrapped with ``proto=IPPROTO_TCP``: asyncio sets TCP_NODELAY only on sockets
    whose proto says TCP, and ``listen_socket`` creates its socket with proto 0 (Nagle stays on
    for every accepted client; see bench/results/e2e.md)."""
    return socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())


async def run_tracker(
    exchange_url: str,
    data_dir: str,
    profile: str | None,
    nodelay: bool = False,
    stream_workers: int = 1,
    settle_heap: bool = True,
    loop_probe: bool = False,
) -> None:
    import cProfile

    import uvicorn

    from purpleflea.ingest.live import LiveIngest
    from purpleflea.server.app import build_server, create_app
    from purpleflea.server.config import ServerConfig
    from purpleflea.server.net import listen_socket

    profiler = cProfile.Profile() if profile else None
    # Every client here belongs to one account: lift the per-account stream caps.
    config = ServerConfig(
        data_dir=Path(data_dir),
        source="none",
        port=0,
        streams_per_account=100_000,
        stream_opens_per_min=100_000,
        stream_workers=stream_workers,
    )
    server = build_server(config)
    app = create_app(config, server=server)
    # The same uvicorn settings as `purpleflea serve` (commands/serve.py).
    uv = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            ws_max_size=65_536,
            ws_per_message_deflate=False,
            ws="websockets-sansio",
            lifespan="on",
        )
    )
    sock = listen_socket("127.0.0.1", 0, send_buffer=config.socket_send_buffer)
    if nodelay:
        sock = nodelay_socket(sock)
    task = asyncio.create_task(uv.serve(sockets=[sock]))
    while not uv.started:
        await asyncio.sleep(0.01)
    ingest = LiveIngest(
        server.tracker.submit,
        None,
        exchanges=["binance_usdm"],
        urls={"binance_usdm": exchange_url},
        catalog_sources=(),
        poll_sources=(),
    )
    await ingest.start()
    key = server.keys.create("bench", "e2e").key
    if settle_heap:  # as `purpleflea serve` does once it answers (server/heap.py)
        from purpleflea.server.heap import settle_startup_heap

        settle_startup_heap()
    print(json.dumps({"port": sock.getsockname()[1], "key": key}), flush=True)
    probe = LoopProbe() if loop_probe else None
    probing = None
    if probe is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, probe.mark)
        probing = asyncio.create_task(probe.run())
    if profiler is not None:
        profiler.enable()
    await _until_terminated()
    if probe is not None and probing is not None:
        probing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probing
        print(probe.report(), file=sys.stderr, flush=True)
    if profiler is not None and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    counters = dict(server.tracker.counters)
    closed = dict(server.streams.closed)
    await ingest.stop()
    uv.should_exit = True
    await task
    print(json.dumps({"counters": counters, "closed": closed}), file=sys.stderr, flush=True)


async def run_bare(exchange_url: str) -> None:
    clients: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    async def relay() -> None:
        # No keepalive: a late pong under load closed this relay, and the bare server (which
        # does not reconnect, unlike the tracker's venue connection) then sent nothing more.
        async with connect(
            exchange_url, compression=None, max_size=2**24, ping_interval=None
        ) as upstream:
            await upstream.send(json.dumps({"method": "SUBSCRIBE", "params": [STREAM], "id": 1}))
            await upstream.recv()  # the ack
            async for message in upstream:
                broadcast(clients, message)
        print("bare relay: the exchange connection ended", file=sys.stderr, flush=True)

    async with serve(handler, "127.0.0.1", 0, compression=None, ping_interval=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        relaying = asyncio.create_task(relay())
        print(json.dumps({"port": port}), flush=True)
        await _until_terminated()
        relaying.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await relaying


# --- the tracker's loop probe (--loop-probe) ---------------------------------------------------


class LoopProbe:
    """What holds the tracker's event loop: a task sleeps 1 ms and records how late it wakes;
    a thread looks every millisecond and, while the loop is ``stall_ms`` late, samples the loop
    thread's stack (one sample per look: a stall's samples name the code that held the loop,
    at the GIL's switch interval, 5 ms, when that code is pure Python); ``gc.callbacks`` time
    each collection. The thread and the task cost CPU: a diagnostic, not for the figures."""

    def __init__(self, stall_ms: float = 5.0, slow_ms: float = 2.0) -> None:
        import threading

        self.stall_ns = int(stall_ms * 1e6)
        self.lags_ns = array("q")  # how late each 1 ms sleep woke
        self.woke_ns = array("q")  # when it woke
        self.beat = time.perf_counter_ns()  # when the task last went to sleep
        self.samples: dict[tuple[str, ...], int] = {}
        #: start, samples, first stack, and at the first sample and at the last: the time
        #: and the loop thread's schedstat (ns on a CPU, ns waiting for one)
        self.stalls: list[
            tuple[int, int, tuple[str, ...], tuple[int, int, int], tuple[int, int, int]]
        ] = []
        self.gc_ns: list[tuple[int, int, int]] = []  # generation, start, duration
        self.marks: list[int] = []  # when each phase started
        self.slow_ns = int(slow_ms * 1e6)
        self.slow: list[tuple[int, int, str]] = []  # callbacks of slow_ms or more: start, took
        self._gc_started = 0
        self._stop = threading.Event()
        self._loop_thread = threading.get_ident()
        self._schedstat = Path(f"/proc/self/task/{threading.get_native_id()}/schedstat")
        self._thread = threading.Thread(target=self._watch, name="loop-probe", daemon=True)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter_ns()
        elif self._gc_started:
            now = time.perf_counter_ns()
            self.gc_ns.append((info["generation"], self._gc_started, now - self._gc_started))

    async def run(self) -> None:
        import gc

        gc.callbacks.append(self._on_gc)
        self._thread.start()
        run = asyncio.events.Handle._run
        probe = self

        def timed(handle: asyncio.events.Handle) -> None:
            started = time.perf_counter_ns()
            run(handle)
            took = time.perf_counter_ns() - started
            if took >= probe.slow_ns:
                probe.slow.append((started, took, _callback_name(handle)))

        asyncio.events.Handle._run = timed  # type: ignore[method-assign,assignment]
        try:
            while True:
                self.beat = time.perf_counter_ns()
                await asyncio.sleep(0.001)
                woke = time.perf_counter_ns()
                self.woke_ns.append(woke)
                self.lags_ns.append(woke - self.beat - 1_000_000)
        finally:
            asyncio.events.Handle._run = run  # type: ignore[method-assign]
            self._stop.set()
            gc.callbacks.remove(self._on_gc)

    def _watch(self) -> None:
        import traceback

        current: int | None = None  # the beat of the stall being sampled

        def sched() -> tuple[int, int, int]:
            ran, waited = (int(v) for v in self._schedstat.read_text().split()[:2])
            return time.perf_counter_ns(), ran, waited

        while not self._stop.wait(0.001):
            beat = self.beat
            if time.perf_counter_ns() - beat - 1_000_000 < self.stall_ns:
                if current is not None:
                    # Ended: a wait for a CPU is counted when the thread gets one, after the
                    # stall's last sample, so its end is read once it is over.
                    start, n, first, began, _ = self.stalls[-1]
                    self.stalls[-1] = (start, n, first, began, sched())
                current = None
                continue
            frame = sys._current_frames().get(self._loop_thread)
            if frame is None:
                continue
            stack = tuple(
                f"{Path(f.filename).parent.name}/{Path(f.filename).name}:{f.lineno} {f.name}"
                for f in traceback.extract_stack(frame)
            )
            self.samples[stack] = self.samples.get(stack, 0) + 1
            now = sched()
            if current != beat:
                current = beat
                self.stalls.append((beat, 1, stack, now, now))
            else:
                start, n, first, began, _ = self.stalls[-1]
                self.stalls[-1] = (start, n + 1, first, began, now)

    def mark(self) -> None:
        """A phase starts (the measuring process sends SIGUSR1)."""
        self.marks.append(time.perf_counter_ns())

    def report(self) -> str:
        """Per phase: lag percentiles, collections, the longest stalls and what the loop ran
        in them; then the stacks sampled in stalls over the whole run."""
        marks = [*self.marks, time.perf_counter_ns()]
        parts = [
            self._segment(f"phase {i + 1}", start, end)
            for i, (start, end) in enumerate(itertools.pairwise(marks))
        ]
        parts.append("stacks sampled during stalls, by samples (all phases):")
        for stack, n in sorted(self.samples.items(), key=lambda kv: -kv[1])[:12]:
            parts.append(f"- {n} samples:")
            parts.extend(f"    {frame}" for frame in _project_frames(stack))
        return "\n".join(parts)

    def _segment(self, name: str, since_ns: int, until_ns: int) -> str:
        woke = np.frombuffer(self.woke_ns, dtype=np.int64)
        inside = (woke >= since_ns) & (woke < until_ns)
        lags = np.frombuffer(self.lags_ns, dtype=np.int64)[inside] / 1e6
        seconds = (until_ns - since_ns) / 1e9
        lines = [f"{name}, {seconds:.1f} s: {lags.size:,} wakeups of a 1 ms sleep"]
        if lags.size:
            p50, p99, p999 = np.percentile(lags, [50, 99, 99.9])
            lines.append(
                f"late by: p50 {p50:.2f} ms, p99 {p99:.2f}, p99.9 {p999:.2f}, "
                f"max {lags.max():.1f}; "
                + ", ".join(f"> {t} ms: {int((lags > t).sum())}" for t in (5, 10, 20, 50))
            )
        collections = [(g, d / 1e6) for g, t, d in self.gc_ns if since_ns <= t < until_ns]
        for generation in (0, 1, 2):
            times = [d for g, d in collections if g == generation]
            if times:
                lines.append(
                    f"gc generation {generation}: {len(times)} collections, "
                    f"median {float(np.median(times)):.2f} ms, max {max(times):.2f} ms"
                )
        slow = [(t, d, n) for t, d, n in self.slow if since_ns <= t < until_ns]
        by_name: dict[str, list[int]] = {}
        for _, took, callback in slow:
            by_name.setdefault(callback, []).append(took)
        lines.append(
            f"callbacks of {self.slow_ns / 1e6:g} ms or more: {len(slow)}, "
            f"{sum(d for _, d, _ in slow) / 1e6:.0f} ms in all; by callback "
            "(count, total ms, median ms, max ms):"
        )
        for callback, durations in sorted(by_name.items(), key=lambda kv: -sum(kv[1]))[:10]:
            lines.append(
                f"- {callback}: {len(durations)}, {sum(durations) / 1e6:.0f}, "
                f"{float(np.median(durations)) / 1e6:.1f}, {max(durations) / 1e6:.1f}"
            )
        stalls = [s for s in self.stalls if since_ns <= s[0] < until_ns]
        lines.append(
            f"stalls (loop more than {self.stall_ns / 1e6:g} ms late): {len(stalls)}; "
            "the longest, with the first stack sampled in each (innermost frames):"
        )
        # Over a stall's samples (its first ~stall_ms are before them): the loop thread on a
        # CPU (the code named), waiting for one (other threads and processes had the cores),
        # or neither (blocked: I/O such as an fsync, or the GIL another thread holds).
        lines.append(
            "(each: the loop thread's time from the stall's first sample to its end, on a "
            "CPU / waiting for a CPU / blocked)"
        )
        for start, n, stack, began, ended in sorted(stalls, key=lambda s: -s[1])[:8]:
            span_ms = (ended[0] - began[0]) / 1e6
            ran_ms = (ended[1] - began[1]) / 1e6
            waited_ms = (ended[2] - began[2]) / 1e6
            blocked_ms = max(0.0, span_ms - ran_ms - waited_ms)
            held = f"{ran_ms:.0f} / {waited_ms:.0f} / {blocked_ms:.0f} ms"
            # A collection inside the stall (the samples are ~1 ms apart): the stack sampled
            # then is the allocation that started it, not the collector.
            until = start + (n + 2) * 1_000_000 + self.stall_ns
            inside = [(g, d) for g, t, d in self.gc_ns if start <= t < until]
            during = "".join(f", gc generation {g} {d / 1e6:.1f} ms" for g, d in inside)
            lines.append(f"- at +{(start - since_ns) / 1e9:.2f} s, {n} samples ({held}){during}:")
            lines.extend(f"    {frame}" for frame in _project_frames(stack))
        return "\n".join(lines)


def _callback_name(handle: asyncio.events.Handle) -> str:
    """A callback's name: a task step by its coroutine and where that coroutine now waits."""
    callback = getattr(handle, "_callback", None)
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        coro = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        where = f" (at {Path(frame.f_code.co_filename).name}:{frame.f_lineno})" if frame else ""
        return f"task {getattr(coro, '__qualname__', coro)}{where}"
    return repr(callback)[:120]


def _project_frames(stack: tuple[str, ...], depth: int = 7) -> list[str]:
    """A sampled stack's innermost ``depth`` frames, and the innermost of our own code."""
    inner = list(stack[-depth:])
    ours = [f for f in stack[:-depth] if f.split("/")[0] in _OURS]
    return [*ours[-3:], *inner]


_OURS = {"purpleflea", "server", "engine", "ingest", "store", "bus", "venues", "client"}


# --- phases -----------------------------------------------------------------------------------


def rss_mb(pid: int, field_name: str = "VmRSS") -> float:
    """A process's resident memory now (VmRSS) or at its peak (VmHWM), MB; with stream
    workers, the sum over the tracker and its workers (for the peak: the sum of each one's
    peak, an upper bound)."""
    total = 0.0
    for member in family(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith(field_name + ":"):
                    total += int(line.split()[1]) / 1024
    return total or float("nan")


@dataclass
class Result:
    name: str
    rate: float  # offered frames/s
    frames: int
    clients: int
    delivered: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    wall_s: float
    server_cores: float  # CPU seconds / wall seconds of the server process during the phase
    client_cores: float  # of every client pool together
    exchange_cores: float  # of the fake exchange (this process)
    server_rss_mb: float  # the server's resident memory at the end of the phase
    #: Milliseconds a second of the phase the server's event loop, and the clients' and the
    #: fake exchange's loops together, waited for a CPU while runnable (others had it).
    server_wait_ms_s: float = float("nan")
    others_wait_ms_s: float = float("nan")
    limit_ms: float = P99_LIMIT_MS

    @property
    def server_us_per_delivery(self) -> float:
        """Server CPU per delivered frame: the cost measure that CPU contention from other
        processes on the machine does not distort (latency and ceilings it does)."""
        return self.server_cores * self.wall_s / max(1, self.delivered) * 1e6

    @property
    def complete(self) -> bool:
        return self.delivered == self.frames * self.clients

    @property
    def passes(self) -> bool:
        return self.complete and self.p99_ms < self.limit_ms

    def row(self) -> str:
        return (
            f"| {self.name} | {self.clients:,} | {self.rate:,.0f} | {self.frames:,} | "
            f"{self.delivered:,}/{self.frames * self.clients:,} | {self.p50_ms:.1f} | "
            f"{self.p99_ms:.1f} | {self.max_ms:.1f} | {self.wall_s:.1f} | "
            f"{self.server_cores:.2f} | {self.client_cores:.2f} | {self.exchange_cores:.2f} | "
            f"{self.server_us_per_delivery:.1f} | {self.server_rss_mb:.0f} | "
            f"{self.server_wait_ms_s:.0f} | {self.others_wait_ms_s:.0f} |"
        )


HEADER = (
    "| phase | clients | offered frames/s | frames | deliveries | p50 ms | p99 ms | max ms "
    "| wall s | server cores | client cores | exchange cores | server CPU µs/delivery "
    "| server RSS MB | server CPU wait ms/s | measurer CPU wait ms/s |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


class Bench:
    def __init__(
        self, exchange: FakeBinance, pools: Pools, server_pid: int, probed: bool = False
    ) -> None:
        self.exchange = exchange
        self.pools = pools
        self.server_pid = server_pid
        self.probed = probed  # the server runs a LoopProbe: tell it when a phase starts
        self.phase = 0

    async def settle(self, expected: int, timeout: float, quiet: float = 3.0) -> None:
        """Wait until every client received everything sent, or nothing arrived for ``quiet``
        seconds (a lost frame), or ``timeout``."""
        deadline = time.monotonic() + timeout
        last, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            now_total = self.pools.count
            if now_total >= expected:
                return
            if now_total != last:
                last, last_change = now_total, time.monotonic()
            elif time.monotonic() - last_change > quiet:
                return
            await asyncio.sleep(0.05)

    async def run(
        self,
        name: str,
        send: Callable[[int], Awaitable[int]],
        rate: float,
        timeout: float = 60.0,
        limit_ms: float = P99_LIMIT_MS,
    ) -> Result:
        self.phase += 1
        phase = self.phase
        await self.pools.take()  # stragglers of the phase before are not this one's
        if self.probed:
            os.kill(self.server_pid, signal.SIGUSR1)
        before = self.pools.count
        pids = self.pools.pids
        wall, server_cpu = time.perf_counter(), server_cpu_seconds(self.server_pid)
        client_cpu = sum(cpu_seconds(pid) for pid in pids)
        exchange_cpu = cpu_seconds(os.getpid())
        server_wait = waited_seconds([self.server_pid])
        others_wait = waited_seconds([*pids, os.getpid()])
        frames = await send(phase)
        await self.settle(before + frames * self.pools.clients, timeout)
        wall = time.perf_counter() - wall
        server_cores = (server_cpu_seconds(self.server_pid) - server_cpu) / wall
        client_cores = (sum(cpu_seconds(pid) for pid in pids) - client_cpu) / wall
        exchange_cores = (cpu_seconds(os.getpid()) - exchange_cpu) / wall
        server_wait = (waited_seconds([self.server_pid]) - server_wait) / wall * 1e3
        others_wait = (waited_seconds([*pids, os.getpid()]) - others_wait) / wall * 1e3
        latencies = self.latencies(phase, await self.pools.take())
        p50, p99, worst = float("nan"), float("nan"), float("nan")
        if latencies.size:
            p50, p99 = (float(v) for v in np.percentile(latencies, [50, 99]))
            worst = float(latencies.max())
        result = Result(
            name,
            rate,
            frames,
            self.pools.clients,
            int(latencies.size),
            p50,
            p99,
            worst,
            wall,
            server_cores,
            client_cores,
            exchange_cores,
            rss_mb(self.server_pid),
            server_wait,
            others_wait,
            limit_ms,
        )
        print(result.row(), flush=True)
        return result

    def latencies(
        self, phase: int, arrivals: list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]
    ) -> np.ndarray[Any, np.dtype[np.float64]]:
        sent = np.frombuffer(self.exchange.sent_ns, dtype=np.int64)
        phases = np.frombuffer(self.exchange.phase_of, dtype=np.int8)
        parts = []
        for ks, at in arrivals:
            mask = phases[ks] == phase
            parts.append((at[mask] - sent[ks[mask]]) / 1e6)
        return np.concatenate(parts) if parts else np.zeros(0)


async def measure(
    label: str,
    exchange: FakeBinance,
    server_pid: int,
    pools: Pools,
    args: argparse.Namespace,
    probed: bool = False,
) -> dict[str, Any]:
    await pools.start(args.clients)
    await asyncio.wait_for(exchange.subscribed.wait(), 30)
    bench = Bench(exchange, pools, server_pid, probed)
    print(f"\n### {label}\n\n{HEADER}", flush=True)
    await bench.run("warm-up", lambda p: exchange.paced(p, 500, 1.0), 500)
    steady: Result | None = None
    if "a" in args.phases:
        steady = await bench.run(
            "(a) steady",
            lambda p: exchange.paced(p, args.steady_rate, args.steady_s),
            args.steady_rate,
            limit_ms=10.0,
        )
        await asyncio.sleep(1.0)
    burst: Result | None = None
    if "b" in args.phases:
        burst = await bench.run(
            "(b) burst in 1 s",
            lambda p: exchange.paced(p, args.burst, 1.0),
            args.burst,
            timeout=120.0,
            limit_ms=100.0,
        )
        await asyncio.sleep(1.0)
    ramp: list[Result] = []
    passed: Result | None = None
    failed: Result | None = None
    repeated: list[str] = []  # the steps that passed only when run again

    async def step_at(rate: float) -> Result:
        """A ramp step, run again (``--ramp-repeats`` times at most) while it fails: a step
        fails only when every run of it did. A run's p99 is set by its slowest 1 % of frames,
        at 2,000/s for 3 s 60 frames, 30 ms of sending: one stall of 50 ms or more (another
        process holding the cores) failed a step that the steps above it passed."""
        name = f"(c) ramp {rate:g}/s"
        step = await bench.run(name, lambda p: exchange.paced(p, rate, args.step_s), rate)
        ramp.append(step)
        runs = [step]
        while not step.passes and len(runs) <= args.ramp_repeats:
            await asyncio.sleep(0.5)
            step = await bench.run(
                f"{name}, again", lambda p: exchange.paced(p, rate, args.step_s), rate
            )
            ramp.append(step)
            runs.append(step)
        if step.passes and len(runs) > 1:
            repeated.append(
                f"{rate:g}/s failed {len(runs) - 1} run(s) ("
                + ", ".join(_verdict(r) for r in runs[:-1])
                + f") and passed the next ({_verdict(step)})"
            )
        return step

    for rate in args.ramp if "c" in args.phases else ():
        step = await step_at(rate)
        await asyncio.sleep(0.5)
        if step.passes:
            passed = step
        else:
            failed = step
            break
    if passed is not None and failed is not None:  # one bisection step between pass and fail
        step = await step_at(round((passed.rate + failed.rate) / 2))
        if step.passes:
            passed = step
    many: Result | None = None
    if "d" in args.phases and args.many_clients > args.clients:
        await pools.start(args.many_clients - args.clients)
        await asyncio.sleep(1.0)
        many = await bench.run(
            f"(d) {args.many_clients:,} clients",
            lambda p: exchange.paced(p, args.many_rate, args.many_s),
            args.many_rate,
            timeout=120.0,
        )
    peak = rss_mb(server_pid, "VmHWM")
    await pools.stop()
    ceiling = passed.rate * args.clients if passed is not None else 0.0
    print(f"\nceiling ({label}): {ceiling:,.0f} deliveries/s with p99 < {P99_LIMIT_MS:g} ms")
    if "c" in args.phases:
        print(
            f"ramp steps run again after a failure (at most {args.ramp_repeats} time(s); a step "
            "fails only when every run of it does): "
            + ("; ".join(repeated) if repeated else "none passed on a repeat")
        )
    print(f"server RSS peak ({label}): {peak:.0f} MB")
    return {
        "steady": steady,
        "burst": burst,
        "ramp": ramp,
        "ceiling": ceiling,
        "many": many,
        "peak_mb": peak,
    }


def _verdict(result: Result | None) -> str:
    if result is None:
        return "not run"
    met = "met" if result.passes else "missed"
    expected = result.frames * result.clients
    return f"p99 {result.p99_ms:.1f} ms, {result.delivered:,}/{expected:,} delivered ({met})"


def split_cpus() -> tuple[set[int], set[int]]:
    """This machine's CPUs in two halves: the server's, then the measurer's."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit(f"--pin needs at least 2 CPUs to split, this process may use {cpus}")
    return set(cpus[: len(cpus) // 2]), set(cpus[len(cpus) // 2 :])


async def main(args: argparse.Namespace) -> None:
    server_cpus: set[int] | None = None
    if args.pin:
        # The server on its own CPUs, the fake exchange and every client process on the others
        # (they inherit this process's affinity), so neither side's latency is the other's
        # queueing for a shared core.
        server_cpus, measurer_cpus = split_cpus()
        os.sched_setaffinity(0, measurer_cpus)
    exchange = FakeBinance()
    # No keepalive pings from the fake exchange: under load a reader that falls behind
    # answers late and would be cut, which measures the neighbours, not the reader.
    async with serve(
        exchange.handler, "127.0.0.1", 0, compression=None, ping_interval=None
    ) as fake:
        exchange_url = f"ws://127.0.0.1:{next(iter(fake.sockets)).getsockname()[1]}/market/ws"
        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, websockets {websockets.__version__}; "
            f"load average before: {os.getloadavg()[0]:.2f}"
        )
        print(
            f"{args.clients} clients ({args.many_clients:,} in phase d) in {args.client_procs} "
            "client processes; the fake exchange in this one; each server in its own"
        )
        print(f"tracker socket: {args.nodelay} (nodelay = TCP_NODELAY on accepted sockets)")
        print(
            "tracker garbage collector: "
            + ("Python's defaults (--gc-default)" if args.gc_default else "settled as by serve")
        )
        print(
            "CPUs: "
            + (
                f"servers on {sorted(server_cpus)}, the fake exchange and clients on "
                f"{sorted(os.sched_getaffinity(0))} (--pin)"
                if server_cpus is not None
                else "shared by every process (no --pin)"
            )
        )
        print(
            f"tracker stream workers: {args.stream_workers} (server CPU and RSS are summed over "
            "the tracker and its workers)"
        )
        with tempfile.TemporaryDirectory(prefix="pf-e2e-") as data_dir:
            tracker_args = [
                "_tracker",
                exchange_url,
                data_dir,
                args.profile or "",
                args.nodelay,
                str(args.stream_workers),
                "default" if args.gc_default else "settle",
                "probe" if args.loop_probe else "",
            ]
            child, ready = spawn(*tracker_args, cpus=server_cpus)
            try:
                url = f"http://127.0.0.1:{ready['port']}"
                pools = Pools("sdk", url, ready["key"], args.client_procs)
                ours = await measure(
                    "tracker (SDK clients)", exchange, child.pid, pools, args, args.loop_probe
                )
            finally:
                stop(child)
        if args.skip_bare:
            return
        child, ready = spawn("_bare", exchange_url, cpus=server_cpus)
        try:
            pools = Pools("bare", f"ws://127.0.0.1:{ready['port']}/", "", args.client_procs)
            bare = await measure("bare websockets broadcast", exchange, child.pid, pools, args)
        finally:
            stop(child)
    print(
        f"\n(d) {args.many_clients:,} clients at {args.many_rate:,.0f} events/s, goal p99 "
        f"{P99_LIMIT_MS:g} ms: tracker {_verdict(ours['many'])}; bare {_verdict(bare['many'])}"
    )
    print(
        f"server RSS peak, goal 500 MB: tracker {ours['peak_mb']:.0f} MB, "
        f"bare {bare['peak_mb']:.0f} MB"
    )
    ratio = ours["ceiling"] / bare["ceiling"] if bare["ceiling"] else float("nan")
    print(
        f"\nsummary: (a) p99 {_p99(ours['steady'])} ms (goal 10), (b) p99 "
        f"{_p99(ours['burst'])} ms (goal 100), (c) ceiling {ours['ceiling']:,.0f} "
        f"deliveries/s = {ratio:.0%} of the bare broadcast's {bare['ceiling']:,.0f} (goal 50%)"
    )


def _p99(result: Result | None) -> str:
    return "not run" if result is None else f"{result.p99_ms:.1f}"


async def _start(
    factory: Callable[[Receiver, asyncio.Event], Awaitable[None]], receivers: list[Receiver]
) -> list[asyncio.Task[None]]:
    """Start one client per receiver and wait until each has subscribed."""
    readies = [asyncio.Event() for _ in receivers]
    tasks = [asyncio.create_task(factory(r, e)) for r, e in zip(receivers, readies, strict=True)]
    waiting = asyncio.gather(*(e.wait() for e in readies))
    done, _ = await asyncio.wait([waiting, *tasks], timeout=120, return_when="FIRST_COMPLETED")
    for task in tasks:
        if task in done:
            task.result()  # a client failed to connect: raise its error
    if waiting not in done:
        raise TimeoutError("stream clients did not subscribe within 120 s")
    return tasks


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument(
        "--client-procs", type=int, default=2, help="processes the clients are spread over"
    )
    parser.add_argument("--steady-rate", type=float, default=2_000)
    parser.add_argument("--steady-s", type=float, default=10.0)
    parser.add_argument("--burst", type=float, default=20_000)
    parser.add_argument("--step-s", type=float, default=3.0)
    parser.add_argument(
        "--ramp",
        type=lambda s: [float(x) for x in s.split(",")],
        default=[100, 200, 400, 700, 1_000, 1_500, 2_000, 3_000, 4_000, 6_000, 8_000],
    )
    parser.add_argument(
        "--ramp-repeats",
        type=int,
        default=1,
        help="times a failed ramp step is run again before the ramp stops there (0: never)",
    )
    parser.add_argument("--many-clients", type=int, default=1_000, help="clients in phase (d)")
    parser.add_argument("--many-rate", type=float, default=500.0, help="events/s in phase (d)")
    parser.add_argument("--many-s", type=float, default=10.0, help="seconds of phase (d)")
    parser.add_argument("--profile", help="write a cProfile of the tracker process here")
    parser.add_argument("--skip-bare", action="store_true")
    parser.add_argument(
        "--nodelay",
        action="store_const",
        const="nodelay",
        default="shipped",
        help="serve on a socket with TCP_NODELAY (the proposed net.py fix) instead of as shipped",
    )
    parser.add_argument(
        "--stream-workers",
        type=int,
        default=1,
        metavar="N",
        help="the tracker's stream worker processes (purpleflea serve --stream-workers)",
    )
    parser.add_argument(
        "--gc-default",
        action="store_true",
        help="leave the tracker's garbage collector as Python sets it (serve settles it)",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="servers on one half of the CPUs, the fake exchange and the clients on the other",
    )
    parser.add_argument("--quick", action="store_true", help="short phases (smoke test)")
    parser.add_argument(
        "--phases",
        default="abcd",
        help="the phases to run after the warm-up, e.g. 'a' (default: abcd)",
    )
    parser.add_argument(
        "--loop-probe",
        action="store_true",
        help="measure the tracker's loop lag and sample what holds it (LoopProbe; costs CPU)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.steady_s, args.step_s, args.burst = 2.0, 1.0, 5_000
        args.many_clients, args.many_s = min(args.many_clients, 200), 2.0
    return args


if __name__ == "__main__":
    if os.environ.get(CPUS_ENV):
        os.sched_setaffinity(0, {int(c) for c in os.environ[CPUS_ENV].split(",")})
    if len(sys.argv) > 1 and sys.argv[1] == "_tracker":
        asyncio.run(
            run_tracker(
                *sys.argv[2:4],
                sys.argv[4] or None,
                sys.argv[5] == "nodelay",
                int(sys.argv[6]),
                sys.argv[7] == "settle",
                sys.argv[8:9] == ["probe"],  # absent when bench/crash_ingest.py spawns it
            )
        )
    elif len(sys.argv) > 1 and sys.argv[1] == "_bare":
        asyncio.run(run_bare(sys.argv[2]))
    else:
        asyncio.run(main(parse(sys.argv[1:])))
