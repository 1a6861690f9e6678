"""The warm-up: two unseen hours that settle the book before the stream starts, computed in
the calibrated market's one-minute blocks whatever blocks the stream itself is served in."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from purpleflea.sim import SimConfig, Simulator
from purpleflea.sim import process as sim_process
from purpleflea.sim.process import WARM_UP_BLOCK_MS


def _count_blocks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The block lengths (ms) the simulator computes from now on, one entry per block."""
    lengths: list[int] = []
    compute = Simulator.next_block

    def counted(self: Simulator) -> object:
        lengths.append(self.config.block_ms)
        return compute(self)

    monkeypatch.setattr(Simulator, "next_block", counted)
    return lengths


def test_the_served_markets_warm_up_runs_in_one_minute_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `serve --source sim` waited for 2,880 warm-up blocks of 2.5 s (~6 of its 7 s of CPU
    # before the first liquidation): each block's cost is mostly passes over every position
    # slot, whatever its length. Unseen, the warm-up needs the book settled, not the
    # served stream's 2.5 s restart granularity.
    blocks = _count_blocks(monkeypatch)
    config = SimConfig.served(seed=0, n_markets=5)
    sim = Simulator(config)
    assert blocks == [WARM_UP_BLOCK_MS] * (config.warmup_ms // WARM_UP_BLOCK_MS)
    assert sim.config == config
    assert sim.now_ms == config.start_ms
    blocks.clear()
    steps = list(sim.run(5_000))  # then the stream is served in its own blocks and steps
    assert blocks == [config.block_ms, config.block_ms]
    assert [step.ts for step in steps] == [config.start_ms + 250 * (k + 1) for k in range(20)]


def test_a_market_computed_in_one_minute_blocks_warms_up_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blocks = _count_blocks(monkeypatch)
    config = SimConfig(seed=0, n_markets=5)
    Simulator(config)
    assert blocks == [60_000] * (config.warmup_ms // 60_000)


def test_a_warm_up_that_is_not_whole_minutes_runs_in_the_served_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blocks = _count_blocks(monkeypatch)
    config = SimConfig.served(seed=0, n_markets=5, warmup_ms=7_500)
    Simulator(config)
    assert blocks == [2_500, 2_500, 2_500]


def test_the_warm_up_reports_its_progress_and_the_served_stream_is_settled() -> None:
    seen: list[tuple[int, int]] = []
    config = SimConfig.served(seed=2, n_markets=5, warmup_ms=600_000)
    sim = Simulator(config, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(k, 10) for k in range(11)]
    # Carried on from the warm-up, not reset: the volatility regime (the first block's new
    # entries read it before the block steps it) and the book.
    assert not np.all(sim._vol_regime == 1.0)
    assert (sim.book.qty > 0).sum() > 0


def test_the_book_is_sized_once_per_universe(monkeypatch: pytest.MonkeyPatch) -> None:
    # Solving each market's cohort scale took 0.5 s of CPU, twice at each start (the warm-up's
    # simulator, then the one moved to start when it is ready).
    calls: list[int] = []
    solve = sim_process.cohort_scale

    def counted(*args: np.ndarray) -> np.ndarray:
        calls.append(1)
        return solve(*args)

    monkeypatch.setattr(sim_process, "cohort_scale", counted)
    sim_process.sizing.cache_clear()
    config = SimConfig.served(seed=0, n_markets=7, warmup_ms=60_000)
    sim = Simulator(config)
    moved = dataclasses.replace(config, start_ms=config.start_ms + 1_000)
    Simulator.from_state(moved, sim.capture_state())
    Simulator(dataclasses.replace(config, seed=1))
    assert len(calls) == 1
