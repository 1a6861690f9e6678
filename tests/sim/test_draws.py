"""Weighted draws: the same indices and the same generator state as Generator.choice."""

from __future__ import annotations

import numpy as np

from purpleflea.sim.draws import choice_cdf, weighted_choice
from purpleflea.sim.markets import universe
from purpleflea.sim.traders import _LEVERAGE_P


def test_weighted_draws_are_generator_choices_draw_for_draw() -> None:
    oi = np.array([spec.oi_usd for spec in universe(275)]) ** 0.75
    weights = [
        _LEVERAGE_P,
        oi / oi.sum(),
        np.array([1.0]),
        np.array([0.0, 0.5, 0.0, 0.5, 0.0]),  # zero weights are never drawn
    ]
    spread = np.random.default_rng(7).random(40)
    weights.append(spread / spread.sum())
    for p in weights:
        cdf = choice_cdf(p)
        for size in (0, 1, 3, 257, 5_000):
            ours, theirs = np.random.default_rng(size), np.random.default_rng(size)
            drawn = weighted_choice(ours, cdf, size)
            expected = theirs.choice(p.size, size, p=p)
            assert drawn.dtype == expected.dtype
            assert drawn.tolist() == expected.tolist()
            # The generator is left where choice leaves it: the next draws agree too.
            assert ours.bit_generator.state == theirs.bit_generator.state
    assert set(weighted_choice(np.random.default_rng(1), choice_cdf(weights[3]), 500)) == {1, 3}
