"""Cross-margin accounts liquidated as a whole: several markets' positions in one millisecond.

Exchanges liquidate a cross-margin account when its equity (all its positions' profit and
loss together) falls below its maintenance margin, and then close every position it holds at
once. In Binance's ``!forceOrder@arr`` recordings 11-43 % of the events (per session) share
their exact millisecond with another symbol's event, in groups of 2-5 (once 32) with sizes
alike (``bench/sim_realism.py``): one account's positions. Their moment is the account's,
not any one market's price crossing a level, so they arrive through the hour rather than in
a market's sweep; the cohorts of :mod:`purpleflea.sim.truth` (isolated margin, each
liquidated when the mark reaches its price) do not make such seconds.

Pure draws: :func:`draw` picks, for one block, the accounts liquidated (Poisson, more when the
market-wide volatility is high), the step each goes at, its exchange and its positions
(market, USD size): the first in a market weighted by open interest and by how far the market
moved in the block (the position that sank the account), the others by open interest alone.
The simulator takes each position from an open cohort of its market (a trader of that
cohort), without price impact: single accounts' orders are small against a market's depth
(median $150). Calibrated on the realism scorecard (docs/simulator.md) on tuning seeds 10-13.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from purpleflea.sim.book import NEVER
from purpleflea.sim.draws import choice_cdf, weighted_choice
from purpleflea.sim.markets import MarketSpec

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Accounts liquidated per market per day at the typical volatility (a market-wide rate:
#: ``n_markets`` times this, spread over markets by :data:`MARKET_WEIGHT_EXP`).
PER_MARKET_PER_DAY = 36.0
#: An account holds 1 + Geometric positions: each further one with this probability.
MORE_POSITIONS = 0.65
#: Markets weighted by open interest to this power: accounts hold the large markets more
#: often, and the long tail of small ones too.
MARKET_WEIGHT_EXP = 0.75
#: The first position's market is weighted by (1 + this x z^2) besides its open interest,
#: z the market's move over the block in units of its typical move.
MOVE_WEIGHT = 1.0
#: Account size (USD, log-normal): median and sigma; each position a log-normal share of it.
ACCOUNT_MEDIAN_USD = 150.0
ACCOUNT_SIGMA = 1.4
POSITION_SIGMA = 0.5
#: At most this share of the cohort a position is taken from (the cohort stays open).
MAX_COHORT_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class Venues:
    """Where accounts can be: per market, the listing index of each exchange (-1 if none)."""

    exchanges: tuple[str, ...]
    listing: IntArray  # (markets, exchanges)
    weight: FloatArray  # (markets,) the probability an account position is in the market
    weight_cdf: FloatArray  # choice_cdf(weight)

    @classmethod
    def of(cls, specs: tuple[MarketSpec, ...], oi_usd: FloatArray) -> Venues:
        names = tuple(sorted({lst.exchange for s in specs for lst in s.listings}))
        listing = np.full((len(specs), len(names)), -1, dtype=np.int64)
        for m, spec in enumerate(specs):
            for i, lst in enumerate(spec.listings):
                listing[m, names.index(lst.exchange)] = i
        weight = oi_usd**MARKET_WEIGHT_EXP
        weight = weight / weight.sum()
        return cls(names, listing, weight, choice_cdf(weight))


@dataclass(frozen=True, slots=True)
class Positions:
    """One block's liquidated account positions (one row each; an account's rows share
    ``account``, ``step`` and ``jitter_ms``)."""

    account: IntArray
    step: IntArray
    jitter_ms: IntArray
    market: IntArray
    listing: IntArray
    usd: FloatArray


def draw(
    rng: np.random.Generator,
    venues: Venues,
    listing_cum: FloatArray,
    *,
    mean_accounts: float,
    steps: int,
    step_ms: int,
    moved: FloatArray | None = None,
) -> Positions:
    """The accounts liquidated in one block of ``steps`` steps (Poisson, mean
    ``mean_accounts``) and their positions. An account's exchange is its first market's, by
    that market's venue shares (``listing_cum``, as events are attributed); its other
    positions are in markets listed on that exchange, each market at most once."""
    n = int(rng.poisson(mean_accounts))
    held = rng.geometric(1.0 - MORE_POSITIONS, n)
    account = np.repeat(np.arange(n), held)
    market = weighted_choice(rng, venues.weight_cdf, account.size)
    first = np.ones(account.size, dtype=bool)
    first[1:] = account[1:] != account[:-1]
    if moved is not None:
        # The position that sank the account is more likely in a market that moved.
        hot = venues.weight * (1.0 + MOVE_WEIGHT * moved**2)
        market[first] = weighted_choice(rng, choice_cdf(hot / hot.sum()), n)
    opening = market[first]
    listing0 = (rng.random(n)[:, None] >= listing_cum[opening]).sum(axis=1)
    exchange = np.argmax(venues.listing[opening] == listing0[:, None], axis=1)
    listing = venues.listing[market, exchange[account]]
    # Each market once per account, and only where the account's exchange lists it.
    key = account * venues.weight.size + market
    unique = np.zeros(account.size, dtype=bool)
    unique[np.unique(key, return_index=True)[1]] = True
    keep = unique & (listing >= 0)
    size = rng.lognormal(np.log(ACCOUNT_MEDIAN_USD), ACCOUNT_SIGMA, n)
    usd = size[account] * rng.lognormal(0.0, POSITION_SIGMA, account.size)
    step = rng.integers(0, steps, n)
    jitter = rng.integers(1, step_ms + 1, n)
    return Positions(
        account=account[keep],
        step=step[account][keep],
        jitter_ms=jitter[account][keep],
        market=market[keep],
        listing=listing[keep],
        usd=usd[keep],
    )


def pick_cohorts(
    rng: np.random.Generator,
    seg: IntArray,
    market: IntArray,
    qty: FloatArray,
    gone_ms: IntArray,
    tries: int = 8,
) -> IntArray:
    """For each position, a random open slot of its market (holding a cohort, not
    liquidated in this block: ``gone_ms`` is :data:`~purpleflea.sim.book.NEVER`); -1 when
    ``tries`` draws find none; no slot twice."""
    a, b = seg[market], seg[market + 1]
    candidates = a[:, None] + (rng.random((market.size, tries)) * (b - a)[:, None]).astype(np.int64)
    ok = (qty[candidates] > 0) & (gone_ms[candidates] == NEVER)
    slot = np.where(ok.any(axis=1), candidates[np.arange(market.size), ok.argmax(axis=1)], -1)
    seen = np.zeros(slot.size, dtype=bool)
    seen[np.unique(slot, return_index=True)[1]] = True
    picked: IntArray = np.where(seen & (slot >= 0), slot, -1)
    return picked
