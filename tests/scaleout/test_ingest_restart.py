"""An ingest node on NATS restarts as a single node does: heatmaps and the warm's open interest.

An ingest node's heatmap feed sits inside a :class:`PublishingSink` (its changes go out to the
API nodes). The tracker recognised the feed only when it was the sink itself, so over the
same store an ingest node started with no heatmaps (404 until each market's next snapshot, a
single node serves them at once) and its warm did not mark the stored totals it told the
engine, which the first live snapshot then added to (the market sized against both).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from purpleflea.bus.local import LocalBus
from purpleflea.engine import CascadeEngine
from purpleflea.engine.heatmap_feed import HeatmapFeed
from purpleflea.model import MarketSnapshot
from purpleflea.server.heatmap_relay import HeatmapRelay, PublishingSink, RelayedHeatmapModel
from purpleflea.server.pipeline import Pipeline
from purpleflea.store.base import OpenInterest
from purpleflea.store.sqlite import SQLiteStore
from tests.events import stored_event
from tests.services import ensure_nats

T0 = 1_760_000_000_000
HOUR = 3_600_000
MARKS = {"BTC-PERP": 91_000.0, "ETH-PERP": 3_000.0}


def _rows(market: str, hours: int) -> list[OpenInterest]:
    """Hourly open interest growing while the price wanders +/- 6 %."""
    mark = MARKS[market]
    return [
        OpenInterest(
            ts=T0 + hour * HOUR,
            market=market,
            open_interest_usd=1e9 * (0.6 + 0.4 * hour / hours),
            mark_price=mark * (1 + 0.06 * math.sin(hour / 7.0)),
        )
        for hour in range(hours)
    ]


async def _store_with_open_interest(path: Path) -> None:
    """48 h of both markets' open interest and two events (no engine state: a warm)."""
    store = SQLiteStore(path)
    await store.append_open_interest(_rows("BTC-PERP", 48) + _rows("ETH-PERP", 48))
    await store.append(
        [stored_event(1, prefix="r", ts=T0 + 1_000), stored_event(2, prefix="r", ts=T0 + 47 * HOUR)]
    )
    await store.close()


async def _started(path: Path, *, publishing: bool) -> tuple[Pipeline, HeatmapFeed, CascadeEngine]:
    """A tracker with the engine and the heatmap on ``path``'s store, as a single node builds
    it or (``publishing``) as an ingest node on a NATS bus does."""
    engine = CascadeEngine()
    feed = HeatmapFeed(fuel=engine)
    tracker = Pipeline(
        SQLiteStore(path),
        LocalBus(),
        scorer=engine,
        heatmap=PublishingSink(feed) if publishing else feed,
    )
    await tracker.start(tick_interval=3600.0)
    return tracker, feed, engine


def _answers(feed: HeatmapFeed) -> dict[str, object]:
    return {
        market: [
            feed.model.heatmap(market),
            feed.model.heatmap(market, low=MARKS[market] * 0.5, high=MARKS[market] * 1.5),
        ]
        for market in feed.model.markets()
    }


async def _stopped(tracker: Pipeline) -> None:
    await tracker.stop()
    await tracker.store.close()


async def test_an_ingest_node_rebuilds_the_heatmaps_a_single_node_does(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    await _store_with_open_interest(path)
    single, single_feed, _ = await _started(path, publishing=False)
    await _stopped(single)
    ingest, ingest_feed, _ = await _started(path, publishing=True)
    await _stopped(ingest)
    assert single_feed.model.markets() == tuple(sorted(MARKS))
    assert _answers(ingest_feed) == _answers(single_feed)


@pytest.mark.parametrize("publishing", [False, True], ids=["single", "ingest"])
async def test_the_warms_stored_open_interest_is_replaced_by_live_snapshots(
    tmp_path: Path, publishing: bool
) -> None:
    path = tmp_path / "db.sqlite"
    await _store_with_open_interest(path)
    tracker, _, engine = await _started(path, publishing=publishing)
    assert tracker.engine_start == "warmed"
    told = engine.export_state()["oi"]
    assert isinstance(told, dict)
    # The warm told the engine each market's stored total.
    assert told["BTC-PERP"] == {"history:BTC-PERP": _rows("BTC-PERP", 48)[-1].open_interest_usd}
    tracker.on_snapshot(
        MarketSnapshot(
            exchange="binance_usdm",
            symbol="BTCUSDT",
            market="BTC-PERP",
            ts=T0 + 48 * HOUR,
            mark_price=91_000.0,
            open_interest=1.1e9 / 91_000.0,
            open_interest_usd=1.1e9,
        )
    )
    await _stopped(tracker)
    told = engine.export_state()["oi"]
    assert isinstance(told, dict)
    # The live listing replaces the stored total: the market is not sized against both.
    assert told["BTC-PERP"] == {"binance_usdm:BTCUSDT": 1.1e9}


@pytest.fixture
async def relays() -> AsyncIterator[tuple[HeatmapRelay, HeatmapRelay]]:
    url = ensure_nats()
    tag = uuid.uuid4().hex[:10]
    ingest = await HeatmapRelay.connect(url, stream=f"PFIR_{tag}", prefix=f"pfir{tag}")
    api = await HeatmapRelay.connect(url, stream=f"PFIR_{tag}", prefix=f"pfir{tag}")
    yield ingest, api
    for relay in (ingest, api):
        await relay.close()
    client = await nats.connect(url)
    try:
        with contextlib.suppress(Exception):
            await client.jetstream().delete_stream(f"PFIR_{tag}_HEATMAPS")
    finally:
        await client.close()


async def test_api_nodes_serve_the_rebuilt_heatmaps_before_any_snapshot(
    tmp_path: Path, relays: tuple[HeatmapRelay, HeatmapRelay]
) -> None:
    # An API node following a stream that holds no maps (a new stream, or one whose maps
    # aged out while the ingest node was down) gets the maps the ingest node rebuilt.
    ingest, api = relays
    path = tmp_path / "db.sqlite"
    await _store_with_open_interest(path)
    tracker, feed, _ = await _started(path, publishing=True)
    assert isinstance(tracker.heatmap, PublishingSink)
    model = RelayedHeatmapModel()
    await api.follow(model)
    publisher = asyncio.create_task(ingest.publish_changes(tracker.heatmap, interval=0.02))
    try:
        for _ in range(250):
            if api.counters["received"] >= len(MARKS):
                break
            await asyncio.sleep(0.02)
        assert model.markets() == tuple(sorted(MARKS))
        for market in MARKS:
            assert model.heatmap(market) == feed.model.heatmap(market)
    finally:
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher
        await _stopped(tracker)
