"""Exchange shares that move: each venue's share of a market's liquidations and open interest.

A market's nominal shares (:data:`purpleflea.sim.markets.EXCHANGE_SHARES`, renormalized over
the venues that list it) are the long-run average; each listing's log share wanders around
it as a mean-reverting random walk (stationary spread :data:`SPREAD`, half-life
:data:`HALF_LIFE_MS`), so a venue's share of a market drifts by tens of percent over days, as
venues win and lose traders. The real data cannot measure this (no two venues' liquidations
were recorded at once); the magnitude is a modelling choice.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SPREAD = 0.25
HALF_LIFE_MS = 3 * 86_400_000.0


def initial(rng: np.random.Generator, shape: tuple[int, int]) -> FloatArray:
    """Stationary draws of every listing's log-share deviation (markets x listings)."""
    result: FloatArray = SPREAD * rng.standard_normal(shape)
    return result


def advance(noise: FloatArray, rng: np.random.Generator, block_ms: float) -> FloatArray:
    """The deviations one block of ``block_ms`` later (exact AR(1) step)."""
    phi = 0.5 ** (block_ms / HALF_LIFE_MS)
    result: FloatArray = phi * noise + math.sqrt(1 - phi * phi) * SPREAD * rng.standard_normal(
        noise.shape
    )
    return result


def current(nominal: FloatArray, noise: FloatArray) -> FloatArray:
    """Each listing's share now (rows sum to 1 over the listed venues; unlisted stay 0)."""
    raw = nominal * np.exp(noise)
    result: FloatArray = raw / raw.sum(axis=1, keepdims=True)
    return result


def cumulative(shares: FloatArray, listed: IntArray) -> FloatArray:
    """Cumulative shares for drawing a venue; the last listed venue takes the rest (1.0)."""
    cum: FloatArray = np.cumsum(shares, axis=1)
    cum[np.arange(shares.shape[1])[None, :] >= (listed - 1)[:, None]] = 1.0
    return cum
