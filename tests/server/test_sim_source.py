"""The built-in simulator as the server runs it (``run_sim``), through a real Pipeline."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from purpleflea import sim
from purpleflea.bus.local import LocalBus
from purpleflea.engine import CascadeEngine
from purpleflea.engine.heatmap_feed import HeatmapFeed
from purpleflea.model import Liquidation
from purpleflea.server.pipeline import Pipeline
from purpleflea.server.sources import SIM_STATE_FILE, run_sim
from purpleflea.sim import resume, statelog
from purpleflea.store.sqlite import SQLiteStore


@asynccontextmanager
async def _tracker(path: Path, heatmap: HeatmapFeed | None = None) -> AsyncIterator[Pipeline]:
    store = SQLiteStore(path)
    tracker = Pipeline(store, LocalBus(), scorer=CascadeEngine(), heatmap=heatmap)
    await tracker.start()
    try:
        yield tracker
    finally:
        await tracker.stop()
        await store.close()


async def _stored(store_path: Path) -> list[Liquidation]:
    store = SQLiteStore(store_path)
    try:
        return list(await store.since(0, limit=1_000_000))
    finally:
        await store.close()


async def _wait_for(tracker: Pipeline, events: int, timeout_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while tracker.last_seq < events:
        assert loop.time() < deadline, f"only {tracker.last_seq} events in {timeout_s} s"
        await asyncio.sleep(0.2)


@asynccontextmanager
async def _simulating(
    tracker: Pipeline, state_path: Path, *, speed: float = 20.0
) -> AsyncIterator[asyncio.Task[None]]:
    """The served simulator (seed 3, 20 markets) feeding ``tracker`` and saving its state to
    ``state_path`` for the block's duration; stopped (cancelled) at its end."""
    task = asyncio.create_task(
        run_sim(tracker, seed=3, markets=20, speed=speed, state_path=state_path)
    )
    try:
        yield task
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def _recorded_marks(monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    """Every market's mark at each step the paced simulation delivers, from now on."""
    marks: list[np.ndarray] = []
    original = sim.paced

    async def recording(simulator: sim.Simulator, **options: Any) -> AsyncIterator[sim.SimStep]:
        async for step in original(simulator, **options):
            marks.append(simulator.marks().copy())
            yield step

    monkeypatch.setattr(sim, "paced", recording)
    return marks


@pytest.mark.timing
async def test_a_live_simulated_event_is_stamped_with_its_moment_on_the_wall_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Building the 275-market simulator (its warm-up) takes about a second or more: the
    # stream must still be paced from the start time it was given, not from when it was ready.
    # The pacing is the same whatever the market; the demo's busy one gives events at once.
    # Half an hour of warm-up, not two hours (9 s): the build still takes about 3 s, so a
    # stream paced from before it lags by about that, against a bound of 250 ms. Not ten
    # minutes: that market, still settling, lagged a median of up to 223 ms (single events up
    # to 954 ms) on a loaded machine, once over the bound; half an hour's median 110-139 ms,
    # two hours' 161-165 ms (load ~1).
    def busy(**overrides: int | float) -> sim.SimConfig:
        return sim.SimConfig.demo(**{"block_ms": 2_500, "warmup_ms": 1_800_000, **overrides})

    monkeypatch.setattr(sim.SimConfig, "served", busy)
    db = tmp_path / "db.sqlite"
    async with _tracker(db) as tracker:
        task = asyncio.create_task(run_sim(tracker, seed=0, markets=275, speed=1.0))
        try:
            await _wait_for(tracker, 40, timeout_s=180.0)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await tracker.drain()
    events = await _stored(db)
    lags = [e.received_at - e.ts for e in events]
    assert statistics.median(lags) <= 250, sorted(lags)
    assert min(lags) >= 0  # never received before it happened


async def test_the_heatmap_has_every_market_before_the_first_block_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Killed and restarted, the server answered 404 "no open-interest snapshot" for BTC-PERP's
    # heatmap for ~20 s: the model starts empty and the first snapshot came one interval (10 s)
    # after the simulator's start. The resumed market's own state gives it at once.
    async def nothing_yet(simulator: sim.Simulator, **options: Any) -> AsyncIterator[sim.SimStep]:
        await asyncio.Event().wait()  # no block delivered: only the start counts
        yield  # pragma: no cover

    monkeypatch.setattr(sim, "paced", nothing_yet)
    heatmaps = HeatmapFeed()
    async with _tracker(tmp_path / "db.sqlite", heatmap=heatmaps) as tracker:
        task = asyncio.create_task(run_sim(tracker, seed=0, markets=5, speed=1.0))
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30.0  # the build takes well under a second
            while len(heatmaps.model.markets()) < 5 and loop.time() < deadline:
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert len(heatmaps.model.markets()) == 5, heatmaps.model.markets()
    assert "BTC-PERP" in heatmaps.model.markets()
    assert heatmaps.model.heatmap("BTC-PERP")


async def _run_until(
    tracker: Pipeline, events: int, marks: list[np.ndarray], state_path: Path
) -> None:
    """Run the served simulator (20x real time, 40 of its markets) until the store holds
    ``events`` events."""
    task = asyncio.create_task(
        run_sim(tracker, seed=0, markets=40, speed=20.0, state_path=state_path)
    )
    try:
        await _wait_for(tracker, events, timeout_s=180.0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await tracker.drain()
    assert marks, "no step was delivered"


async def test_a_restarted_simulator_continues_its_market_with_a_new_random_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The served market's full two-hour warm-up, of 40 markets (0.5 s of CPU at load 9; it
    # was 3 s in 2.5 s blocks): a market that restarted afresh instead of resuming moved up to
    # 5.7% from where it stopped (9.6% of 275), against the 1% bound below and 0.3% when
    # resumed. Ten minutes of warm-up would not do: a fresh 275-market one moved only 1.8%.
    # Record every market's mark at each delivered step, around the real pacing.
    marks = _recorded_marks(monkeypatch)
    db, state = tmp_path / "db.sqlite", tmp_path / SIM_STATE_FILE
    async with _tracker(db) as tracker:
        await _run_until(tracker, 60, marks, state)
    first_events = await _stored(db)
    last_before = marks[-1]
    assert state.exists()
    marks.clear()
    async with _tracker(db) as tracker:
        await _run_until(tracker, len(first_events) + 60, marks, state)
    everything = await _stored(db)
    first_after = marks[0]

    # Prices (and with them the positions and open interest) continue where they stopped.
    moved = np.abs(first_after / last_before - 1.0)
    assert moved.max() <= 0.01, f"{int(moved.argmax())}: {moved.max():.2%}"
    # The random stream is new: the second run repeats no event of the first.
    second = everything[len(first_events) :]
    assert len(second) >= 60
    assert len({e.id for e in everything}) == len(everything)

    def episode(events: list[Liquidation]) -> set[tuple[str, str, str, float]]:
        return {(e.market, e.side, e.exchange, e.size_usd) for e in events}

    assert not episode(first_events) & episode(second)


@pytest.mark.usefixtures("quick_warmup")
async def test_the_first_state_is_saved_soon_after_the_start(tmp_path: Path) -> None:
    """A simulator killed in its first five minutes (the regular saves' interval) left no
    state, and its restart began a new market beside the stored events of the old one. Its
    first block's state is saved (it was 30 s in, which a kill could still beat)."""
    state = tmp_path / SIM_STATE_FILE
    async with (
        _tracker(tmp_path / "store.sqlite") as tracker,
        _simulating(tracker, state) as task,
    ):
        await _wait_for(tracker, 50, timeout_s=60)
        assert state.exists()  # saved while running, not only when stopped
        assert not task.done()


@pytest.mark.usefixtures("quick_warmup")
async def test_the_saves_after_the_first_append_what_changed_beside_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each save wrote the whole state again (16 MB for 275 markets: 5 GB in the demo's first
    hour): the first writes it, the later ones append what changed to the log beside it, and
    the two load back as the market where it stopped."""
    monkeypatch.setattr("purpleflea.server.sources.SIM_SAVE_EVERY_S", 0.0)  # every block
    state = tmp_path / SIM_STATE_FILE
    marks = _recorded_marks(monkeypatch)
    async with (
        _tracker(tmp_path / "store.sqlite") as tracker,
        _simulating(tracker, state),
    ):
        await _wait_for(tracker, 50, timeout_s=60)
        await asyncio.sleep(2.0)  # a few more blocks (2.5 s each at 20x: 8 a second)
    full = state.stat().st_size
    log = resume.log_path(state).read_bytes()
    records = list(statelog.records(log, str(_token(state))))
    assert len(records) >= 3, len(records)
    assert max(len(r) for r in records) < 0.05 * full  # the whole state is written once
    loaded = resume.load(state)
    assert loaded is not None
    # The state saved at the stop is the last delivered step's market (its block's end).
    assert np.allclose(loaded.marks, marks[-1], rtol=0.02)


def _token(state: Path) -> object:
    with np.load(state) as data:
        return json.loads(str(data["header"]))["log"]


@pytest.mark.usefixtures("quick_warmup")
async def test_a_state_file_that_cannot_be_written_never_stops_the_market(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A full disk (here: the state's folder is a file) costs the restart state, not the feed:
    one warning, and events keep coming."""
    monkeypatch.setattr("purpleflea.server.sources.SIM_SAVE_EVERY_S", 0.0)  # every block
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    async with (
        _tracker(tmp_path / "store.sqlite") as tracker,
        _simulating(tracker, blocked / SIM_STATE_FILE) as task,
    ):
        await _wait_for(tracker, 50, timeout_s=60)
        first = tracker.last_seq
        await _wait_for(tracker, first + 50, timeout_s=60)
        assert not task.done()
    warnings = [r for r in caplog.records if "cannot save its state" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]


@pytest.mark.usefixtures("quick_warmup")
async def test_a_failed_save_is_tried_again_soon_not_after_the_next_move(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A save that failed (a full disk for a moment) still moved the marks and time the next
    save waits from: nothing was written until another 0.5 % move or 5 minutes later, and a
    kill meanwhile resumed prices further off than the saving rule promises."""
    monkeypatch.setattr("purpleflea.server.sources.SIM_SAVE_MOVE", 1.0)  # no move is enough
    folder = tmp_path / "state"
    folder.write_text("")  # the first save fails: its folder is a file
    state = folder / SIM_STATE_FILE
    async with (
        _tracker(tmp_path / "store.sqlite") as tracker,
        _simulating(tracker, state) as task,
    ):
        await _wait_for(tracker, 50, timeout_s=60)
        assert not state.exists()
        folder.unlink()
        folder.mkdir()  # the disk has room again
        deadline = time.monotonic() + 30.0
        while not state.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert state.exists(), "no save after the failed one"
        assert not task.done()


@pytest.mark.usefixtures("quick_warmup")
async def test_a_disk_full_for_long_is_tried_at_most_once_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed save is tried again after SIM_SAVE_MIN_S, not at every block of a high
    --speed. Once a state had been written, SIM_SAVE_EVERY_S after it the periodic rule came
    first and said "due" at every block while the disk stayed full (the failures do not move
    the time it is measured from): a save attempt per block."""
    monkeypatch.setattr("purpleflea.server.sources.SIM_SAVE_EVERY_S", 0.2)
    written = resume.StateSaver.save
    attempts: list[float] = []

    def full_disk_after_the_first(self: resume.StateSaver, state: resume.SimState) -> None:
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            written(self, state)
            return
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(resume.StateSaver, "save", full_disk_after_the_first)
    async with (
        _tracker(tmp_path / "store.sqlite") as tracker,
        _simulating(tracker, tmp_path / SIM_STATE_FILE, speed=60.0) as task,
    ):
        await _wait_for(tracker, 50, timeout_s=60)
        assert attempts, "the first state was saved"
        began = time.monotonic()
        await asyncio.sleep(3.0)
        ended = time.monotonic()
        assert not task.done()
    tried = [t for t in attempts if began <= t <= ended]
    assert len(tried) <= (ended - began) / 1.0 + 1, f"{len(tried)} attempts in 3 s"
    gaps = [b - a for a, b in itertools.pairwise(tried)]
    assert min(gaps, default=1.0) >= 1.0 - 0.05, gaps


class _Saved:
    """What run_sim reads of a saved market: its seed and its number of markets."""

    seed, n_markets, epoch = 0, 20, 3


class _Stop(Exception):
    pass


async def test_a_restart_with_another_market_count_says_new_market_not_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`serve --markets 30` on a folder whose saved market has 20 logged "the saved market is
    seed 0 with 20 markets; starting a new one" and then "epoch 45 (resumed)"."""
    from purpleflea.server import sources
    from purpleflea.sim import resume, throttle

    class Started:
        config = type("Config", (), {"epoch": 45, "start_ms": 0})()

        def snapshots(self, ts: int) -> tuple[()]:
            return ()  # the market at its start, published before the first block

    def stop_here(*_: Any, **__: Any) -> Any:
        raise _Stop  # the market itself is not what this test is about

    monkeypatch.setattr(resume, "load", lambda _path: _Saved())
    monkeypatch.setattr(sources, "live_simulator", lambda *_, **__: Started())
    monkeypatch.setattr(throttle, "snapshot_throttle", stop_here)
    caplog.set_level(logging.INFO, logger="purpleflea.source")
    store = SQLiteStore(tmp_path / "db.sqlite")
    tracker = Pipeline(store, LocalBus())
    for markets, said in ((30, "(new market)"), (20, "(resumed)")):
        caplog.clear()
        with pytest.raises(_Stop):
            await run_sim(tracker, seed=0, markets=markets, speed=1.0, state_path=tmp_path / "s")
        (line,) = [r.getMessage() for r in caplog.records if "x real time" in r.getMessage()]
        assert said in line, line
    await store.close()
