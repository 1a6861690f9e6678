"""The connection runner against venues failing the way real ones do.

Each test stands up a loopback server that misbehaves as a venue's gateway does (rate limits on
the upgrade, a subscription that goes silent, close codes) and checks what the runner does
about it: how long it waits, how often it tries, what it counts and what it logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace

import pytest
import websockets
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from purpleflea.ingest.backoff import Backoff
from purpleflea.ingest.connection import run_feed
from purpleflea.ingest.connection_stats import ConnectionStats
from purpleflea.ingest.feed_spec import FeedSpec
from tests.server.conftest import until

Handler = Callable[[ServerConnection], Awaitable[None]]
Upgrade = Callable[[ServerConnection, Request], Response | None]


async def _nothing(ws: ServerConnection) -> None:
    await ws.wait_closed()


async def feed_for(
    spec: FeedSpec, seconds: float, backoff: Backoff | None = None
) -> ConnectionStats:
    """Run ``spec``'s connection for ``seconds`` (its events dropped), then stop it: its stats."""
    stats = ConnectionStats(spec.name)
    task = asyncio.create_task(run_feed(spec, lambda e, at: None, stats, backoff=backoff))
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return stats


async def feed_until(
    spec: FeedSpec,
    done: Callable[[ConnectionStats], bool],
    backoff: Backoff | None = None,
    *,
    linger: float = 0.0,
) -> ConnectionStats:
    """Run ``spec``'s connection (its events dropped) until ``done(stats)`` holds, and
    ``linger`` seconds more (for what must not happen), then stop it: its stats. Not for a
    fixed time: a loaded machine makes fewer attempts in one."""
    stats = ConnectionStats(spec.name)
    task = asyncio.create_task(run_feed(spec, lambda e, at: None, stats, backoff=backoff))
    try:
        await until(lambda: done(stats), 60, "the feed's counters")
        await asyncio.sleep(linger)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return stats


#: What a closing venue answers every upgrade with: a status no test's venue gives otherwise.
_CLOSING = 502


class _Venue:
    """A loopback venue's handshake log: the monotonic time of each opening handshake, each
    then answered by ``upgrade`` (None: accepted). Once ``closing``, it refuses every upgrade
    with :data:`_CLOSING` and records it no more."""

    def __init__(self, upgrade: Upgrade | None) -> None:
        self.upgrade = upgrade
        self.handshakes: list[float] = []
        self.closing = False

    def __call__(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.closing:
            return connection.respond(_CLOSING, "closing\n")
        self.handshakes.append(time.monotonic())
        return self.upgrade(connection, request) if self.upgrade is not None else None


@contextlib.asynccontextmanager
async def _serving(
    handler: Handler, upgrade: Upgrade | None, timing: dict[str, float]
) -> AsyncIterator[tuple[_Venue, FeedSpec]]:
    venue = _Venue(upgrade)
    async with serve(handler, "127.0.0.1", 0, process_request=venue) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        spec = FeedSpec(
            name="okx",
            exchange="okx",
            url=f"ws://127.0.0.1:{port}/ws/v5/public",
            subscribe=('{"op":"subscribe"}',),
            normalize=lambda frame: [],
            **timing,  # type: ignore[arg-type]
        )
        yield venue, spec


async def run_against(
    seconds: float,
    backoff: Backoff,
    handler: Handler = _nothing,
    upgrade: Upgrade | None = None,
    **timing: float,
) -> tuple[list[float], ConnectionStats]:
    """Run one feed for ``seconds`` against a loopback server; the monotonic times of its
    opening handshakes and the feed's counters."""
    async with _serving(handler, upgrade, timing) as (venue, spec):
        stats = await feed_for(spec, seconds, backoff)
    return venue.handshakes, stats


async def run_until(
    enough: Callable[[list[float]], bool],
    backoff: Backoff,
    handler: Handler = _nothing,
    upgrade: Upgrade | None = None,
    **timing: float,
) -> tuple[list[float], ConnectionStats]:
    """As :func:`run_against`, but until ``enough(handshakes)`` holds and the feed has counted
    the answer to every handshake recorded: the venue then refuses further upgrades with a
    502 (not recorded), and the feed is stopped once it has counted one. It opens one
    connection at a time, so each handshake before that one was answered and counted; a feed
    stopped after a fixed time could be cancelled between the venue's record of a handshake
    and its own count of the answer."""
    async with _serving(handler, upgrade, timing) as (venue, spec):
        stats = ConnectionStats(spec.name)
        task = asyncio.create_task(run_feed(spec, lambda e, at: None, stats, backoff=backoff))
        try:
            await until(lambda: enough(venue.handshakes), 60, "enough handshakes")
            venue.closing = True
            closed = f"http_{_CLOSING}"
            await until(lambda: stats.errors[closed] > 0, 60, f"the feed to count a {_CLOSING}")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return venue.handshakes, stats


@dataclass
class _Told(Backoff):
    """A backoff that keeps each wait it told the runner, in order."""

    waits: list[float] = field(default_factory=list)

    def delay_at_least(self, attempt: int, retry_after: float | None) -> float:
        wait = super().delay_at_least(attempt, retry_after)
        self.waits.append(wait)
        return wait


def gaps(times: list[float]) -> list[float]:
    return [round(b - a, 3) for a, b in itertools.pairwise(times)]


@pytest.mark.parametrize("status", [429, 418, 503])
async def test_a_rate_limited_upgrade_waits_as_long_as_retry_after_says(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    # Binance answers 429 (then 418, an IP ban) with Retry-After; reconnecting sooner is what
    # turns a rate limit into a ban. The backoff alone would try again within 0.1 s.
    def limited(connection: ServerConnection, request: Request) -> Response:
        response = connection.respond(status, "slow down\n")
        response.headers["Retry-After"] = "1"
        return response

    caplog.set_level(logging.DEBUG, logger="purpleflea.ingest")
    backoff = _Told(base=0.05, cap=0.1)
    handshakes, stats = await run_until(
        lambda handshakes: len(handshakes) >= 2, backoff, upgrade=limited
    )
    assert all(gap >= 1.0 for gap in gaps(handshakes)), gaps(handshakes)
    assert all(wait >= 1.0 for wait in backoff.waits[: len(handshakes)]), backoff.waits
    assert stats.errors[f"http_{status}"] == len(handshakes)
    told = [r.getMessage() for r in caplog.records if "(retry after 1 s)" in r.getMessage()]
    assert len(told) == len(handshakes), told


async def test_a_retry_after_date_is_honoured_too() -> None:
    import email.utils

    def limited(connection: ServerConnection, request: Request) -> Response:
        response = connection.respond(429, "slow down\n")
        response.headers["Retry-After"] = email.utils.formatdate(time.time() + 3, usegmt=True)
        return response

    handshakes, _ = await run_against(1.5, Backoff(base=0.05, cap=0.1), upgrade=limited)
    assert len(handshakes) == 1, gaps(handshakes)  # the next is due in 2-3 s (whole seconds)


async def test_a_rate_limit_without_retry_after_keeps_the_backoff() -> None:
    def limited(connection: ServerConnection, request: Request) -> Response:
        return connection.respond(429, "slow down\n")

    backoff = _Told(base=0.02, cap=0.05)
    handshakes, stats = await run_until(
        lambda handshakes: len(handshakes) >= 8, backoff, upgrade=limited
    )
    # The waits the runner was told, not the gaps between handshakes: a loaded machine
    # stretches those past any bound.
    assert max(backoff.waits) <= 0.05, backoff.waits
    assert stats.errors["http_429"] == len(handshakes)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "purpleflea.ingest" and r.levelno >= logging.WARNING
    ]


async def _ack_then_silence(ws: ServerConnection) -> None:
    await ws.recv()
    await ws.send('{"event":"subscribe","arg":{"channel":"liquidation-orders"}}')
    await ws.wait_closed()


async def test_a_venue_silent_after_the_subscribe_is_reported_once_not_per_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="purpleflea.ingest")
    backoff = Backoff(base=0.02, cap=0.05, healthy_after=10.0)
    handshakes, stats = await run_until(
        lambda handshakes: len(handshakes) >= 3, backoff, _ack_then_silence, silence_timeout=0.3
    )
    assert stats.silent == len(handshakes), stats.snapshot()
    assert stats.errors["silent"] == stats.silent
    warned = warnings_of(caplog)
    assert len(warned) == 1, warned
    assert "connected but silent" in warned[0]


@pytest.mark.parametrize("code", [1000, 1001, 1006, 1008, 1011, 4000, 4001])
async def test_a_venue_closing_each_connection_is_reported_once(
    code: int, caplog: pytest.LogCaptureFixture
) -> None:
    # 1000 normal, 1001 going away (maintenance), 1006 abrupt (no close frame), 1008 policy,
    # 1011 internal error, 4xxx the venues' own (Deribit, Bitget).
    async def close(ws: ServerConnection) -> None:
        await ws.recv()
        if code == 1006:
            ws.transport.abort()
        else:
            await ws.close(code, "fake venue")

    caplog.set_level(logging.DEBUG, logger="purpleflea.ingest")
    backoff = Backoff(base=0.02, cap=0.05, healthy_after=10.0)
    handshakes, stats = await run_until(lambda handshakes: len(handshakes) >= 5, backoff, close)
    assert stats.connects == len(handshakes), stats.snapshot()
    assert stats.errors["closed"] == stats.connects, stats.snapshot()
    [warned] = warnings_of(caplog)
    assert ("no close frame" if code == 1006 else f"received {code}") in warned


async def test_a_connection_that_served_before_it_closed_is_reported_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Each connection answers for 0.3 s (past healthy_after) and is closed by the venue: each
    # close is news, not the same outage going on.
    async def serve_then_close(ws: ServerConnection) -> None:
        await ws.recv()
        for _ in range(6):
            await ws.send('{"event":"subscribe"}')
            await asyncio.sleep(0.05)
        await ws.close(1001, "maintenance")

    caplog.set_level(logging.DEBUG, logger="purpleflea.ingest")
    backoff = Backoff(base=0.02, cap=0.05, healthy_after=0.2)
    handshakes, stats = await run_until(
        lambda handshakes: len(handshakes) >= 2, backoff, serve_then_close
    )
    assert stats.errors["closed"] == len(handshakes), stats.snapshot()
    # (The closing venue's refusal that ends the run follows a connection that served: news.)
    closes = [w for w in warnings_of(caplog) if f"http_{_CLOSING}" not in w]
    assert len(closes) == stats.errors["closed"], warnings_of(caplog)


async def test_a_corrupt_gzip_frame_is_counted_once_as_malformed() -> None:
    # HTX gzips every frame; its ping reader inflates each frame first. A corrupt one is the
    # normalizer's to count (malformed), not a ping-reader failure beside it.
    from tests.ingest.test_faults import htx_frame, spec_for

    async def corrupt_then_good(ws: ServerConnection) -> None:
        await ws.recv()
        good = gzip.compress(htx_frame(1).encode())
        await ws.send(good[:20] + b"\x00" * 10 + good[30:])
        await ws.send(gzip.compress(htx_frame(2).encode()))
        await ws.wait_closed()

    received: list[str] = []
    async with serve(corrupt_then_good, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        url = f"ws://127.0.0.1:{port}/linear-swap-notification"
        spec = spec_for("htx_linear", "htx", url, keepalive_interval=3600)
        stats = ConnectionStats(spec.name)
        sink = lambda event, at: received.append(event.id)  # noqa: E731
        task = asyncio.create_task(run_feed(spec, sink, stats))
        try:
            await until(lambda: bool(received), 60, "the good frame")
        finally:
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(received) == 1
    assert stats.malformed == 1
    assert dict(stats.errors) == {"malformed_frame": 1}
    assert "corrupt gzip frame" in stats.last_error


@pytest.mark.parametrize(
    ("what", "code"),
    [("invalid_utf8", 1007), ("too_big", 1009), ("bad_opcode", 1002)],
)
async def test_a_frame_the_client_cannot_accept_is_counted_apart_from_a_venue_close(
    what: str, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    # websockets closes the connection itself (1007 invalid UTF-8, 1009 over max_size, 1002 a
    # protocol error): the venue sent something broken; it did not close on us.
    from websockets.frames import Frame, Opcode

    from purpleflea.venues._frame import MAX_FRAME_BYTES

    async def broken(ws: ServerConnection) -> None:
        await ws.recv()
        if what == "invalid_utf8":
            ws.protocol.send_text(b'{"e":"\xff\xfe"}')
        elif what == "too_big":
            ws.protocol.send_text(b" " * (MAX_FRAME_BYTES + 1))
        else:
            ws.protocol.send_frame(Frame(Opcode.CONT, b"no message to continue"))
        ws.send_data()
        await ws.wait_closed()

    caplog.set_level(logging.DEBUG, logger="purpleflea.ingest")
    backoff = Backoff(base=0.02, cap=0.05, healthy_after=10.0)
    handshakes, stats = await run_until(lambda handshakes: len(handshakes) >= 3, backoff, broken)
    assert stats.errors["invalid_frame"] == len(handshakes), stats.snapshot()
    assert stats.errors["closed"] == 0, stats.snapshot()
    [warned] = warnings_of(caplog)
    assert f"sent {code}" in warned


#: Each venue's keepalive answer, from a gateway that answers pings but never the subscribe.
_PONGS: dict[str, Callable[[str], str | None]] = {
    "okx": lambda m: "pong" if m == "ping" else None,
    "bybit_linear": lambda m: (
        '{"success":true,"ret_msg":"pong","conn_id":"c1","op":"ping"}' if '"ping"' in m else None
    ),
    "binance_usdm": lambda m: '{"result":["!forceOrder@arr"],"id":2}' if "LIST" in m else None,
    # Deribit's keepalive is its own: the heartbeat request answered, the subscribe never.
    "deribit": lambda m: '{"jsonrpc":"2.0","id":1,"result":"ok"}' if "set_heartbeat" in m else None,
}


@pytest.mark.parametrize("connection", sorted(_PONGS))
async def test_a_subscribe_never_answered_is_replaced_though_pings_are(connection: str) -> None:
    # The pongs keep the silence watchdog fed: only the missing answer shows nothing was
    # subscribed. Before, OKX and Bybit stayed "connected" with no error, for ever.
    from tests.ingest.test_faults import spec_for

    pong = _PONGS[connection]

    async def pings_only(ws: ServerConnection) -> None:
        async for message in ws:
            reply = pong(str(message))
            if reply is not None:
                await ws.send(reply)

    exchange = {"bybit_linear": "bybit"}.get(connection, connection)
    async with serve(pings_only, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        spec = spec_for(
            connection,
            exchange,
            f"ws://127.0.0.1:{port}/x",
            keepalive_interval=0.05,
            silence_timeout=5.0,
            subscribe_timeout=0.3,
        )
        stats = await feed_until(
            spec,
            lambda stats: stats.errors["unanswered"] >= 2 and stats.connects >= 3,
            Backoff(base=0.02, cap=0.05, healthy_after=10.0),
        )
    assert stats.silent == 0
    assert stats.last_error.startswith("unanswered: no answer to the subscribe in 0.3 s")


async def _binance_forgetting(ws: ServerConnection) -> None:
    """A Binance gateway that acks SUBSCRIBE and then lists no subscription at all."""
    with contextlib.suppress(websockets.ConnectionClosed):
        async for message in ws:
            request = json.loads(message)
            answer = None if request["method"] == "SUBSCRIBE" else []
            await ws.send(json.dumps({"result": answer, "id": request["id"]}))


async def test_binance_dropping_the_subscription_gets_a_new_connection_not_a_warning_a_ping(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The connection stays open and answers LIST_SUBSCRIPTIONS, without our stream: nothing
    # will come on it. Before, it warned at every keepalive (every 30 s) until the data
    # watchdog cut it at 300 s. The old connection's overlap (2 s) is scaled down with the
    # keepalive (30 s -> 0.2 s).
    from purpleflea.ingest import handover
    from tests.ingest.test_faults import spec_for

    monkeypatch.setattr(handover, "OVERLAP", 0.05)

    caplog.set_level(logging.DEBUG, logger="purpleflea.ingest")
    async with serve(_binance_forgetting, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        url = f"ws://127.0.0.1:{port}/market/ws"
        spec = spec_for("binance_usdm", "binance_usdm", url, keepalive_interval=0.2)
        stats = await feed_until(
            spec,
            lambda stats: stats.handovers >= 2 and stats.connects >= 3,
            Backoff(base=0.01, cap=0.02, healthy_after=10.0),
        )
    refused = [m for m in warnings_of(caplog) if "no longer subscribed" in m]
    assert len(refused) <= stats.connects, refused  # once per connection, not per ping


async def test_binance_forgetting_every_subscription_is_still_an_outage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A venue that drops every connection's subscription (a stream it no longer serves, a
    # restricted region): each connection is replaced at its first LIST_SUBSCRIPTIONS answer,
    # sooner than the data watchdog's timeout. Each replacement started its own data clock, so
    # the feed handed over for ever, 'connected', never silent: health never showed the
    # outage. The data timeout counts from the feed's last liquidation across handovers.
    from purpleflea.ingest import handover
    from tests.ingest.test_faults import spec_for

    monkeypatch.setattr(handover, "OVERLAP", 0.05)

    async with serve(_binance_forgetting, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        url = f"ws://127.0.0.1:{port}/market/ws"
        spec = spec_for(
            "binance_usdm", "binance_usdm", url, keepalive_interval=0.2, data_timeout=0.7
        )
        stats = await feed_until(
            spec,
            lambda stats: stats.handovers >= 2 and stats.silent >= 1,
            Backoff(base=0.01, cap=0.02, healthy_after=10.0),
        )
    assert stats.last_error.startswith("silent: no liquidation for 0.7 s"), stats.last_error


async def test_hyperliquid_trades_subscribe_never_answered_is_replaced() -> None:
    # Hyperliquid answers {"method":"ping"} with {"channel":"pong"}; the sampler's trade
    # stream carries no liquidation, so no data watchdog could tell. Its subscriptionResponse
    # is what says the subscription took.
    from purpleflea.ingest.position_sampler import PositionSampler
    from purpleflea.venues import registry

    async def pongs_only(ws: ServerConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in ws:
                if json.loads(message).get("method") == "ping":
                    await ws.send('{"channel":"pong"}')

    [sampling] = registry.position_sources()
    async with serve(pongs_only, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        sampler = PositionSampler(sampling, coins=("BTC",), ws_url=f"ws://127.0.0.1:{port}/ws")
        spec = replace(sampler.feed_spec(), keepalive_interval=0.05, subscribe_timeout=0.3)
        await feed_until(
            spec,
            lambda stats: stats.errors["unanswered"] >= 2,
            Backoff(base=0.02, cap=0.05, healthy_after=10.0),
        )


@pytest.mark.parametrize(
    ("status", "expected"), [(503, 600.0), (502, 600.0), (429, 86400.0), (418, 86400.0)]
)
def test_only_a_rate_limit_or_ban_is_waited_out_for_a_day(status: int, expected: float) -> None:
    # A 503's Retry-After is a load balancer's guess at a maintenance window: retrying before
    # it costs one refused handshake, not a ban, so a day's wait there is a day of lost
    # liquidations. Binance's 429/418 count every early handshake against us: waited out.
    from websockets.datastructures import Headers

    from purpleflea.ingest.connection import _retry_after

    response = Response(status, "refused", Headers({"Retry-After": "86400"}))
    assert _retry_after(websockets.InvalidStatus(response)) == expected


async def test_a_connection_that_subscribes_nothing_waits_for_no_answer() -> None:
    # A category with no symbols sends no subscribe: no answer will come, and none is missing.
    # Before, it was replaced as unanswered every subscribe_timeout.
    from tests.ingest.test_faults import spec_for

    async def pongs(ws: ServerConnection) -> None:
        async for message in ws:
            if '"ping"' in str(message):
                await ws.send('{"success":true,"ret_msg":"pong","conn_id":"c1","op":"ping"}')

    async with serve(pongs, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        spec = spec_for(
            "bybit_linear",
            "bybit",
            f"ws://127.0.0.1:{port}/x",
            keepalive_interval=0.05,
            silence_timeout=5.0,
            subscribe_timeout=0.3,
        )
        spec = replace(spec, subscribe=())
        # Connected, then twice the subscribe timeout for a replacement to show, were there one.
        stats = await feed_until(
            spec,
            lambda stats: stats.connects >= 1,
            Backoff(base=0.02, cap=0.05, healthy_after=10.0),
            linger=0.6,
        )
    assert stats.errors["unanswered"] == 0, stats.snapshot()
    assert stats.connects == 1


def _okx_refusing(code: str, msg: str) -> Handler:
    """An OKX gateway that answers every subscribe with ``{"event":"error"}`` of ``code`` (the
    connection then stays open, answering pings) and counts the subscribes it got."""

    async def refuse(ws: ServerConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):  # the client hangs up
            async for message in ws:
                if message == "ping":
                    await ws.send("pong")
                elif '"subscribe"' in str(message):
                    error = {"event": "error", "code": code, "msg": msg, "connId": "a4d3ae55"}
                    await ws.send(json.dumps(error))

    return refuse


async def test_okx_refusing_a_subscribe_for_now_is_asked_again_on_a_new_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 60014 "Requests too frequent" (OKX's error codes): it passes later. Before, the
    # connection stayed open, "connected" and empty for ever, seen only in errors["refused"].
    from tests.ingest.test_faults import spec_for

    async with serve(_okx_refusing("60014", "Requests too frequent."), "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        spec = spec_for("okx", "okx", f"ws://127.0.0.1:{port}/x", keepalive_interval=0.05)
        with caplog.at_level(logging.WARNING, "purpleflea.ingest"):
            stats = await feed_until(
                spec,
                lambda stats: stats.connects >= 3 and stats.errors["refused_retry"] >= 2,
                Backoff(base=0.02, cap=0.1, healthy_after=10.0),
            )
    assert stats.errors["refused"] >= stats.errors["refused_retry"]
    assert stats.rejected == []
    assert "60014: Requests too frequent." in stats.last_error
    ours = [r for r in caplog.records if r.name.startswith("purpleflea")]
    assert not [r for r in ours if r.levelno >= logging.ERROR]
    warned = [r for r in ours if r.levelno == logging.WARNING]
    assert len(warned) == 1, [r.getMessage() for r in warned]  # one outage, one warning


async def test_okx_refusing_a_subscribe_as_wrong_is_one_error_naming_it_not_a_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 60018: the argument does not exist. Asking again cannot help: one ERROR naming it, and
    # the connection is left alone (it answers pings; nothing else to do until fixed).
    from tests.ingest.test_faults import spec_for

    msg = "Wrong URL or channel:liquidation-orders,instType:FUTURES doesn't exist."
    async with serve(_okx_refusing("60018", msg), "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        spec = spec_for("okx", "okx", f"ws://127.0.0.1:{port}/x", keepalive_interval=0.05)
        with caplog.at_level(logging.DEBUG, "purpleflea.ingest"):
            # Refused, then time for a loop to show, were there one.
            stats = await feed_until(
                spec,
                lambda stats: stats.errors["refused"] >= 1,
                Backoff(base=0.02, cap=0.1, healthy_after=10.0),
                linger=0.6,
            )
    assert stats.connects == 1, stats.snapshot()
    assert stats.errors["refused"] == 1
    assert stats.rejected == [f"60018: {msg}"]
    assert stats.snapshot()["rejected"] == [f"60018: {msg}"]
    errors = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("purpleflea") and r.levelno >= logging.ERROR
    ]
    assert len(errors) == 1, errors
    assert "instType:FUTURES doesn't exist" in errors[0]
    assert '"instType":"FUTURES"' in errors[0]  # what we sent, to find the argument in


async def test_okx_data_read_with_a_retryable_refusal_is_delivered_before_reconnecting() -> None:
    # OKX answers the subscribe of one channel with data and refuses the other for now: the
    # three frames come in one socket read, [data, refusal 60014, data]. Before, the refusal
    # closed the connection at once and the data behind it was lost, counted nowhere.
    from tests.ingest.test_faults import spec_for
    from tests.ingest.test_handover import okx_frame

    refusal = {"event": "error", "code": "60014", "msg": "Requests too frequent.", "connId": "c"}
    connections = 0

    async def data_refusal_data(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in ws:
                if '"subscribe"' in str(message) and connections == 1:
                    # No await suspends between these: one write, one read on the other end.
                    for frame in (okx_frame(1), json.dumps(refusal), okx_frame(2)):
                        await ws.send(frame)

    received: list[str] = []
    async with serve(data_refusal_data, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        spec = spec_for("okx", "okx", f"ws://127.0.0.1:{port}/x", keepalive_interval=0.05)
        stats = ConnectionStats(spec.name)
        backoff = Backoff(base=0.02, cap=0.05, healthy_after=10.0)
        task = asyncio.create_task(
            run_feed(spec, lambda event, at: received.append(event.id), stats, backoff=backoff)
        )
        try:
            await until(lambda: stats.connects >= 2, 60, "a second connection")
        finally:
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert stats.errors["refused_retry"] == 1, stats.snapshot()
    assert stats.connects >= 2, stats.snapshot()  # asked again on a new connection
    assert len(received) == 2, (received, stats.snapshot())
    assert stats.events == 2


def test_okx_refusals_worth_asking_again_are_the_transient_ones() -> None:
    from purpleflea.venues.okx.connection import retry_refused

    def refusal(code: str) -> str:
        return json.dumps({"event": "error", "code": code, "msg": "m", "connId": "c"})

    assert [
        c
        for c in ("60012", "60013", "60014", "60016", "60018", "63999", "64002")
        if retry_refused(refusal(c))
    ] == ["60014", "60016", "63999"]
    assert not retry_refused("not json")
