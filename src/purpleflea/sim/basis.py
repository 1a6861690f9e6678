"""The cross-venue basis: how far one exchange's price of a market sits from the market's mark.

Measured on the real hourly closes of Binance and Bybit perpetuals over a year
(``bench/sim_realism.py``): the gap between two venues is ~1 bp at the median and ~5 bp at
p99 for BTC, ETH, SOL and DOGE, ~3 bp and ~13 bp for HYPE (a smaller market), and widens to
tens of bp or more in a crash hour. Each listing's log basis is a mean-reverting (AR(1),
half-life :data:`HALF_LIFE_MS`) random walk whose spread grows as the market shrinks, and a
block in which the market moves fast widens it (see :func:`widened`).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Per-listing basis spread (log units) of a market with BTC's open interest ($30B), before
#: the volatility regime's factor (:func:`widened`), whose median is 0.78 (the regime keeps
#: the mean variance, so its median is below 1): at 0.9e-4 the quoted gap's median was
#: 0.82x the real for BTC and 0.64-0.77x for HYPE on the realism scorecard.
MAJOR_SPREAD = 1.1e-4
#: The spread grows as (30B / open interest) ** this: ~3.1x for HYPE (as measured), up to
#: :data:`MAX_SPREAD` for the small coins (no real data on them; this keeps the same-second
#: spread across their four to nine venues under ~0.3% at p99 outside a crash).
SIZE_EXPONENT = 0.28
MAX_SPREAD = 4e-4
HALF_LIFE_MS = 3_600_000.0
#: A block moving the market by this much (log) doubles the basis, growing as the square of
#: the move (4%: 2.8x, 10%: 12x) up to :data:`MAX_WIDEN`: calm blocks keep a few bp, a crash
#: block tens to a hundred or more, as in the real crash hours.
WIDEN_MOVE = 0.03
MAX_WIDEN = 30.0


def spread(oi_usd: FloatArray) -> FloatArray:
    """Each market's stationary per-listing basis spread (log units)."""
    result: FloatArray = np.minimum(MAJOR_SPREAD * (30e9 / oi_usd) ** SIZE_EXPONENT, MAX_SPREAD)
    return result


def initial(rng: np.random.Generator, spreads: FloatArray, listings: int) -> FloatArray:
    """Stationary draws of every listing's basis (markets x listings)."""
    result: FloatArray = spreads[:, None] * rng.standard_normal((spreads.size, listings))
    return result


def advance(
    basis: FloatArray, rng: np.random.Generator, spreads: FloatArray, block_ms: float
) -> FloatArray:
    """The basis one block of ``block_ms`` later (exact AR(1) step, same stationary spread)."""
    phi = 0.5 ** (block_ms / HALF_LIFE_MS)
    noise = rng.standard_normal(basis.shape)
    result: FloatArray = phi * basis + math.sqrt(1 - phi * phi) * spreads[:, None] * noise
    return result


def widened(basis: FloatArray, move: FloatArray, regime: FloatArray) -> FloatArray:
    """The basis quoted during a block in which each market moved by ``move`` (log, max
    absolute move from the block's start) with its volatility at ``regime`` times its usual
    level: a volatile market's venues drift further apart (real gaps are fat-tailed, p99
    ~7x the median for BTC)."""
    factor = np.minimum((1.0 + (move / WIDEN_MOVE) ** 2) * regime, MAX_WIDEN)
    result: FloatArray = basis * factor[:, None]
    return result
