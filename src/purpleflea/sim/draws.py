"""Weighted draws of indices exactly as ``numpy.random.Generator.choice`` makes them, for
weights known ahead.

``rng.choice(n, size, p=p)`` checks ``p`` on every call (a compensated sum, NaN and sign
checks) before it draws, ~30 us a call; the simulator draws from fixed weights a few times a
block. :func:`weighted_choice` is that draw with ``choice``'s cumulative weights computed
once (:func:`choice_cdf`): the same uniform draws from the generator, the same search, so
the same indices and the same generator state afterwards (``tests/sim/test_draws.py`` holds
it to ``choice`` itself, so a numpy that draws otherwise fails there).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def choice_cdf(p: FloatArray) -> FloatArray:
    """The cumulative weights ``Generator.choice`` draws ``p`` (probabilities summing to 1)
    from: their running sum, over its last value."""
    cdf: FloatArray = np.cumsum(np.asarray(p, dtype=np.float64))
    cdf /= cdf[-1]
    return cdf


def weighted_choice(rng: np.random.Generator, cdf: FloatArray, size: int) -> IntArray:
    """``rng.choice(cdf.size, size, p=p)`` for ``cdf = choice_cdf(p)``: ``size`` indices."""
    drawn: IntArray = cdf.searchsorted(rng.random(size), side="right")
    return drawn
