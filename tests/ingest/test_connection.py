"""The connection runner's own pieces: the id deduper and the silence watchdog.

The watchdog keeps one timer per silence period (not one per frame) and re-arms it from the
last frame's time; the deduper skips its expiry scan until the oldest id is due; the session
takes every message websockets already holds at once. Each must behave exactly as a per-frame
timeout, a scan on every call and one ``recv()`` per message would.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import OrderedDict, deque
from types import SimpleNamespace
from typing import Any, cast

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Opcode

from purpleflea.ingest.dedupe import Deduper
from purpleflea.websocket_ready import take_ready
from tests.fakes.exchanges import FakeExchange, Faults, dialect_for
from tests.fakes.harness import Feeds
from tests.ingest.test_faults import assert_exactly_delivered, binance_frame, spec_for


def test_deduper_remembers_an_id_for_its_ttl_only() -> None:
    deduper = Deduper(ttl=10.0)
    assert not deduper.seen("a", 0.0)
    assert not deduper.seen("b", 5.0)
    assert deduper.seen("a", 9.9)
    assert not deduper.seen("a", 10.0)  # expired at 10: new again, remembered until 20
    assert deduper.seen("b", 14.9)
    assert not deduper.seen("b", 15.0)
    assert deduper.seen("a", 19.9)


def test_deduper_forgets_the_oldest_ids_beyond_max_size() -> None:
    # A full table forgets its oldest id before it looks one up.
    deduper = Deduper(ttl=100.0, max_size=3)
    for i, event_id in enumerate("abcd"):
        assert not deduper.seen(event_id, float(i))  # d made a go: b, c, d held
    assert not deduper.seen("a", 4.0)  # b goes; a is new again: c, d, a
    assert deduper.seen("d", 5.0)  # c goes; d is still held
    assert deduper.seen("a", 5.0)
    assert not deduper.seen("b", 6.0)


def test_deduper_refills_after_everything_expired() -> None:
    deduper = Deduper(ttl=1.0)
    assert not deduper.seen("a", 0.0)
    assert not deduper.seen("b", 5.0)  # a expired and was dropped; b is the oldest now
    assert deduper.seen("b", 5.5)
    assert not deduper.seen("a", 5.5)
    assert not deduper.seen("b", 6.0)


class _ScanEveryCall:
    """The deduper as it was: look at the oldest id on every call (the reference)."""

    def __init__(self, ttl: float, max_size: int) -> None:
        self.ttl, self.max_size = ttl, max_size
        self.expiry: OrderedDict[str, float] = OrderedDict()

    def seen(self, event_id: str, now: float) -> bool:
        while self.expiry:
            oldest, at = next(iter(self.expiry.items()))
            if at > now and len(self.expiry) < self.max_size:
                break
            del self.expiry[oldest]
        if event_id in self.expiry:
            return True
        self.expiry[event_id] = now + self.ttl
        return False


def test_deduper_answers_as_a_scan_on_every_call_would() -> None:
    rng = random.Random(7)
    deduper, reference = Deduper(ttl=5.0, max_size=40), _ScanEveryCall(5.0, 40)
    now = 0.0
    for _ in range(20_000):
        now += rng.expovariate(20.0)  # ~100 calls per TTL: the size bound and expiry both bite
        event_id = f"e{rng.randrange(120)}"
        assert deduper.seen(event_id, now) == reference.seen(event_id, now), (event_id, now)


async def test_a_slow_but_steady_feed_is_never_called_silent() -> None:
    # A frame every 0.2 s for ~2 s under a 0.5 s watchdog: its first timer fires at 0.5 s with
    # frames 0.1 s old; it must re-arm from the last frame, never cut the connection.
    frames = [binance_frame(i) for i in range(10)]
    async with FakeExchange(dialect_for("binance_usdm"), frames, Faults(gap=0.2)) as fake:
        spec = spec_for("binance_usdm", "binance_usdm", fake.url, silence_timeout=0.5)
        async with Feeds([spec]) as run:
            await fake.wait_drained(timeout=10)
            await run.wait_for(lambda: len(run.received) == 10)
    stats = run.stats[spec.name]
    assert fake.connections == 1
    assert stats.silent == 0
    assert stats.reconnects == 0
    assert_exactly_delivered(run, spec, fake)


async def test_a_feed_gone_quiet_is_cut_once_per_silence() -> None:
    # Ten frames, then nothing: the watchdog cuts each quiet connection after 0.3 s. No
    # keepalive within the test (its answers would be frames).
    frames = [binance_frame(i) for i in range(10)]
    async with FakeExchange(dialect_for("binance_usdm"), frames) as fake:
        spec = spec_for(
            "binance_usdm", "binance_usdm", fake.url, silence_timeout=0.3, keepalive_interval=3600
        )
        async with Feeds([spec]) as run:
            await fake.wait_drained(timeout=10)
            await run.wait_for(lambda: run.stats[spec.name].silent >= 2)
    stats = run.stats[spec.name]
    assert stats.errors["silent"] == stats.silent
    assert stats.last_error.startswith("silent: no frame for 0.3 s")
    assert_exactly_delivered(run, spec, fake)


async def test_answered_keepalives_do_not_pass_for_data() -> None:
    # EXCHANGES.md trap 3: a Binance URL that completes the handshake and answers requests but
    # sends no liquidation. Its LIST_SUBSCRIPTIONS answers keep the frame watchdog fed; the
    # data watchdog cuts the connection anyway, and says why.
    async with FakeExchange(dialect_for("binance_usdm"), []) as fake:
        spec = spec_for(
            "binance_usdm",
            "binance_usdm",
            fake.url,
            keepalive_interval=0.1,
            silence_timeout=0.5,
            data_timeout=0.8,
        )
        async with Feeds([spec]) as run:
            await run.wait_for(lambda: run.stats[spec.name].silent >= 1, timeout=10)
    stats = run.stats[spec.name]
    assert stats.last_error.startswith("silent: no liquidation for 0.8 s, only keepalive")
    assert stats.frames >= 3  # answers came: only the data watchdog could have cut it


async def test_a_slow_but_steady_feed_is_never_cut_by_the_data_watchdog() -> None:
    frames = [binance_frame(i) for i in range(10)]
    async with FakeExchange(dialect_for("binance_usdm"), frames, Faults(gap=0.2)) as fake:
        spec = spec_for(
            "binance_usdm", "binance_usdm", fake.url, silence_timeout=5.0, data_timeout=0.5
        )
        async with Feeds([spec]) as run:
            await fake.wait_drained(timeout=10)
            await run.wait_for(lambda: len(run.received) == 10)
    assert run.stats[spec.name].silent == 0
    assert fake.connections == 1


async def _received_burst(sent: list[Any]) -> tuple[ClientConnection, list[str | bytes]]:
    """A client connection to a server that sent ``sent`` at once, and the first message."""

    async def handler(ws: ServerConnection) -> None:
        for message in sent:
            await ws.send(message)
        await ws.wait_closed()

    server = await serve(handler, "127.0.0.1", 0)
    port = next(iter(server.sockets)).getsockname()[1]
    client = await connect(f"ws://127.0.0.1:{port}", compression=None)
    client.server_for_test = server  # type: ignore[attr-defined]
    first = await client.recv()
    await asyncio.sleep(0.2)  # the rest of the burst reaches websockets' buffer
    return client, [first]


async def test_take_ready_returns_what_recv_would_in_order_and_stops_at_a_fragment() -> None:
    sent: list[Any] = [f"text {i}" for i in range(30)]
    sent += [b"\x00binary", "after binary", ["frag", "mented"], "after the fragment"]
    client, got = await _received_burst(sent)
    try:
        got += take_ready(client)
        assert got == sent[:32]  # the fragmented message is left for recv()
        assert await client.recv() == "fragmented"
        got = [await client.recv()]
        got += take_ready(client)
        assert got == ["after the fragment"]
        assert take_ready(client) == []  # nothing held: nothing taken, nothing waited for
    finally:
        await client.close()
        client.server_for_test.close()  # type: ignore[attr-defined]


def test_take_ready_takes_nothing_from_a_buffer_it_does_not_know() -> None:
    # Another websockets version may keep messages otherwise: the session then recv()s each.
    held = deque([SimpleNamespace(fin=True, opcode=Opcode.TEXT, data=b"held")])
    for assembler in (
        SimpleNamespace(),
        SimpleNamespace(frames=SimpleNamespace(queue=[1]), get_in_progress=False),
        SimpleNamespace(frames=SimpleNamespace(queue=held), get_in_progress=False),  # no resume
    ):
        ws = cast(ClientConnection, SimpleNamespace(recv_messages=assembler))
        assert take_ready(ws) == []
    assert len(held) == 1  # left where it was
    assert take_ready(cast(ClientConnection, SimpleNamespace())) == []


async def test_a_burst_is_delivered_in_order_and_counted_frame_by_frame() -> None:
    # 500 frames back to back with garbage among them: most are taken from the buffer in
    # batches, yet every good event arrives once, in order, and every frame is counted.
    frames = [binance_frame(i) for i in range(500)]
    faults = Faults(burst=100, garbage_every=7)
    async with FakeExchange(dialect_for("binance_usdm"), frames, faults) as fake:
        spec = spec_for("binance_usdm", "binance_usdm", fake.url)
        async with Feeds([spec]) as run:
            await fake.wait_drained(timeout=10)
            await run.wait_for(lambda: len(run.received) == 500)
            await run.wait_for(lambda: run.stats[spec.name].malformed == fake.garbage_delivered)
    stats = run.stats[spec.name]
    assert stats.frames >= 500 + fake.garbage_delivered  # acks come on top
    assert stats.duplicates == 0
    assert_exactly_delivered(run, spec, fake)


async def test_a_venue_s_handshake_headers_reach_the_exchange() -> None:
    """Gate pushes sizes as integers truncated toward zero unless the socket opens with
    ``X-Gate-Size-Decimal: 1``: every Gate connection asks for decimals, and the runner sends
    a connection's headers in its opening handshake."""
    from purpleflea.ingest.connection import run_feed
    from purpleflea.ingest.feed_spec import FeedSpec
    from purpleflea.venues.gate.connection import connections as gate_connections

    gate = gate_connections({})
    assert gate
    assert all(("X-Gate-Size-Decimal", "1") in c.headers for c in gate)
    seen: list[str | None] = []

    async def handler(ws: ServerConnection) -> None:
        seen.append(ws.request.headers.get("X-Gate-Size-Decimal") if ws.request else None)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        spec = FeedSpec(
            name="gate_usdt",
            exchange="gate",
            url=f"ws://127.0.0.1:{port}",
            headers=gate[0].headers,
            normalize=lambda frame: [],
        )
        task = asyncio.create_task(run_feed(spec, lambda event, received_at: None))
        try:
            for _ in range(200):
                if seen:
                    break
                await asyncio.sleep(0.01)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert seen == ["1"]


async def test_a_connection_that_served_is_replaced_at_once_and_a_failing_one_backs_off() -> None:
    """Binance closes every connection at 24 h ("expect to be disconnected at the 24 hour
    mark"), others on gateway restarts: a socket that served is replaced without a backoff
    wait, which would be a gap in the feed. One that dies young still backs off."""
    from purpleflea.ingest.backoff import Backoff
    from purpleflea.ingest.connection import run_feed
    from purpleflea.ingest.connection_stats import ConnectionStats
    from purpleflea.ingest.feed_spec import FeedSpec

    opened: list[float] = []
    keep_for = [0.4, 0.0, 10.0]  # healthy, then dies at once, then stays

    async def handler(ws: ServerConnection) -> None:
        opened.append(asyncio.get_running_loop().time())
        keep = keep_for[min(len(opened) - 1, 2)]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ws.wait_closed(), keep)
        await ws.close(1001, "scheduled")

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        spec = FeedSpec(
            name="binance_usdm",
            exchange="binance_usdm",
            url=f"ws://127.0.0.1:{port}",
            normalize=lambda frame: [],
        )
        backoff = Backoff(base=1.2, cap=1.2, healthy_after=0.3)
        stats = ConnectionStats(spec.name)
        task = asyncio.create_task(run_feed(spec, lambda e, at: None, stats, backoff=backoff))
        try:
            for _ in range(400):
                if len(opened) >= 3:
                    break
                await asyncio.sleep(0.01)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert len(opened) == 3, opened
    # After the healthy 0.4 s session: no wait (before: U(0.6, 1.2) s of backoff).
    assert opened[1] - opened[0] < 0.4 + 0.25
    # After the one that closed at once: the backoff's first step, U(0.6, 1.2) s.
    assert opened[2] - opened[1] >= 0.6
    assert stats.reconnects == 2


async def test_the_runner_sends_protocol_pings_kraken_futures_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kraken Futures closes a connection that sends no ping for 60 s ("make a ping request at
    least every 60 seconds"; its sample client sends websocket ping frames,
    ``run_forever(ping_interval=30)``, and Kraken has no JSON ping on /ws/v1). The runner
    sends no application ping to Kraken: websockets' own ping frames keep it open."""
    import inspect

    from purpleflea.ingest import connection as runner
    from purpleflea.ingest.connection import run_feed
    from purpleflea.ingest.feed_spec import FeedSpec

    default = inspect.signature(connect).parameters["ping_interval"].default
    seen: list[dict[str, Any]] = []

    def recording_connect(url: str, **kwargs: Any) -> Any:
        seen.append(kwargs)
        raise OSError("recorded, not connected")

    monkeypatch.setattr(runner, "connect", recording_connect)
    spec = FeedSpec(name="kraken_futures", exchange="kraken_futures", url="ws://x", normalize=list)
    task = asyncio.create_task(run_feed(spec, lambda e, at: None))
    while not seen:
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    interval = seen[0].get("ping_interval", default)
    assert interval is not None
    assert interval <= 30
