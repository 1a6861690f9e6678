"""Who the leveraged traders are: the leverage mix and the size of new cohorts.

The leverage mix is BTC's: 2x-125x, most cohorts at 5x-20x, notional falling with leverage
(high leverage is common but small). Leverage is continuous, not a few tiers: a cohort's
effective leverage is its tier times a log-uniform factor (cross-margin accounts, partial
closes and added margin put real liquidation prices anywhere, not at a few distances from
the entry). Other coins get the leverage giving the same liquidation distance measured in
daily volatilities (traders use less leverage on wilder coins), capped by the market's
maximum. Cohort notional is heavy-tailed (Pareto 1.6, capped
at 30x the mean and at :data:`MAX_COHORT_OI_SHARE` of the market's open interest).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from purpleflea.sim.draws import choice_cdf, weighted_choice

FloatArray = npt.NDArray[np.float64]

_LEVERAGE = np.array([2, 3, 5, 10, 20, 25, 50, 75, 100, 125], dtype=np.float64)
_LEVERAGE_P = np.array([0.10, 0.10, 0.18, 0.25, 0.15, 0.07, 0.08, 0.03, 0.03, 0.01])
_LEVERAGE_CDF = choice_cdf(_LEVERAGE_P)
# Cohort notional scales as (10 / leverage) ** this: high leverage is common but small.
_LEVERAGE_SIZE_EXP = 1.3
# The mix above is BTC's; other coins get the leverage giving the same liquidation distance in
# daily volatilities (see leverage_for).
_BTC_MMR = 0.004
_BTC_DAILY_VOL = 0.025
# No cohort holds more than this share of its market's target open interest, nor more than
# MAX_COHORT_SLOTS times a slot's mean (on a deep market 10% of the open interest in one cohort
# made the book lumpy: whales coming and going moved BTC's open interest by 8% in a day at
# the median, real 4.4%).
MAX_COHORT_OI_SHARE = 0.10
MAX_COHORT_SLOTS = 25.0
# A cohort's leverage is its tier times exp(U(-this, this)).
LEVERAGE_JITTER = 0.25
# Share of slots holding a cohort at a time (mean life ~6 h, mean refill wait 20 min).
OCCUPANCY = 0.95


def cohort_draws(rng: np.random.Generator, count: int) -> tuple[FloatArray, FloatArray]:
    """BTC-equivalent leverage and relative notional of ``count`` new cohorts (mean ~1 before
    the per-market cap)."""
    tier = _LEVERAGE[weighted_choice(rng, _LEVERAGE_CDF, count)]
    jitter = np.exp(rng.uniform(-LEVERAGE_JITTER, LEVERAGE_JITTER, count))
    btc_lev = np.clip(tier * jitter, _LEVERAGE[0], _LEVERAGE[-1])
    pareto = np.minimum((rng.pareto(1.6, count) + 1.0) * (0.6 / 1.6), 30.0)
    return btc_lev, pareto * (10.0 / btc_lev) ** _LEVERAGE_SIZE_EXP


def cohort_cap(per_slot_usd: FloatArray, oi_usd: FloatArray) -> FloatArray:
    """The largest cohort (USD) of each market."""
    cap: FloatArray = np.minimum(MAX_COHORT_OI_SHARE * oi_usd, MAX_COHORT_SLOTS * per_slot_usd)
    return cap


#: Steps of :func:`cohort_scale`'s fixed-point iteration.
SCALE_STEPS = 30


def cohort_scale(per_slot_usd: FloatArray, oi_usd: FloatArray) -> FloatArray:
    """The notional scale per market that makes the mean capped cohort ``per_slot_usd``.

    Solved by fixed-point iteration on a fixed sample (:data:`SCALE_STEPS` steps), so it is
    the same for every seed.
    """
    _, relative = cohort_draws(np.random.default_rng(12345), 20_000)
    cap = cohort_cap(per_slot_usd, oi_usd)
    scale = per_slot_usd / relative.mean()
    # A market's step depends on its own scale alone (its row of the sample's mean). Once a
    # market's scale comes back to its value one or two steps before, it cycles through
    # those for good, so its last step's value is known and it is stepped no further: most
    # markets settle in ~17 steps (all 30 for every market were ~1 s of each simulator's
    # start).
    result: FloatArray = scale.copy()
    going = np.arange(scale.size)
    before = np.full(scale.size, np.nan)  # each market's scale one step back
    for step in range(1, SCALE_STEPS + 1):
        now = scale[going]
        capped = np.minimum(relative[None, :] * now[:, None], cap[going, None]).mean(axis=1)
        new = now * per_slot_usd[going] / capped
        # Cycling with period 1 (new == now) or 2 (new == before): the value after the last
        # step is `new` when an even number of steps remain, `now` otherwise.
        done = (new == now) | (new == before[going])
        result[going] = new if (SCALE_STEPS - step) % 2 == 0 else np.where(new == now, new, now)
        scale[going], before[going] = new, now
        going = going[~done]
        if not going.size:
            break
    return result


def leverage_for(
    btc_lev: FloatArray, daily_vol: FloatArray, mmr: FloatArray, max_lev: FloatArray
) -> FloatArray:
    """The leverage giving, on a coin with ``daily_vol``, the liquidation distance (in daily
    volatilities) that ``btc_lev`` gives on BTC, at least the lowest tier (2x), capped by
    ``max_lev`` and so that the maintenance margin stays under half the initial margin."""
    vols = (1.0 / btc_lev - _BTC_MMR) / _BTC_DAILY_VOL
    wanted = np.maximum(1.0 / (vols * daily_vol + mmr), _LEVERAGE[0])
    capped: FloatArray = np.minimum(np.minimum(wanted, max_lev), np.floor(0.5 / mmr))
    return capped
