"""New cohorts' sizes: the per-market notional scale."""

from __future__ import annotations

import numpy as np

from purpleflea.sim.markets import slots_for, universe
from purpleflea.sim.traders import (
    OCCUPANCY,
    SCALE_STEPS,
    cohort_cap,
    cohort_draws,
    cohort_scale,
)


def test_the_cohort_scale_is_every_markets_full_iteration_bit_for_bit() -> None:
    # cohort_scale stops stepping a market once its scale cycles; the result must be what
    # all SCALE_STEPS steps of every market give.
    specs = universe(275)
    oi = np.array([spec.oi_usd for spec in specs])
    per_slot = oi / (np.array([slots_for(spec) for spec in specs], dtype=np.float64) * OCCUPANCY)
    _, relative = cohort_draws(np.random.default_rng(12345), 20_000)
    cap = cohort_cap(per_slot, oi)
    expected = per_slot / relative.mean()
    for _ in range(SCALE_STEPS):
        capped = np.minimum(relative[None, :] * expected[:, None], cap[:, None]).mean(axis=1)
        expected = expected * per_slot / capped
    assert cohort_scale(per_slot, oi).tobytes() == expected.tobytes()
    # Any subset of markets gets the same values (a market's iteration is its own).
    some = np.array([0, 1, 7, 100, 274])
    assert cohort_scale(per_slot[some], oi[some]).tobytes() == expected[some].tobytes()
