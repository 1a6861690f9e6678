"""Who the leveraged traders are: the leverage mix and the size of new cohorts.

The leverage mix is BTC's: 2x-125x, most cohorts at 5x-20x, notional falling with leverage
(high leverage is common but small). Other coins get the leverage tier giving the same
liquidation distance measured in daily volatilities (traders use less leverage on wilder
coins), capped by the market's maximum. Cohort notional is heavy-tailed (Pareto 1.6, capped
at 30x the mean and at :data:`MAX_COHORT_OI_SHARE` of the market's open interest).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

_LEVERAGE = np.array([2, 3, 5, 10, 20, 25, 50, 75, 100, 125], dtype=np.float64)
_LEVERAGE_P = np.array([0.10, 0.10, 0.18, 0.25, 0.15, 0.07, 0.08, 0.03, 0.03, 0.01])
# Cohort notional scales as (10 / leverage) ** this: high leverage is common but small.
_LEVERAGE_SIZE_EXP = 1.3
# The mix above is BTC's; other coins get the leverage giving the same liquidation distance in
# daily volatilities (see leverage_for).
_BTC_MMR = 0.004
_BTC_DAILY_VOL = 0.025
# No cohort holds more than this share of its market's target open interest.
MAX_COHORT_OI_SHARE = 0.10
# Share of slots holding a cohort at a time (mean life ~6 h, mean refill wait 20 min).
OCCUPANCY = 0.95


def cohort_draws(rng: np.random.Generator, count: int) -> tuple[FloatArray, FloatArray]:
    """BTC-equivalent leverage and relative notional of ``count`` new cohorts (mean ~1 before
    the per-market cap)."""
    btc_lev = _LEVERAGE[rng.choice(_LEVERAGE.size, count, p=_LEVERAGE_P)]
    pareto = np.minimum((rng.pareto(1.6, count) + 1.0) * (0.6 / 1.6), 30.0)
    return btc_lev, pareto * (10.0 / btc_lev) ** _LEVERAGE_SIZE_EXP


def cohort_scale(per_slot_usd: FloatArray, oi_usd: FloatArray) -> FloatArray:
    """The notional scale per market that makes the mean capped cohort ``per_slot_usd``.

    Solved by fixed-point iteration on a fixed sample, so it is the same for every seed.
    """
    _, relative = cohort_draws(np.random.default_rng(12345), 20_000)
    cap = MAX_COHORT_OI_SHARE * oi_usd
    scale = per_slot_usd / relative.mean()
    for _ in range(30):
        capped = np.minimum(relative[None, :] * scale[:, None], cap[:, None]).mean(axis=1)
        scale = scale * per_slot_usd / capped
    result: FloatArray = scale
    return result


def leverage_for(
    btc_lev: FloatArray, daily_vol: FloatArray, mmr: FloatArray, max_lev: FloatArray
) -> FloatArray:
    """The leverage tier giving, on a coin with ``daily_vol``, the liquidation distance (in
    daily volatilities) that ``btc_lev`` gives on BTC, capped by ``max_lev`` and so that the
    maintenance margin stays under half the initial margin."""
    vols = (1.0 / btc_lev - _BTC_MMR) / _BTC_DAILY_VOL
    wanted = 1.0 / (vols * daily_vol + mmr)
    tier = _LEVERAGE[np.maximum(np.searchsorted(_LEVERAGE, wanted, side="right") - 1, 0)]
    capped: FloatArray = np.minimum(np.minimum(tier, max_lev), np.floor(0.5 / mmr))
    return capped
