"""The impact kernel's precomputed paths give the kernel's own numbers, to the last bit.

The simulator computes a block's impact, and the rest of a block's after every liquidation
step, from coefficients computed once (:class:`ImpactPath`), and a run's own impact from
coefficients kept per elapsed time (:class:`RunTracker`): the stream must stay the same bytes
as the kernel's direct formulas gave (``bench/sim_speed.py --hash``).
"""

from __future__ import annotations

import numpy as np

from purpleflea.sim.impact import ImpactKernel
from purpleflea.sim.runs import RunTracker

KERNEL = ImpactKernel(permanent=0.4, half_life_ms=120_000.0, execution_ms=6_000.0)
OFFSETS = 1_000.0 * np.arange(1, 301, dtype=np.float64)


def _states(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Signed impacts over several decades, as the simulator's markets carry them.
    return tuple(rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-9, -1, n) for _ in range(3))  # type: ignore[return-value]


def test_a_path_gives_every_markets_level_bit_for_bit() -> None:
    perm, trans, pend = _states(np.random.default_rng(7), 275)
    expected = KERNEL.level(perm, trans, pend, OFFSETS[:, None])
    got = KERNEL.path(OFFSETS).levels(perm, trans, pend)
    assert got.shape == (300, 275)
    assert got.tobytes() == expected.tobytes()


def test_a_path_gives_one_markets_level_from_any_step_on_bit_for_bit() -> None:
    path = KERNEL.path(OFFSETS)
    perm, trans, pend = _states(np.random.default_rng(8), 50)
    for i, count in enumerate((300, 299, 150, 17, 1)):
        state = (float(perm[i]), float(trans[i]), float(pend[i]))
        expected = KERNEL.level(*state, OFFSETS[:count])
        assert path.level(*state, count).tobytes() == expected.tobytes()


def test_a_runs_own_impact_rolls_as_the_kernel_rolls_it() -> None:
    tracker = RunTracker(
        names=("A",), depth_usd=np.array([1e6]), gap_ms=60_000, min_depth=1.0, kernel=KERNEL
    )
    perm, trans, pend = _states(np.random.default_rng(9), 40)
    for i, t_ms in enumerate([0, 1_000, 5_000, 1_000, 60_000, 250, 0, 5_000] * 5):
        state = (float(perm[i]), float(trans[i]), float(pend[i]))
        expected = KERNEL.roll(*(np.array(v) for v in state), float(t_ms))
        got = tracker._roll(*state, t_ms)  # twice for the repeated times: from the kept ones
        assert got == tuple(float(v) for v in expected)
