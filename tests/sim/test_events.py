"""How liquidated cohorts become events: the ladder that finds them, stragglers, caps."""

from __future__ import annotations

import numpy as np

from purpleflea.sim import SimConfig, Simulator
from purpleflea.sim.book import Ladder
from purpleflea.sim.events import MAX_SPREAD_MS, _when_moved, max_events


def test_the_ladder_takes_exactly_the_cohorts_a_moving_mark_reaches() -> None:
    rng = np.random.default_rng(3)
    # 600 slots, of which ~500 hold an open cohort of the ladder's side.
    open_ = rng.random(600) < 0.83
    key = rng.normal(0.0, 1.0, 600)
    slots = np.flatnonzero(open_)
    # Only keys <= -1 are sorted up front; the marks below go well past that.
    ladder = Ladder(open_, key, reach=-1.0)
    taken: set[int] = set()
    for mark in (-2.5, -1.7, -1.2, -0.3, 0.8, 2.0, 5.0):
        assert ladder.trigger() == (
            float(key[slots][~np.isin(slots, list(taken))].min())
            if len(taken) < slots.size
            else np.inf
        )
        got = ladder.take(mark)
        assert list(got) == sorted(got)  # in slot order
        expected = {int(s) for s in slots[key[slots] <= mark]} - taken
        assert set(got.tolist()) == expected
        taken |= expected
    assert len(taken) == slots.size
    assert ladder.trigger() == np.inf


def test_a_straggler_fills_when_the_mark_has_moved_further_its_way() -> None:
    # Two markets, 10 steps: market 0 falls 1% at step 5, market 1 rises 1% at step 3.
    marks = np.ones((10, 2))
    marks[5:, 0] = 0.99
    marks[3:, 1] = 1.01
    moved = _when_moved(
        marks,
        step=np.array([2, 2, 2, 8]),
        market=np.array([0, 0, 1, 0]),
        side=np.array([1, -1, -1, 1]),
        move=np.array([0.005, 0.005, 0.005, 0.005]),
        window=30,
    )
    # A long on market 0 fills 3 steps on; a short there never does (the mark fell); a short
    # on market 1 fills a step on; one liquidated at step 8 sees no further fall in the block.
    assert moved.tolist() == [3, -1, 1, -1]


def test_a_cohorts_events_are_capped_and_come_within_the_spread() -> None:
    sim = Simulator(SimConfig.demo(seed=1, n_markets=20))
    caps = max_events(np.array([spec.oi_usd for spec in sim.markets]))
    assert caps[0] > caps[-1] >= 16  # deeper markets split a cohort into more events
    ts, cohort, market = [], [], []
    for _ in range(30):
        raw = sim.next_block()
        ts.append(raw.ts)
        cohort.append(raw.cohort)
        market.append(raw.market)
    t, c, m = (np.concatenate(x) for x in (ts, cohort, market))
    ids, first, counts = np.unique(c, return_index=True, return_counts=True)
    assert ids.size > 50
    assert (counts <= caps[m[first]]).all()
    spans = np.array([t[c == i].max() - t[c == i].min() for i in ids])
    assert spans.max() <= MAX_SPREAD_MS + sim.config.step_ms
    assert (spans > 5_000).any()  # stragglers come seconds later, not all at once


def test_stragglers_sharing_a_step_and_market_find_their_moments_as_alone() -> None:
    # _when_moved takes each (step, market)'s path once for all the positions that share
    # it; every position must get what its own path alone gives.
    rng = np.random.default_rng(5)
    marks = np.exp(np.cumsum(rng.normal(0.0, 0.002, (300, 6)), axis=0))
    count = 400
    step = rng.integers(0, 300, count) // 25 * 25  # few distinct steps: many share a path
    market = rng.integers(0, 6, count)
    side = rng.choice([-1, 1], count)
    move = rng.exponential(0.004, count)
    moved = _when_moved(marks, step, market, side, move, 30)
    assert (moved >= 0).sum() > 50  # many positions do fill
    logs = np.log(marks)
    for i in range(count):
        s, m = int(step[i]), int(market[i])
        fell = [(logs[s, m] - logs[s + j, m]) * side[i] >= move[i] for j in range(1, 300 - s)]
        alone = next((j for j in range(1, min(31, 300 - s)) if fell[j - 1]), -1)
        assert moved[i] == alone, i
