"""Heatmaps cross from the ingest node to API nodes over real NATS and answer the same."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import nats
import pytest

from purpleflea.engine.heatmap_feed import HeatmapFeed
from purpleflea.model import MarketSnapshot
from purpleflea.server.heatmap_relay import (
    HeatmapRelay,
    PublishingSink,
    RelayedHeatmapModel,
    decode_view,
    encode_view,
)
from tests.services import TcpRelay, ensure_nats

T0 = 1_760_000_000_000
Connect = Callable[[], Awaitable[HeatmapRelay]]
MARKS = {"BTC-PERP": 60_000.0, "ETH-PERP": 3_000.0, "DOGE-PERP": 0.1234}


def _snapshot(market: str, exchange: str, minute: int, drift: float) -> MarketSnapshot:
    mark = MARKS[market] * (1 + drift)
    coins = 1_000_000 / MARKS[market] * (1 + minute / 10)
    return MarketSnapshot(
        exchange=exchange,
        symbol=market,
        market=market,
        ts=T0 + minute * 60_000,
        mark_price=mark,
        open_interest=coins,
        open_interest_usd=coins * mark,
    )


def _feed_minutes(sink: PublishingSink, minutes: range) -> None:
    for minute in minutes:
        for market, mark in MARKS.items():
            sink.note_price(market, mark * (1 - 0.02 * (minute % 3)))
            for exchange, drift in (("okx", 0.01), ("bybit", -0.005)):
                sink.on_snapshot(_snapshot(market, exchange, minute, drift * (minute % 4)))


def _views(model: object, market: str) -> list[object]:
    """The heatmap answers a client can ask for: default, finer, and a custom range."""
    assert hasattr(model, "heatmap")
    mark = MARKS[market]
    default = model.heatmap(market)
    return [
        default,
        model.heatmap(market, bucket=default.bucket_size / 5),
        model.heatmap(market, low=mark * 0.5, high=mark * 1.3),
        model.heatmap(market, low=mark * 0.01, high=mark * 3, bucket=mark / 50),
    ]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    url = ensure_nats()
    tag = uuid.uuid4().hex[:10]
    relays: list[HeatmapRelay] = []

    async def make() -> HeatmapRelay:
        relay = await HeatmapRelay.connect(url, stream=f"PFHM_{tag}", prefix=f"pfhm{tag}")
        relays.append(relay)
        return relay

    yield make
    for relay in relays:
        await relay.close()
    client = await nats.connect(url)
    try:
        with contextlib.suppress(Exception):
            await client.jetstream().delete_stream(f"PFHM_{tag}_HEATMAPS")
    finally:
        await client.close()


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


async def test_api_nodes_answer_exactly_what_the_ingest_model_answers(connect: Connect) -> None:
    feed = HeatmapFeed()
    sink = PublishingSink(feed)
    ingest, api = await connect(), await connect()
    model = RelayedHeatmapModel()
    await api.follow(model)
    publisher = asyncio.create_task(ingest.publish_changes(sink, interval=0.02))
    try:
        _feed_minutes(sink, range(0, 5))
        await _until(lambda: api.counters["received"] >= len(MARKS))
        assert model.markets() == feed.model.markets() == tuple(sorted(MARKS))
        for market in MARKS:
            assert _views(model, market) == _views(feed.model, market)

        # Later snapshots replace each market's view (the newest one wins).
        received = api.counters["received"]
        _feed_minutes(sink, range(5, 9))
        await _until(lambda: api.counters["received"] >= received + len(MARKS))
        await asyncio.sleep(0.1)  # let any further round land
        for market in MARKS:
            assert _views(model, market) == _views(feed.model, market)

        # An API node started now gets every market's newest view at once.
        late_model = RelayedHeatmapModel()
        await (await connect()).follow(late_model)
        await _until(lambda: late_model.markets() == model.markets())
        for market in MARKS:
            assert _views(late_model, market) == _views(feed.model, market)
    finally:
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher
    # Throttled: one message per changed market per round, not one per snapshot.
    assert ingest.counters["published"] < 9 * len(MARKS) * 2


def test_the_wire_view_is_trimmed_and_exact() -> None:
    feed = HeatmapFeed()
    _feed_minutes(PublishingSink(feed), range(3))
    view = feed.model._view("BTC-PERP")
    data = encode_view("BTC-PERP", view)
    market, decoded = decode_view(data)
    assert market == "BTC-PERP"
    assert len(decoded.long_cdf) < len(view.long_cdf)  # the empty padding stays home
    assert len(data) < 16 * len(view.long_cdf)
    model = RelayedHeatmapModel()
    model.install(market, decoded)
    assert _views(model, market) == _views(feed.model, market)


def test_bad_messages_and_snapshots_on_an_api_node_are_refused() -> None:
    with pytest.raises(ValueError, match="not a heatmap state"):
        decode_view(b"\x01garbage")
    with pytest.raises(RuntimeError, match="runs no model of its own"):
        RelayedHeatmapModel().on_snapshot(_snapshot("BTC-PERP", "okx", 0, 0.0))


async def test_while_nats_is_away_heatmaps_wait_quietly_and_go_out_when_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """During a NATS outage the ingest node tried each changed market in turn, each try
    waiting out its 5 s timeout and logging a line (a line every 5 s per relay for the whole
    outage). Now nothing is tried while disconnected, and the markets go out once it is back."""
    host, port = ensure_nats().removeprefix("nats://").split(":")
    relay = TcpRelay(host, int(port))
    await relay.open()
    tag = uuid.uuid4().hex[:10]
    ingest = await HeatmapRelay.connect(
        f"nats://127.0.0.1:{relay.port}", stream=f"PFHM_{tag}", prefix=f"pfhm{tag}"
    )
    api = await HeatmapRelay.connect(ensure_nats(), stream=f"PFHM_{tag}", prefix=f"pfhm{tag}")
    sink = PublishingSink(HeatmapFeed())
    await api.follow(RelayedHeatmapModel())
    caplog.set_level(logging.INFO)
    publisher = asyncio.create_task(ingest.publish_changes(sink, interval=0.05))
    try:
        await relay.cut()
        await _until(lambda: not ingest.client.is_connected)
        _feed_minutes(sink, range(0, 3))
        await asyncio.sleep(1.0)  # twenty rounds while NATS is away
        assert ingest.counters["publish_failures"] == 0
        assert sink.changed == set(MARKS)  # kept for when it is back
        await relay.open()
        # The client retries every 2 s: polled for 60 s, not 300 times (6 s and more).
        deadline = asyncio.get_running_loop().time() + 60
        while (
            api.counters["received"] < len(MARKS) and asyncio.get_running_loop().time() < deadline
        ):
            await asyncio.sleep(0.02)
        assert api.counters["received"] >= len(MARKS)
    finally:
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher
        await ingest.close()
        await api.close()
        await relay.close()
        client = await nats.connect(ensure_nats())
        with contextlib.suppress(Exception):
            await client.jetstream().delete_stream(f"PFHM_{tag}_HEATMAPS")
        await client.close()
    assert not [r for r in caplog.records if "not published" in r.getMessage()]
