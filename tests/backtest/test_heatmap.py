"""Backtests can run the heatmap as the live server does: fuel in the score, a model to query."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import pytest

from purpleflea.backtest import Broker, run_backtest
from purpleflea.engine.heatmap import HeatmapModel
from purpleflea.model import CascadeAlert, Liquidation
from purpleflea.store.base import OpenInterest
from purpleflea.store.sqlite import SQLiteStore
from tests.backtest.test_backtest import Recorder, history
from tests.backtest.test_open_interest import direct_scores, store_replay


def _rows(events: list[Liquidation]) -> list[OpenInterest]:
    """ETH's total and mark every 3 minutes from before the first event to after the last:
    open interest builds up, and the mark follows the events' prices."""
    first, rows = events[0].ts, []
    for m in range(52):
        ts = first - 30_000 + m * 180_000
        before = [e for e in events if e.ts <= ts]
        mark = before[-1].price if before else 2000.0
        rows.append(
            OpenInterest(ts=ts, market="ETH-PERP", open_interest_usd=1e9 + m * 1e8, mark_price=mark)
        )
    return rows


async def test_a_heatmap_backtest_scores_as_the_live_feed_would(tmp_path: Path) -> None:
    events, rows = history(), _rows(history())
    replay = await store_replay(tmp_path, events, rows, heatmap=True)
    assert isinstance(replay.strategy, Recorder)
    live = direct_scores(events, rows, heatmap=True)
    assert replay.strategy.scores == live
    assert replay.rows_without_mark == 0
    # The fuel mattered: the same rows as open interest alone score otherwise.
    plain = Recorder()
    run_backtest(events, plain, open_interest=rows)
    assert plain.scores != live
    # The in-memory entry point agrees.
    with_heatmap = Recorder()
    run_backtest(events, with_heatmap, open_interest=rows, heatmap=True)
    assert with_heatmap.scores == live


class HeatmapWatcher(Recorder):
    """A user strategy that reads the heatmap at every event."""

    def __init__(self) -> None:
        super().__init__()
        self.model: HeatmapModel | None = None
        # Event ts, the heatmap's ts, longs at risk between 1800 and 2000.
        self.seen: list[tuple[int, int | None, float]] = []

    def use_heatmaps(self, model: HeatmapModel) -> None:
        self.model = model

    def on_event(self, event: Liquidation, score: int, broker: Broker) -> None:
        super().on_event(event, score, broker)
        assert self.model is not None
        if event.market not in self.model.markets():
            self.seen.append((event.ts, None, 0.0))
            return
        heat = self.model.heatmap(event.market)
        self.seen.append((event.ts, heat.ts, self.model.fuel(event.market, "long", 2000, 10)))

    def on_cascade(self, alert: CascadeAlert, broker: Broker) -> None:
        super().on_cascade(alert, broker)


def test_a_strategy_that_uses_heatmaps_gets_the_model_as_of_each_event() -> None:
    events, rows = history(), _rows(history())
    watcher = HeatmapWatcher()
    report = run_backtest(events, watcher, open_interest=rows)  # on by itself for it
    assert report.metrics.events == len(events)
    row_ts = [row.ts for row in rows]
    for ts, heat_ts, _ in watcher.seen:
        # The newest row at or before the event, never a later one.
        applied = [t for t in row_ts if t <= ts]
        assert heat_ts == (applied[-1] if applied else None)
    # The cascade (2000 -> 1800) swept the longs whose liquidation prices it crossed.
    before = next(usd for ts, _, usd in watcher.seen if ts >= events[239].ts)
    after = next(usd for ts, _, usd in watcher.seen if ts >= events[300].ts)
    assert before > 1e8
    assert after < 0.01 * before


async def test_the_command_runs_the_heatmap_and_says_what_it_could_not_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from purpleflea.commands import backtest as command

    events, rows = history(), _rows(history())
    old = [
        OpenInterest(ts=r.ts, market=r.market, open_interest_usd=r.open_interest_usd) for r in rows
    ]
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    for name, stored, heatmap in (("marks", rows, True), ("old", old, True), ("off", rows, False)):
        db = tmp_path / f"{name}.sqlite"
        store = SQLiteStore(db)
        store.append_now(events)
        await store.append_open_interest(stored)
        await store.close()
        out = tmp_path / name
        argv = ["backtest", "--store", str(db), "--out", str(out)]
        args = parser.parse_args(argv + (["--heatmap"] if heatmap else []))
        assert await asyncio.to_thread(args.run, args) == 0
        data = json.loads((out / "report.json").read_text())
        assert data["params"]["heatmap"] is heatmap
        assert data["params"]["open_interest_rows"] == len(rows)
        assert "holds no open interest" not in capsys.readouterr().err
        assert data["metrics"]["events"] == len(events)


class TickWatcher(Recorder):
    """Reads the heatmap's time at every second of stream time."""

    def __init__(self) -> None:
        super().__init__()
        self.model: HeatmapModel | None = None
        self.seen: list[tuple[int, int]] = []

    def use_heatmaps(self, model: HeatmapModel) -> None:
        self.model = model

    def on_tick(self, now_ms: int, broker: Broker) -> None:
        assert self.model is not None
        if "ETH-PERP" in self.model.markets():
            self.seen.append((now_ms, self.model.heatmap("ETH-PERP").ts))


def test_a_tick_sees_no_snapshot_stored_after_it() -> None:
    # The events come every 30 s and the rows every 3 minutes, between them: the ticks of the
    # seconds before a row's time ran after the row was applied (it was due before the next
    # event), so a strategy's on_tick saw a snapshot from up to 30 s in its future.
    events, rows = history(), _rows(history())
    watcher = TickWatcher()
    run_backtest(events, watcher, open_interest=rows)
    assert len(watcher.seen) > 5_000
    row_ts = [row.ts for row in rows]
    for now, heat_ts in watcher.seen:
        assert heat_ts == max(t for t in row_ts if t <= now), now
