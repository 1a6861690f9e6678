"""After a restart the cascade engine is the engine that ran before it.

The served tracker runs on the simulator for a while, stops as a SIGTERM stops it, and starts
again on the same folder. The engine it starts with must follow the same cascades, in the
same state, and score every market and side as the engine at the stop did. The scores are
compared exactly: the engine is deterministic, so an engine that is the same one scores the
same integers; one point of difference is the difference between a cascade started and not.
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import pytest

from purpleflea.bus.local import LocalBus
from purpleflea.engine import CascadeEngine
from purpleflea.engine.heatmap_feed import HeatmapFeed
from purpleflea.model import CascadeAlert, MarketSnapshot, Side
from purpleflea.server.engine_state import EngineState
from purpleflea.server.pipeline import Pipeline
from purpleflea.store.base import OpenInterest
from purpleflea.store.sqlite import SQLiteStore
from tests.events import stored_event
from tests.server.conftest import T0, make_config, running_server, until, venue_event

SIDES: tuple[Side, Side] = ("long", "short")


def _scores(engine: CascadeEngine, markets: list[str]) -> dict[tuple[str, Side], int]:
    return {(market, side): engine.score(market, side) for market in markets for side in SIDES}


def _cascade(alert: CascadeAlert) -> tuple[object, ...]:
    return (
        alert.id,
        alert.score,
        alert.peak_score,
        round(alert.window_usd, 2),
        round(alert.total_usd, 2),
        alert.events,
        alert.started_at,
        alert.updated_at,
    )


@pytest.mark.usefixtures("quick_warmup")
async def test_the_engine_after_a_restart_is_the_engine_before_it(tmp_path: Path) -> None:
    config = make_config(tmp_path, source="sim", speed=30.0, sim_markets=25)
    async with running_server(config) as running:
        tracker = running.server.tracker
        begun = time.monotonic()
        await until(
            lambda: tracker.last_seq > 1_500 and time.monotonic() - begun > 8,
            120,
            "1,500 simulated liquidations",
        )
    live = tracker.scorer
    assert isinstance(live, CascadeEngine)
    markets = sorted(tracker.markets)
    live_scores = _scores(live, markets)
    live_active = sorted(_cascade(alert) for alert in live.active())
    assert any(live_scores.values()), "the run scored something"

    async with running_server(make_config(tmp_path)) as again:
        warmed = again.server.tracker.scorer
        assert isinstance(warmed, CascadeEngine)
        assert sorted(again.server.tracker.markets) == markets
        assert sorted(_cascade(alert) for alert in warmed.active()) == live_active
        assert _scores(warmed, markets) == live_scores


async def _tracker_life(folder: Path, events: int, first: int) -> Pipeline:
    """A tracker on ``folder``'s store that takes ``events`` liquidations and stops cleanly."""
    store = SQLiteStore(folder / "db.sqlite")
    tracker = Pipeline(
        store,
        LocalBus(),
        scorer=CascadeEngine(),
        engine_state=EngineState.beside(store.path),
    )
    await tracker.start(tick_interval=3600.0)
    for i in range(events):
        tracker.submit(venue_event(size_usd=20_000.0, price=60_000.0 - i, ts=T0 + first + 500 * i))
    await tracker.drain()
    await tracker.stop()
    await store.close()
    return tracker


async def test_a_state_the_store_has_moved_past_is_not_continued(tmp_path: Path) -> None:
    first = await _tracker_life(tmp_path, 40, 0)
    assert first.engine_start == ""
    state = tmp_path / "db.sqlite.engine"
    assert state.exists(), "a clean stop writes the engine's state"
    kept = state.read_bytes()
    second = await _tracker_life(tmp_path, 0, 0)
    assert second.engine_start == "continued"
    assert state.exists()  # written again by the second clean stop
    # A crash after events stored: the state of before them would miss them.
    await _tracker_life(tmp_path, 10, 40 * 500)
    state.write_bytes(kept)
    third = await _tracker_life(tmp_path, 0, 0)
    assert third.engine_start == "warmed"


async def test_after_a_warm_live_snapshots_replace_the_stored_open_interest(
    tmp_path: Path,
) -> None:
    # The warm told the engine each stored row as the market's total; live snapshots then
    # told it each listing beside that total, so after a crash's restart a market of one
    # listing was sized against twice its open interest (3 points of score less).
    store = SQLiteStore(tmp_path / "db.sqlite")
    await store.append_open_interest(
        [OpenInterest(ts=T0, market="BTC-PERP", open_interest_usd=1e9, mark_price=60_000.0)]
    )
    before = Pipeline(store, LocalBus())  # a crash: no engine state beside the store
    await before.start()
    before.submit(venue_event(ts=T0 + 1_000))
    await before.drain()
    await before.stop()
    engine = CascadeEngine()
    tracker = Pipeline(store, LocalBus(), scorer=engine, heatmap=HeatmapFeed(fuel=engine))
    await tracker.start(tick_interval=3600.0)
    assert tracker.engine_start == "warmed"
    tracker.on_snapshot(
        MarketSnapshot(
            exchange="binance_usdm",
            symbol="BTCUSDT",
            market="BTC-PERP",
            ts=T0 + 60_000,
            mark_price=60_000.0,
            open_interest=1.1e9 / 60_000.0,
            open_interest_usd=1.1e9,
        )
    )
    await tracker.stop()
    await store.close()
    told = engine.export_state()["oi"]
    assert isinstance(told, dict)
    assert sum(told["BTC-PERP"].values()) == 1.1e9


def _btc(symbol: str, ts: int, usd: float) -> MarketSnapshot:
    return MarketSnapshot(
        exchange="binance_usdm",
        symbol=symbol,
        market="BTC-PERP",
        ts=ts,
        mark_price=60_000.0,
        open_interest=usd / 60_000.0,
        open_interest_usd=usd,
    )


async def _served_with_heatmap(folder: Path, snapshots: list[MarketSnapshot]) -> Pipeline:
    """A tracker with the heatmap on ``folder``'s store that is told ``snapshots`` (one
    event stored first, unless it continued a saved engine) and stops cleanly."""
    store = SQLiteStore(folder / "db.sqlite")
    engine = CascadeEngine()
    tracker = Pipeline(
        store,
        LocalBus(),
        scorer=engine,
        heatmap=HeatmapFeed(fuel=engine),
        engine_state=EngineState.beside(store.path),
    )
    await tracker.start(tick_interval=3600.0)
    if tracker.engine_start != "continued":
        tracker.submit(venue_event(ts=T0 + 1_000))
        await tracker.drain()
    for snapshot in snapshots:
        tracker.on_snapshot(snapshot)
    await tracker.stop()
    await store.close()
    return tracker


async def test_a_continued_engine_retires_a_listing_that_never_reports_again(
    tmp_path: Path,
) -> None:
    # The heatmap drops a listing with no snapshot for 24 h (an expired future) and tells the
    # engine. A continued engine held listings the restarted heatmap never had a book of, so
    # one that expired across the restart stayed in the market's size for ever: the engine
    # sized BTC's cascades against the live perpetual plus a dead future's 5e8.
    hour = 3_600_000
    await _served_with_heatmap(
        tmp_path, [_btc("BTCUSDT", T0, 1e9), _btc("BTCUSDT_251226", T0, 5e8)]
    )
    later = [_btc("BTCUSDT", T0 + h * hour, 1e9) for h in range(1, 27)]
    tracker = await _served_with_heatmap(tmp_path, later)
    assert tracker.engine_start == "continued"
    assert isinstance(tracker.scorer, CascadeEngine)
    told = tracker.scorer.export_state()["oi"]
    assert isinstance(told, dict)
    assert told["BTC-PERP"] == {"binance_usdm:BTCUSDT": 1e9}


async def test_a_continued_engine_forgets_a_warms_stored_total_at_the_first_live_snapshot(
    tmp_path: Path,
) -> None:
    # A warm tells the engine a market's stored open interest as history:<market>, dropped at
    # the market's first live snapshot. A clean stop before any came (serve --source none)
    # saved that total in the engine's state; the continued engine kept it beside the live
    # listings (the market sized against both) when its stored rows were older than the
    # heatmap's rebuild, which alone marked a market's stored total to drop.
    hour = 3_600_000
    store = SQLiteStore(tmp_path / "db.sqlite")
    await store.append_open_interest(
        [OpenInterest(ts=T0, market="BTC-PERP", open_interest_usd=1e9, mark_price=60_000.0)]
    )
    await store.append(
        [stored_event(1, prefix="h", ts=T0 + 1_000), stored_event(2, prefix="h", ts=T0 + 40 * hour)]
    )
    await store.close()
    first = await _served_with_heatmap(tmp_path, [])
    assert first.engine_start == "warmed"
    tracker = await _served_with_heatmap(tmp_path, [_btc("BTCUSDT", T0 + 41 * hour, 1.1e9)])
    assert tracker.engine_start == "continued"
    assert isinstance(tracker.scorer, CascadeEngine)
    told = tracker.scorer.export_state()["oi"]
    assert isinstance(told, dict)
    assert told["BTC-PERP"] == {"binance_usdm:BTCUSDT": 1.1e9}


async def test_a_stop_after_a_duplicate_the_store_dropped_is_continued(tmp_path: Path) -> None:
    # The SQLite store's last seq counted an event it dropped as already stored (a
    # reconnect's replay after a restart): the clean stop saved the engine's state at that
    # seq, the store reopened one below it, and every such restart warmed the engine instead.
    await _tracker_life(tmp_path, 3, 0)
    store = SQLiteStore(tmp_path / "db.sqlite")
    [held] = await store.since(0, limit=1)
    await store.close()
    replayed = venue_event(ts=held.ts)
    replayed = msgspec.structs.replace(replayed, id=held.id, size_usd=held.size_usd)
    store = SQLiteStore(tmp_path / "db.sqlite")
    tracker = Pipeline(
        store, LocalBus(), scorer=CascadeEngine(), engine_state=EngineState.beside(store.path)
    )
    await tracker.start(tick_interval=3600.0)
    tracker.submit(replayed)  # stored before: the store drops it
    await tracker.drain()
    await tracker.stop()
    await store.close()
    assert tracker.counters["duplicates"] == 1
    again = await _tracker_life(tmp_path, 0, 0)
    assert again.engine_start == "continued"
