"""Open interest that trends: each market's leveraged book follows a slowly drifting level.

Real open interest wanders: Hyperliquid's hourly BTC open interest over a year
(``shared/data/real/0xknxwledge…/open_interest.parquet``) changes by a median |log| of 4.4 %
in 24 h, 12.6 % in a week and 26 % in 30 days (ETH, SOL, DOGE alike; measured in USD, so the
price's own moves are in it) -- close to a random walk at a day and beyond. Each market's log
level is a mean-reverting walk (AR(1), half-life :data:`HALF_LIFE_MS`, so over a year it stays
within tens of percent of the market's size) whose daily innovations (:data:`DAILY_SPREAD`)
are partly common to all markets (:data:`COMMON`: leverage comes and goes across the market
together). New positions are sized by ``exp(level)``, so the book's open interest follows the
level within the hours a position lives; crashes remove open interest on top
(:mod:`purpleflea.sim.crash`).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

DAY_MS = 86_400_000.0
HALF_LIFE_MS = 60 * DAY_MS
#: Std of the level's change over one day (log units), before the book's own lumpiness and
#: the price's moves add theirs (together the scorecard's 24 h row). 3.5 %, not 2 %, since
#: the book holds 5x as many, smaller cohorts: its own lumpiness adds less (BTC's median
#: |24 h change| fell to 2.2 %, real 4.4 %).
DAILY_SPREAD = 0.035
#: Correlation of two markets' level innovations.
COMMON = 0.5


def _phi(block_ms: float) -> float:
    phi: float = 0.5 ** (block_ms / HALF_LIFE_MS)
    return phi


def stationary_spread() -> float:
    """The level's stationary std (log units)."""
    phi_day = _phi(DAY_MS)
    return DAILY_SPREAD / math.sqrt(1.0 - phi_day * phi_day)


def initial(rng: np.random.Generator, n_markets: int) -> FloatArray:
    """Stationary draws of every market's log level."""
    return stationary_spread() * _correlated(rng, n_markets)


def advance(level: FloatArray, rng: np.random.Generator, block_ms: float) -> FloatArray:
    """The levels one block of ``block_ms`` later (exact AR(1) step, same stationary spread)."""
    phi = _phi(block_ms)
    noise = math.sqrt(1.0 - phi * phi) * stationary_spread() * _correlated(rng, level.size)
    result: FloatArray = phi * level + noise
    return result


def _correlated(rng: np.random.Generator, n_markets: int) -> FloatArray:
    common = float(rng.standard_normal())
    own = rng.standard_normal(n_markets)
    result: FloatArray = math.sqrt(COMMON) * common + math.sqrt(1.0 - COMMON) * own
    return result
