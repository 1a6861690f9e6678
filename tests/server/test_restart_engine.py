"""After a restart the cascade engine is the engine that ran before it.

The served tracker runs on the simulator for a while, stops as a SIGTERM stops it, and starts
again on the same folder. The engine it starts with must follow the same cascades, in the
same state, and score every market and side as the engine at the stop did. The scores are
compared exactly: the engine is deterministic, so an engine that is the same one scores the
same integers; one point of difference is the difference between a cascade started and not.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from purpleflea.bus.local import LocalBus
from purpleflea.clock import now_ms
from purpleflea.engine import CascadeEngine
from purpleflea.engine.heatmap_feed import HeatmapFeed
from purpleflea.model import CascadeAlert, MarketSnapshot, Side
from purpleflea.server.engine_state import EngineState
from purpleflea.server.pipeline import Pipeline
from purpleflea.store.base import OpenInterest
from purpleflea.store.file_guard import file_identity
from purpleflea.store.sqlite import SQLiteStore
from purpleflea.venues import registry
from tests.events import stored_event
from tests.server.conftest import T0, make_config, running_server, until, venue_event
from tests.server.crash_child import LIVE
from tests.server.engine_life import MINUTE, checkpointed, life_after_checkpoint, snapshot

ROOT = Path(__file__).resolve().parents[2]

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


@pytest.mark.usefixtures("quick_warmup")
async def test_after_a_sigkill_the_engine_is_the_one_that_ran(tmp_path: Path) -> None:
    # After a crash there was no saved state: the engine was warmed from the store, and
    # followed other cascades than the one that ran (14-18 of them here) and scored sides up
    # to 8 points apart. Then the checkpoints: the engine continued the newest and replayed
    # the events stored after it, but not the fuel and open interest the heatmap told it
    # since, nor the ticks that ended no cascade (0-3 cascades only one engine followed, 0-7
    # sides a point apart, in bench/warm_causes.py --crash). Those are journaled now: the
    # engine after the restart is the one that ran, every number of it. Killed with SIGKILL
    # between two plans, the engine it ran is written down first (tests/server/crash_child.py).
    child = [sys.executable, "-m", "tests.server.crash_child", str(tmp_path), "1500", "25", "30"]
    died = await asyncio.to_thread(
        subprocess.run, child, cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert died.returncode == -signal.SIGKILL, died.stderr[-3000:]
    live = CascadeEngine(fill_priced=registry.fill_priced())
    live.restore_state(msgspec.msgpack.decode((tmp_path / LIVE).read_bytes()))

    async with running_server(make_config(tmp_path)) as again:
        tracker = again.server.tracker
        restarted = tracker.scorer
        assert isinstance(restarted, CascadeEngine)
        markets = sorted(tracker.markets)
        assert tracker.engine_start == "continued"
        scores, live_scores = _scores(restarted, markets), _scores(live, markets)
        following = sorted(_cascade(alert) for alert in restarted.active())
        state = restarted.export_state()
    assert any(live_scores.values()), "the run scored something"
    apart = {side: (live_scores[side], score) for side, score in scores.items()}
    assert scores == live_scores, {side: pair for side, pair in apart.items() if len(set(pair)) > 1}
    assert following == sorted(_cascade(alert) for alert in live.active())
    assert state == live.export_state()


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


async def test_a_state_the_store_has_moved_past_is_continued_with_the_events_after_it(
    tmp_path: Path,
) -> None:
    first = await _tracker_life(tmp_path, 40, 0)
    assert first.engine_start == ""
    state = tmp_path / "db.sqlite.engine"
    assert state.exists(), "a clean stop writes the engine's state"
    kept = state.read_bytes()
    second = await _tracker_life(tmp_path, 0, 0)
    assert second.engine_start == "continued"
    assert state.exists()  # written again by the second clean stop
    third = await _tracker_life(tmp_path, 10, 40 * 500)
    # A crash after events stored: the state of before them (a checkpoint), and the events
    # stored after it replayed, are the engine that stored them.
    state.write_bytes(kept)
    fourth = await _tracker_life(tmp_path, 0, 0)
    assert fourth.engine_start == "continued"
    assert isinstance(third.scorer, CascadeEngine)
    assert isinstance(fourth.scorer, CascadeEngine)
    assert fourth.scorer.export_state() == third.scorer.export_state()


async def test_a_state_past_the_end_of_the_store_is_removed(tmp_path: Path) -> None:
    # A power loss took the store's last commits: a state taken after them knows events the
    # store lost, and would be continued once new seqs passed it.
    await _tracker_life(tmp_path, 40, 0)
    with contextlib.closing(sqlite3.connect(tmp_path / "db.sqlite")) as db, db:
        db.execute("DELETE FROM liquidations WHERE seq > 30")
    after = await _tracker_life(tmp_path, 0, 0)
    assert after.engine_start == "warmed"
    assert isinstance(after.scorer, CascadeEngine)
    saved = after.scorer.export_state()["markets"]
    assert isinstance(saved, dict)
    assert max(side["last_ts"] for pair in saved.values() for side in pair) == T0 + 29 * 500


async def test_the_state_before_is_continued_when_the_newest_is_past_the_store(
    tmp_path: Path,
) -> None:
    await _tracker_life(tmp_path, 40, 0)
    await _tracker_life(tmp_path, 10, 40 * 500)  # the state at 50, the one at 40 kept
    with contextlib.closing(sqlite3.connect(tmp_path / "db.sqlite")) as db, db:
        db.execute("DELETE FROM liquidations WHERE seq > 45")  # a power loss took 46-50
    after = await _tracker_life(tmp_path, 0, 0)
    assert after.engine_start == "continued"
    assert isinstance(after.scorer, CascadeEngine)
    saved = after.scorer.export_state()["markets"]
    assert isinstance(saved, dict)
    # The state at 40 and the stored 41-45 replayed, nothing of the lost 46-50.
    assert max(side["last_ts"] for pair in saved.values() for side in pair) == T0 + 44 * 500


async def test_a_damaged_newest_state_is_removed_and_the_one_before_continued(
    tmp_path: Path,
) -> None:
    lives = []
    for folder in (tmp_path / "damaged", tmp_path / "kept"):
        folder.mkdir()
        await _tracker_life(folder, 40, 0)
        await _tracker_life(folder, 0, 0)  # the state at 40 twice: the newest and the previous
        state = folder / "db.sqlite.engine"
        if folder.name == "damaged":
            state.write_bytes(state.read_bytes()[:100])  # a disk that did not keep the newest
        lives.append(await _tracker_life(folder, 5, 40 * 500))
    damaged, kept = lives
    assert damaged.engine_start == "continued"
    assert isinstance(damaged.scorer, CascadeEngine)
    assert isinstance(kept.scorer, CascadeEngine)
    assert damaged.scorer.export_state() == kept.scorer.export_state()


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
    for told in snapshots:
        tracker.on_snapshot(told)
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


async def test_a_continued_engine_forgets_a_warms_stored_total_at_the_first_livesnapshot(
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


async def test_a_tick_that_ended_a_cascade_after_the_checkpoint_is_replayed(
    tmp_path: Path,
) -> None:
    # A cascade followed at the checkpoint, then exhausted by a tick on the wall clock (years
    # after T0 here), then a crash: the stored events after the checkpoint (none) replayed
    # alone left the restarted engine following it, and the handover closed it a second time.
    store = SQLiteStore(tmp_path / "db.sqlite")
    saved = EngineState(store.path)
    engine = CascadeEngine()
    tracker = Pipeline(store, LocalBus(), scorer=engine, engine_state=saved)
    await tracker.start(tick_interval=3600.0)
    for i in range(120):  # a falling market liquidating longs faster and faster
        size = 20_000.0 * (1 + i // 20)
        tracker.submit(venue_event(size_usd=size, price=60_000.0 - 5 * i, ts=T0 + 400 * i))
    await tracker.drain()
    assert engine.active(), "the burst started a cascade"
    saved.write(engine.export_state(), await store.last_seq())
    checkpoint = saved.path.read_bytes()
    async with tracker._serial:  # the tick loop's next tick, now
        plan = tracker.core.tick_plan(now_ms())
        assert plan is not None
        await tracker._perform(plan)
    assert not engine.active()
    await tracker.stop()
    await store.close()
    saved.path.write_bytes(checkpoint)  # the clean stop's state never written: a crash
    saved.previous.unlink()

    store = SQLiteStore(tmp_path / "db.sqlite")
    restarted = CascadeEngine()
    again = Pipeline(store, LocalBus(), scorer=restarted, engine_state=EngineState(store.path))
    await again.start(tick_interval=3600.0)
    assert again.engine_start == "continued"
    assert restarted.export_state() == engine.export_state()
    told = [alert.status for alert in await store.cascades_since(0, limit=10_000)]
    assert told.count("exhausted") == 1, told
    await again.stop()
    await store.close()


@pytest.mark.parametrize("wall_gap_s", [None, 0.0])
async def test_checkpoints_are_spaced_on_the_wall_clock_too(
    tmp_path: Path, wall_gap_s: float | None
) -> None:
    # The due rule counts the tracker's clock, which a simulator at --speed 60 moves a minute
    # a wall second: every tick wrote a whole checkpoint with two fsyncs (666 kB at 275
    # markets: ~58 GB a day). With no wall-clock gap (0) the same run writes one a tick.
    store = SQLiteStore(tmp_path / "db.sqlite")
    tracker = Pipeline(
        store, LocalBus(), scorer=CascadeEngine(), engine_state=EngineState(store.path)
    )
    if wall_gap_s is not None:
        tracker.checkpoint_wall_s = wall_gap_s
    await tracker.start(tick_interval=0.05)
    began, start = time.monotonic(), now_ms()
    minute = 0
    while time.monotonic() - began < 1.5:
        minute += 1  # two simulated minutes each 50 ms of wall time
        tracker.submit(venue_event(size_usd=20_000.0, ts=start + minute * 120_000))
        await tracker.drain()
        await asyncio.sleep(0.05)
    await tracker.stop()
    await store.close()
    if wall_gap_s is None:
        assert tracker.checkpoints <= 1, tracker.checkpoints
    else:
        assert tracker.checkpoints >= 3, tracker.checkpoints


async def test_a_state_of_another_store_copied_over_the_file_is_not_continued(
    tmp_path: Path,
) -> None:
    # Another store copied into the file (`cp other/db.sqlite* .`, a backup restored in
    # place) is another history in the same file, its inode and generation kept: the seq mark
    # takes it for the same store. The engine state checked
    # the file's identity and the seqs alone, and a start continued the replaced history's
    # engine with the other store's events after its seq replayed on top.
    other = tmp_path / "other"
    other.mkdir()
    await _tracker_life(other, 60, 10**9)  # another history, further along than the state
    await _tracker_life(tmp_path, 40, 0)
    store_file = tmp_path / "db.sqlite"
    replaced = file_identity(store_file)
    # SQLite's backup into the file (what `cp` over it with the -wal does, consistently).
    with (
        contextlib.closing(sqlite3.connect(other / "db.sqlite")) as source,
        contextlib.closing(sqlite3.connect(store_file)) as target,
    ):
        source.backup(target)
    assert file_identity(store_file) == replaced
    after = await _tracker_life(tmp_path, 0, 0)
    assert after.engine_start == "warmed"
    kept = await _tracker_life(other, 0, 0)  # the other store's own engine, continued
    assert kept.engine_start == "continued"
    assert isinstance(after.scorer, CascadeEngine)
    assert isinstance(kept.scorer, CascadeEngine)
    assert after.scorer.export_state()["markets"] == kept.scorer.export_state()["markets"]


@pytest.mark.parametrize("url", ["plain", "sqlite:"])
async def test_a_sqlite_store_given_by_url_continues_the_engine_too(
    tmp_path: Path, url: str
) -> None:
    # `serve --store FILE` (a SQLite file outside the data folder) opens through the roles'
    # path: its seq mark was kept beside the file, its engine state never was, and every
    # restart warmed the engine (the causes measured in docs/cascade.md).
    store_file = tmp_path / "elsewhere.sqlite"
    given = str(store_file) if url == "plain" else f"sqlite://{store_file}"
    config = make_config(tmp_path / "data", store_url=given)
    (tmp_path / "data").mkdir()
    async with running_server(config) as running:
        tracker = running.server.tracker
        for i in range(40):
            tracker.submit(venue_event(size_usd=20_000.0, price=60_000.0 - i, ts=T0 + 500 * i))
        await tracker.drain()
    assert (tmp_path / "elsewhere.sqlite.engine").exists(), "the stop wrote the engine's state"
    async with running_server(config) as again:
        assert again.server.tracker.engine_start == "continued"


async def test_a_state_that_cannot_be_read_is_passed_over(tmp_path: Path) -> None:
    # The start read the state files with only a missing one foreseen: any other error (a
    # folder in the newest's place, a disk's EIO) failed the server's startup.
    await _tracker_life(tmp_path, 40, 0)
    await _tracker_life(tmp_path, 0, 0)  # the state at 40 twice: the newest and the previous
    state = tmp_path / "db.sqlite.engine"
    state.unlink()
    state.mkdir()
    after = await _tracker_life(tmp_path, 0, 0)
    assert after.engine_start == "continued"  # from the previous


async def _journaled(folder: Path) -> tuple[SQLiteStore, EngineState, CascadeEngine, Pipeline]:
    """A started tracker over the SQLite store in ``folder``: its engine fed by a heatmap and
    kept (state and journal) beside the store."""
    store = SQLiteStore(folder / "db.sqlite")
    saved = EngineState(store.path)
    engine = CascadeEngine()
    tracker = Pipeline(
        store, LocalBus(), scorer=engine, heatmap=HeatmapFeed(fuel=engine), engine_state=saved
    )
    await tracker.start(tick_interval=3600.0)
    return store, saved, engine, tracker


async def test_what_the_engine_was_told_after_a_checkpoint_is_replayed_after_a_crash(
    tmp_path: Path,
) -> None:
    # After a crash the engine continued its checkpoint and replayed the events stored after
    # it, but not what else it had been told since: the fuel and the open interest of each
    # snapshot (the heatmap's, no store row holds them) and a tick that ended no cascade
    # (it moved the followed side's buckets). The continued engine scored on without them.
    store, saved, engine, tracker = await _journaled(tmp_path)
    await checkpointed(tracker)
    checkpoint = saved.path.read_bytes()
    await life_after_checkpoint(tracker, engine)
    await tracker.stop()
    await store.close()
    saved.path.write_bytes(checkpoint)  # the clean stop's state never written: a crash
    saved.previous.unlink()

    store, _, restarted, again = await _journaled(tmp_path)
    assert again.engine_start == "continued"
    assert restarted.export_state() == engine.export_state()
    await again.stop()
    await store.close()


async def test_a_checkpoint_is_taken_when_only_snapshots_came(tmp_path: Path) -> None:
    # No liquidation stored since the last checkpoint (the feeds down, the pollers not): no
    # checkpoint was due, and the journal grew for as long (~200 snapshots a second at 275
    # markets), every record of it to be replayed at the next start.
    store, _, _engine, tracker = await _journaled(tmp_path)
    tracker.checkpoint_wall_s = 0.0
    tracker.submit(venue_event(ts=T0 - 1_000))  # the last liquidation for a while
    await tracker.drain()
    for minute in range(3):
        tracker.on_snapshot(snapshot(T0 + minute * 60_000, 60_000.0 + minute, 1e9))
        tracker.advance_clock(T0 + minute * 60_000)
        await tracker._tick(T0 + minute * 60_000)
        if tracker._checkpointing is not None:
            await tracker._checkpointing
    await tracker.stop()
    await store.close()
    # One a minute of the clock: the first for the event, the others for the snapshots.
    assert tracker.checkpoints == 3, tracker.checkpoints


async def test_an_idle_engine_journals_no_ticks(tmp_path: Path) -> None:
    # A tick of an engine that follows no cascade changes nothing, but each was journaled
    # (a frame a second) and, with nothing stored or snapshotted, no checkpoint came to begin
    # the journal anew: a tracker with no source (serve --source none), or whose feeds and
    # pollers were down, grew its journal by ~1.5 MB a day for as long (PostgreSQL: a row
    # and a transaction a second), every tick decoded and replayed at the next start.
    store, saved, engine, tracker = await _journaled(tmp_path)
    await checkpointed(tracker)
    assert not engine.active()
    written = saved.journal.bytes
    for second in range(1, 301):  # five minutes of a quiet engine
        tracker.advance_clock(T0 + 81_000 + 1_000 * second)
        await tracker._tick(T0 + 81_000 + 1_000 * second)
    assert tracker._checkpointing is None or tracker._checkpointing.done()
    assert saved.journal.bytes == written, saved.journal.bytes - written
    # A tick of an engine that follows a cascade moves its buckets: still journaled.
    await life_after_checkpoint(tracker, engine)
    assert engine.active()
    before = saved.journal.bytes
    await tracker._tick(T0 + 400_000)
    assert saved.journal.bytes > before
    await tracker.stop()
    await store.close()


async def test_a_journal_that_cannot_be_read_is_passed_over(tmp_path: Path) -> None:
    # The start read the journal with only a missing file foreseen, as it read the state
    # files before: a folder in its place or a disk's EIO failed the server's startup. The
    # checkpoint is continued without it, as one with no marker in the journal (the ticks
    # the stored alerts show replayed).
    store, saved, engine, tracker = await _journaled(tmp_path)
    await checkpointed(tracker)
    checkpoint = saved.path.read_bytes()
    await life_after_checkpoint(tracker, engine)
    await tracker.stop()
    await store.close()
    saved.path.write_bytes(checkpoint)  # a crash: the clean stop's state never written
    saved.previous.unlink()
    saved.journal.path.unlink()
    saved.journal.path.mkdir()

    store, _, _restarted, again = await _journaled(tmp_path)
    assert again.engine_start == "continued"
    await again.stop()
    await store.close()


async def test_a_journal_not_begun_is_begun_again_when_only_snapshots_come(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A checkpoint whose journal could not begin (too many open files) leaves the journal
    # off "until the next checkpoint"; with no liquidation stored after it (the feeds down,
    # the pollers not) the next checkpoint waited for journaled snapshots, which a journal
    # that is off never counts: none came, and every snapshot the engine was told from then
    # on was in neither a state nor a journal (lost to a crash, however long it ran).
    store, saved, _engine, tracker = await _journaled(tmp_path)
    await checkpointed(tracker)
    checkpoints = tracker.checkpoints
    tracker.checkpoint_wall_s = 0.0
    tracker.submit(venue_event(size_usd=20_000.0, price=59_000.0, ts=T0 + 2 * MINUTE))
    await tracker.drain()

    opener = os.open

    def no_descriptor(path: Path, *args: Any, **kwargs: Any) -> int:
        if path == saved.journal.path:
            raise OSError(24, "Too many open files")
        return opener(path, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(os, "open", no_descriptor)
        tracker.advance_clock(T0 + 3 * MINUTE)
        await tracker._tick(T0 + 3 * MINUTE)  # a checkpoint, its journal not begun
        assert tracker._checkpointing is not None
        await tracker._checkpointing
    assert tracker.checkpoints == checkpoints + 1
    assert not saved.journal.recording
    for minute in range(4, 7):  # only snapshots from here on
        tracker.on_snapshot(snapshot(T0 + minute * MINUTE, 59_000.0 - minute, 0.8e9))
        tracker.advance_clock(T0 + minute * MINUTE)
        await tracker._tick(T0 + minute * MINUTE)
        if tracker._checkpointing is not None:
            await tracker._checkpointing
    assert tracker.checkpoints > checkpoints + 1
    assert saved.journal.recording
    await tracker.stop()
    await store.close()
