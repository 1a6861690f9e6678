"""The simulation: price process, leveraged traders, and a liquidation engine with impact.

Time advances in steps of ``step_ms`` (250 ms for a live feed), computed a block of one minute
at a time:

1. **Traders** (at each block start). Cohorts (see :mod:`purpleflea.sim.truth`) whose planned
   lifetime (log-normal, median 3 h at 10x, longer at low leverage) is over are closed; empty
   slots are refilled after an exponential wait with a new cohort: side leaning with the last
   hour's trend, a continuous leverage around a 2x-125x mix (BTC's; wilder coins get
   proportionally less, capped by the market's maximum), a heavy-tailed (Pareto 1.6) notional
   scaled so the market's open interest follows its drifting level
   (:mod:`purpleflea.sim.openinterest`), entry spread like the price over the last minutes
   around the current mark (liquidation prices form a continuum), and the maintenance margin
   of its tier (doubled for whale cohorts).
2. **Price** (each step). ``log mark = x + permanent impact + transient impact`` where ``x``
   is an exogenous random walk whose volatility clusters (a per-minute AR(1) log-volatility,
   common to all markets plus per market) and jumps (per-market and market-wide shocks with
   clipped Student-t sizes; a market's own jump unfolds over a few minutes). Markets co-move
   through a common factor. A scheduled crash episode (:mod:`purpleflea.sim.crash`) adds its
   path and volatility.
3. **Liquidations** (each step). Every cohort whose liquidation price the mark has reached is
   liquidated at that step, exactly then: it is sold (long) or bought (short). The step's
   forced orders move the log price by
   ``impact_scale * 1% * notional / depth`` (square-root beyond one depth, see
   :func:`purpleflea.sim.impact.log_move`) as the liquidation engine works the order over
   ~6 s — 40% permanently, 60% transiently (half-life 2 min) — which may reach the next
   cohorts: a cascade that runs until the cluster of liquidation prices is exhausted.

4. **Accounts** (each block). Cross-margin accounts are liquidated as a whole at random
   moments, their positions in several markets in one millisecond, each taken from an open
   cohort of its market (:mod:`purpleflea.sim.accounts`).

Each liquidated cohort is reported as 1..16 exchange events (up to 27 on BTC; log-normal sizes
summing to its quantity, each attributed to an exchange by the market's moving shares,
:mod:`purpleflea.sim.shares`; the later ones as the engine fills them or the mark moves on,
:mod:`purpleflea.sim.events`), each priced at its own step's mark times its exchange's basis
(:mod:`purpleflea.sim.basis`), less half its own impact (:mod:`purpleflea.sim.events`); the
exchanges whose feeds send a bankruptcy or order price instead of a fill get the position's
bankruptcy price (:mod:`purpleflea.sim.events`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from purpleflea.model import MarketSnapshot, VenueLiquidation
from purpleflea.sim import accounts, basis, crash, openinterest, shares
from purpleflea.sim.book import NEVER, Book, BoolArray, Ladder
from purpleflea.sim.config import (
    DAY_MS,
    DEFAULT_START_MS,
    SimConfig,
    SimStep,
    event_id_prefix,
    random_stream,
)
from purpleflea.sim.events import (
    CohortLog,
    MarketTable,
    RawBlock,
    max_events,
    quotes_bankruptcy,
)
from purpleflea.sim.impact import ImpactKernel, log_move
from purpleflea.sim.markets import TICKERS, MarketSpec, slots_for, tick_decimals, universe
from purpleflea.sim.resume import BOOK_TIMES, BOOK_VALUES, MARKET_ARRAYS, SimState
from purpleflea.sim.runs import RunTracker
from purpleflea.sim.traders import (
    OCCUPANCY,
    cohort_cap,
    cohort_draws,
    cohort_scale,
    leverage_for,
)
from purpleflea.sim.truth import Flows, Truth

# Log-volatility: per-minute AR(1), common to all markets (half-life ~3 h) plus each
# market's own (half-life ~1 h); stationary std 0.40 and 0.30.
_VOL_PERSISTENCE_COMMON = 0.9962
_VOL_NOISE_COMMON = 0.035
_VOL_PERSISTENCE_OWN = 0.9885
_VOL_NOISE_OWN = 0.045
#: Their stationary variances.
_H_VAR_COMMON = _VOL_NOISE_COMMON**2 / (1 - _VOL_PERSISTENCE_COMMON**2)
_H_VAR_OWN = _VOL_NOISE_OWN**2 / (1 - _VOL_PERSISTENCE_OWN**2)
#: New positions' entries are spread like the price over this window (in days): 4 minutes
#: (longer windows put more fresh high-leverage entries next to their liquidation price: BTC's
#: calm-hour liquidations over open interest rose past 1.5x the real median at 10 minutes).
_ENTRY_WINDOW_DAYS = 4 / 1440
#: Mean delay of a liquidated cohort's later events (the engine's orders filling), besides
#: the stragglers (:data:`purpleflea.sim.events.STRAGGLER_SHARE`). Measured on the scorecard
#: (docs/simulator.md): at 2 s with up to 200 events a cohort was a streak of one symbol in
#: Binance's thinned stream; with 5x the cohorts, 16-27 events each, the bulk within the
#: second and 40 % straggling over up to 30 s, the stream interleaves symbols as the real
#: one does (120 ms rather than 300 ms: CV of gaps 2.78 -> 2.69 over two seeds' 3 days).
_EVENT_SPREAD_MS = 120.0
_JUMP_TAU_MS = 120_000.0
_IMPACT = ImpactKernel(permanent=0.4, half_life_ms=120_000.0, execution_ms=6_000.0)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


#: The warm-up's blocks (ms): the calibrated market's (``SimConfig``'s default), whatever
#: blocks the stream is served in. A block's cost is mostly passes over every position slot
#: (180,685 for 275 markets), whatever its length: the served market's two unseen hours in its
#: 2.5 s blocks were 2,880 of them, ~6 of the 7 s of CPU `serve --source sim` spent before its
#: first liquidation; in minutes, 120 (bench/sim_first_liquidation.py, BENCHMARKS.md). The
#: served blocks are short for a restart's sake (it resumes within one block), which an unseen
#: warm-up has no use for; every process is stepped by the block's length, so the book it
#: leaves is settled the same way.
WARM_UP_BLOCK_MS = 60_000

#: Shock sizes are Student-t(3) draws clipped to this many units: the t's far tail made
#: single-market jumps of 30%+ in minutes, beyond any real market outside a crash.
_MAX_SHOCK = 2.5


def _copy(source: npt.NDArray[Any], target: npt.NDArray[Any] | None) -> npt.NDArray[Any]:
    """``source`` copied into ``target`` when that has its shape and type, else a new copy."""
    if target is None or target.shape != source.shape or target.dtype != source.dtype:
        return source.copy()
    np.copyto(target, source)
    return target


def _clipped(draws: FloatArray | float) -> FloatArray:
    clipped: FloatArray = np.clip(draws, -_MAX_SHOCK, _MAX_SHOCK)
    return clipped


#: Ratios this close (relative) to a column's largest or smallest are :func:`_largest_moves`'
#: candidates: far more than the few ulps by which a logarithm can be off.
_NEAR_EXTREME = 1e-9


def _largest_moves(marks: FloatArray, previous: FloatArray) -> FloatArray:
    """Each market's largest absolute log move in the block, from the mark before it:
    ``np.abs(np.log(marks / previous)).max(axis=0)``, the same bits, with the logarithm
    taken only near each column's largest and smallest ratio.

    The block's 300 x 275 logarithms were ~10 % of a history block's CPU. ``|log r|`` is
    largest at the largest or the smallest ``r``; a ratio more than :data:`_NEAR_EXTREME`
    inside both has a logarithm that much inside theirs, beyond any rounding, so it cannot
    be the maximum. The candidates' logarithms are the same elementwise ``np.log`` of the
    same ratios (``where=`` runs its loop on the candidates only), and the rest count 0,
    under any absolute value."""
    ratio = marks / previous
    near = ratio >= ratio.max(axis=0) * (1.0 - _NEAR_EXTREME)
    near |= ratio <= ratio.min(axis=0) * (1.0 + _NEAR_EXTREME)
    logs = np.log(ratio, out=np.zeros_like(ratio), where=near)
    largest: FloatArray = np.abs(logs, out=logs).max(axis=0)
    return largest


class WarmUpAbandoned(Exception):
    """The simulator's warm-up stopped because its ``abandon`` event was set."""


#: Told the warm-up's progress: (blocks computed, blocks in all), from (0, total) on.
WarmUpProgress = Callable[[int, int], None]


@functools.lru_cache(maxsize=4)
def sizing(n_markets: int) -> tuple[FloatArray, FloatArray]:
    """Each market's cohort notional scale and cap (USD) in the first ``n_markets`` of the
    universe (read-only arrays).

    A function of the universe alone, solved once per process: :func:`cohort_scale` is 0.5 s
    of CPU for 275 markets, and a served market is built twice (warmed up, then moved to
    start when it is ready, or continued from its saved state)."""
    specs = universe(n_markets)
    oi_usd = np.array([s.oi_usd for s in specs])
    slots = np.array([slots_for(s) for s in specs], dtype=np.float64)
    per_slot = oi_usd / (slots * OCCUPANCY)
    scale, cap = cohort_scale(per_slot, oi_usd), cohort_cap(per_slot, oi_usd)
    scale.flags.writeable = cap.flags.writeable = False
    return scale, cap


class Simulator:
    """A deterministic market simulation; iterate :meth:`steps` (see the package docstring)."""

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        abandon: threading.Event | None = None,
        progress: WarmUpProgress | None = None,
        **overrides: int | float,
    ) -> None:
        """``abandon``: set from another thread, the warm-up (a second or more of blocks on
        a busy machine) stops at its next block with :class:`WarmUpAbandoned`: a server
        stopped meanwhile would otherwise wait for it to finish before exiting. ``progress``
        is told how far the warm-up is after each of its blocks (:data:`WarmUpProgress`)."""
        if config is None:
            config = SimConfig(**overrides)  # type: ignore[arg-type]
        elif overrides:
            raise TypeError("pass either a SimConfig or keyword overrides, not both")
        self._build(config)
        self._warm_up(abandon, progress)

    def _build(self, config: SimConfig) -> None:
        self.config = config
        self.markets: tuple[MarketSpec, ...] = universe(config.n_markets)
        self.market_names = tuple(spec.name for spec in self.markets)
        self.market_index = {name: i for i, name in enumerate(self.market_names)}
        self.book = Book(self.markets)
        self.truth = Truth(self)
        self.now_ms = config.start_ms
        self._rng = random_stream(config)
        self._init_state()

    @classmethod
    def from_state(cls, config: SimConfig, state: SimState) -> Simulator:
        """A simulator continuing ``state`` (see :mod:`purpleflea.sim.resume`) from
        ``config.start_ms``, as if the market had paused between the two.

        Every market's price, volatility and impact state, the open positions (their times
        shifted by the pause) and the flows carry on; there is no warm-up. The random stream
        carries on too when ``config.epoch`` is the state's, and is the epoch's own stream
        otherwise: a restarted live feed takes a new epoch so it never replays what it
        already produced. Raises ValueError when ``config`` is not the state's market
        (seed, number of markets).
        """
        if (config.seed, config.n_markets) != (state.seed, state.n_markets):
            raise ValueError(
                f"saved simulator state is seed {state.seed} with {state.n_markets} markets; "
                f"cannot continue it as seed {config.seed} with {config.n_markets}"
            )
        sim = cls.__new__(cls)
        sim._build(config)
        sim._restore(state)
        return sim

    # -- set-up -----------------------------------------------------------------------------

    def _init_state(self) -> None:
        specs, n, cfg = self.markets, len(self.markets), self.config
        self._n = n
        self._price0 = np.array([s.price for s in specs])
        self._x = np.log(self._price0)
        self._x_trend = self._x.copy()
        # Impact state per market (log units): applied permanent, applied transient, pending.
        self._perm = np.zeros(n)
        self._trans = np.zeros(n)
        self._pend = np.zeros(n)
        self._h_common = 0.0
        self._h = np.zeros(n)
        self._base_vol = np.array([s.daily_vol for s in specs])
        daily = self._base_vol * cfg.volatility_scale
        self._daily_vol = daily
        self._sigma_step = daily * math.sqrt(cfg.step_ms / DAY_MS)
        self._rho = np.where(np.arange(n) == 0, 0.95, 0.7)
        self._depth = np.array([s.depth_usd for s in specs])
        self._oi_target = np.array([s.oi_usd for s in specs])
        self._oi_level = openinterest.initial(self._rng, n)
        self._vol_regime = np.ones(n)
        self._jump_pending = np.zeros(n)  # own shocks not yet released into the price
        self._max_lev = np.array([s.max_leverage for s in specs], dtype=np.float64)
        self._mmr = np.array([s.mmr for s in specs])
        listings = max(len(s.listings) for s in specs)
        self._nominal_share = np.zeros((n, listings))
        self._listing_count = np.array([len(s.listings) for s in specs])
        for m, spec in enumerate(specs):
            self._nominal_share[m, : len(spec.listings)] = [lst.share for lst in spec.listings]
        self._share_noise = shares.initial(self._rng, (n, listings))
        self._listing_share = shares.current(self._nominal_share, self._share_noise)
        self._table = MarketTable(
            # Calibrated on the Binance recordings' event sizes (median $171, p90 $2.3k).
            event_mean_usd=72.0 * (self._oi_target / 16e6) ** 0.45,
            listing_cum=shares.cumulative(self._listing_share, self._listing_count),
            price_scale=np.array([10.0 ** tick_decimals(s.price) for s in specs]),
            depth_usd=self._depth,
            impact_scale=cfg.impact_scale,
            max_events=max_events(self._oi_target),
            straggler_move=daily * math.sqrt(10_000 / DAY_MS),
            bankrupt_quoted=np.array(
                [
                    [quotes_bankruptcy(lst.exchange) for lst in s.listings]
                    + [False] * (listings - len(s.listings))
                    for s in specs
                ],
                dtype=bool,
            ),
        )
        self._crash_beta = crash.betas(
            np.arange(n), np.array([TICKERS[s.index][2] for s in specs], dtype=bool)
        )
        self._venues = accounts.Venues.of(specs, self._oi_target)
        self._basis_spread = basis.spread(self._oi_target)
        self._basis = basis.initial(self._rng, self._basis_spread, listings)
        self._quoted_basis = self._basis
        self._log = CohortLog(spread_ms=_EVENT_SPREAD_MS)
        self._set_blocks()
        self._cohort_usd, self._cohort_cap = sizing(cfg.n_markets)
        self._opened = np.zeros(n)
        self._closed = np.zeros(n)
        self._liquidated = np.zeros(n)  # finalized (blocks before the current one)
        self._next_cohort = 1
        self._next_event = 0
        self._marks = self._price0.copy()[None, :]
        # Book.held_sides as the last block computed started (None: no block since the book
        # was filled or restored).
        self._sides: tuple[BoolArray, BoolArray] | None = None
        # The slots the last block computed liquidated (None: not known, after a restore;
        # every slot's gone_ms then says).
        self._gone: IntArray | None = np.zeros(0, dtype=np.int64)
        self._taken: list[IntArray] = []
        self.now_ms = self._block_start = self._next_start = cfg.start_ms
        self.runs = self._new_runs()

    def _set_blocks(self) -> None:
        """What depends on the length of ``config``'s blocks: its steps' offsets, the share of
        a pending shock each releases and the impact kernel at each."""
        cfg = self.config
        self._steps_per_block = cfg.block_ms // cfg.step_ms
        self._offsets = cfg.step_ms * np.arange(1, self._steps_per_block + 1, dtype=np.float64)
        # The share of a market's pending shock released by each step of a block.
        self._jump_release = 1.0 - np.exp(-self._offsets / _JUMP_TAU_MS)
        # The impact kernel at those offsets, for the block's path and each liquidation step.
        self._impact_path = _IMPACT.path(self._offsets)

    def _warm_up(
        self, abandon: threading.Event | None = None, progress: WarmUpProgress | None = None
    ) -> None:
        """Run ``warmup_ms`` before ``start_ms`` and forget its output.

        The book starts full, with entries spread as if opened over the past day; the warm-up
        lets the cohorts that would already have been liquidated go, so the stream starts in
        its steady state instead of with a burst. It is computed in blocks of
        :data:`WARM_UP_BLOCK_MS` when they fit (the stream's own blocks otherwise).
        """
        cfg = self.config
        if cfg.block_ms < WARM_UP_BLOCK_MS and cfg.warmup_ms % WARM_UP_BLOCK_MS == 0:
            # Snapshots are not taken in the warm-up; the field must only divide into blocks.
            self.config = dataclasses.replace(
                cfg, block_ms=WARM_UP_BLOCK_MS, snapshot_ms=WARM_UP_BLOCK_MS
            )
            self._set_blocks()
        total = self.config.warmup_ms // self.config.block_ms
        self.now_ms = self._block_start = self._next_start = cfg.start_ms - cfg.warmup_ms
        self._traders(self.now_ms, spread=0.5)
        self.runs = self._new_runs()
        for done in range(total + 1):
            if progress is not None:
                progress(done, total)
            if done == total:
                break
            if abandon is not None and abandon.is_set():
                raise WarmUpAbandoned("the simulator's warm-up was abandoned (stopping)")
            self.next_block()
        if self.config is not cfg:
            self.config = cfg
            self._set_blocks()
        self.runs = self._new_runs()
        self._log = CohortLog(spread_ms=_EVENT_SPREAD_MS)
        self._next_event = 0
        self.now_ms = cfg.start_ms

    def capture_state(self, into: SimState | None = None) -> SimState:
        """A copy of the state that carries the market forward (see
        :mod:`purpleflea.sim.resume`); only between blocks.

        ``into``, an earlier capture of this market that nothing reads any more, lends its
        arrays: they are overwritten and returned in the new state. The live source captures
        every block, and a fresh copy each time allocated and freed the book's 16 MB per block
        (64 MB a second at 10x), which left the server's heap with a copy's worth of free
        space coming and going (bench/results/soak.md).
        """
        if self.now_ms != self._next_start:
            raise ValueError(
                f"the simulator's state is captured between blocks; now_ms {self.now_ms} is "
                f"inside the block ending at {self._next_start}"
            )
        cfg = self.config
        return SimState(
            seed=cfg.seed,
            epoch=cfg.epoch,
            n_markets=cfg.n_markets,
            now_ms=self.now_ms,
            h_common=self._h_common,
            next_cohort=self._next_cohort,
            marks=_copy(self.marks(), None if into is None else into.marks),
            markets={
                k: _copy(getattr(self, f"_{k}"), None if into is None else into.markets.get(k))
                for k in MARKET_ARRAYS
            },
            book={
                k: _copy(getattr(self.book, k), None if into is None else into.book.get(k))
                for k in BOOK_TIMES + BOOK_VALUES
            },
            rng=json.dumps(self._rng.bit_generator.state),
            crash_start_ms=cfg.crash_start_ms,
        )

    def _restore(self, state: SimState) -> None:
        shift = self.config.start_ms - state.now_ms
        for k in MARKET_ARRAYS:
            setattr(self, f"_{k}", state.markets[k].copy())
        for k in BOOK_VALUES:
            getattr(self.book, k)[:] = state.book[k]
        for k in BOOK_TIMES:
            times = state.book[k]
            getattr(self.book, k)[:] = np.where(times == NEVER, NEVER, times + shift)
        self._h_common = state.h_common
        self._next_cohort = state.next_cohort
        self._marks = state.marks.copy()[None, :]
        self._sides = self._gone = None
        self._apply_shares()
        if self.config.epoch == state.epoch:
            self._rng.bit_generator.state = json.loads(state.rng)

    def _new_runs(self) -> RunTracker:
        return RunTracker(
            names=self.market_names,
            depth_usd=self._depth,
            gap_ms=self.config.cascade_gap_ms,
            min_depth=self.config.cascade_min_depth,
            kernel=_IMPACT,
        )

    # -- public queries ---------------------------------------------------------------------

    def mark(self, market: str) -> float:
        """The mark price of ``market`` at ``now_ms``."""
        return float(self.marks()[self.truth._market(market)])

    def marks(self) -> FloatArray:
        """Mark prices of all markets (in ``markets`` order) at ``now_ms``."""
        k = (self.now_ms - self._block_start) // self.config.step_ms - 1
        row: FloatArray = self._marks[min(max(k, 0), self._marks.shape[0] - 1)]
        return row

    def listing_prices(self) -> FloatArray:
        """Each listing's price at ``now_ms`` (markets x listings, in ``markets[m].listings``
        order): the mark times the basis its exchange quotes in this block, before an
        order's own slippage."""
        prices: FloatArray = self.marks()[:, None] * np.exp(self._quoted_basis)
        return prices

    def flows_of(self, m: int) -> Flows:
        book = self.book
        sl = slice(book.seg[m], book.seg[m + 1])
        pending = book.gone_ms[sl] <= self.now_ms
        return Flows(
            opened=float(self._opened[m]),
            closed=float(self._closed[m]),
            liquidated=float(self._liquidated[m] + book.qty[sl][pending].sum()),
        )

    # -- iteration --------------------------------------------------------------------------

    def steps(self) -> Iterator[SimStep]:
        """Steps forever, in time order; ``now_ms`` is each yielded step's ``ts``."""
        while True:
            yield from self.block_steps(self.next_block())

    def block_steps(self, raw: RawBlock) -> Iterator[SimStep]:
        """The steps of the block ``raw`` that :meth:`next_block` just computed, in time order;
        ``now_ms`` is each yielded step's ``ts``."""
        dt = self.config.step_ms
        events = self.venue_events(raw)
        step_of = (raw.ts - raw.start_ms - 1) // dt
        bounds = np.searchsorted(step_of, np.arange(self._steps_per_block + 1))
        snapshots = self.snapshots(raw.end_ms)
        for k in range(self._steps_per_block):
            ts = raw.start_ms + (k + 1) * dt
            self.now_ms = ts
            last = k == self._steps_per_block - 1
            yield SimStep(
                ts=ts,
                liquidations=tuple(events[bounds[k] : bounds[k + 1]]),
                snapshots=snapshots if last else (),
            )

    def run(self, duration_ms: int) -> Iterator[SimStep]:
        """The steps of the next ``duration_ms`` of simulated time."""
        end = self.now_ms + duration_ms
        for step in self.steps():
            yield step
            if step.ts >= end:
                return

    def venue_events(self, raw: RawBlock) -> list[VenueLiquidation]:
        """The block's events as :class:`VenueLiquidation` structs.

        ``liquidated_user`` names the true position (``cohort-<TruePosition.id>``); publishing
        drops it, as it drops every venue-only field.
        """
        prefix = event_id_prefix(self.config)
        names, specs = self.market_names, self.markets
        out: list[VenueLiquidation] = []
        for j, (ts, m, li, side, price, qty, cohort) in enumerate(
            zip(
                raw.ts.tolist(),
                raw.market.tolist(),
                raw.listing.tolist(),
                raw.side.tolist(),
                raw.price.tolist(),
                raw.quantity.tolist(),
                raw.cohort.tolist(),
                strict=True,
            )
        ):
            listing = specs[m].listings[li]
            out.append(
                VenueLiquidation(
                    id=f"{prefix}{raw.first_n + j}",
                    exchange=listing.exchange,
                    symbol=listing.symbol,
                    market=names[m],
                    side="long" if side > 0 else "short",
                    price=price,
                    quantity=qty,
                    size_usd=price * qty,
                    ts=ts,
                    liquidated_user=f"cohort-{cohort}",
                )
            )
        return out

    def snapshots(self, ts: int) -> tuple[MarketSnapshot, ...]:
        """Every listing's snapshot at ``ts``, the end of the block just computed; none when
        ``ts`` is not a snapshot time (every ``snapshot_ms``). Reads state, changes nothing."""
        if (ts - self.config.start_ms) % self.config.snapshot_ms:
            return ()
        oi = self._reported_open_interest(ts)
        quoted = self._marks[-1][:, None] * np.exp(self._quoted_basis)
        out: list[MarketSnapshot] = []
        for m, spec in enumerate(self.markets):
            for li, listing in enumerate(spec.listings):
                coins = float(oi[m]) * float(self._listing_share[m, li])
                mark = float(quoted[m, li])
                out.append(
                    MarketSnapshot(
                        exchange=listing.exchange,
                        symbol=listing.symbol,
                        market=spec.name,
                        ts=ts,
                        mark_price=mark,
                        open_interest=coins,
                        open_interest_usd=coins * mark,
                    )
                )
        return tuple(out)

    def market_open_interest(self, ts: int) -> tuple[FloatArray, FloatArray] | None:
        """Each market's open interest in USD at ``ts`` (in :attr:`market_names` order), summed
        over its listings, and its mark (what :meth:`snapshots` reports, listing by listing);
        None when ``ts`` is not a snapshot time. Bulk history stores these without building
        every listing's snapshot."""
        if (ts - self.config.start_ms) % self.config.snapshot_ms:
            return None
        quoted = self._marks[-1][:, None] * np.exp(self._quoted_basis)
        # Each listing values its share at its own price (the mark times its basis); the mark
        # is the last listing's, as a sampler fed the snapshots one by one keeps it.
        usd = self._reported_open_interest(ts) * (self._listing_share * quoted).sum(axis=1)
        last = quoted[np.arange(self._n), self._listing_count - 1]
        return usd, last

    def _reported_open_interest(self, ts: int) -> FloatArray:
        # What an exchange reports: one side's open position (see Truth.open_interest).
        reported: FloatArray = np.maximum(
            *self.book.open_interest(ts, self._n, self._sides, self._gone)
        )
        return reported

    # -- one block --------------------------------------------------------------------------

    def next_block(self) -> RawBlock:
        """Compute the next block; ``now_ms`` moves to its end."""
        cfg = self.config
        start = self._next_start
        self._next_start += cfg.block_ms
        self._finalize_liquidations(start)
        self._block_start = start
        self._traders(start)
        marks, x_path = self._price_path()
        log = self._log
        # The open cohorts of each side as the block starts (the last block's liquidated
        # slots were emptied above, so none is marked gone), for the triggers, each side's
        # ladder and the open interest at the block's end (see Book.open_interest).
        sides = self._sides = self.book.held_sides()
        long_trig, short_trig = self.book.triggers(sides)
        state = (self._perm.copy(), self._trans.copy(), self._pend.copy())
        self._perm, self._trans, self._pend = _IMPACT.roll(
            self._perm, self._trans, self._pend, float(cfg.block_ms)
        )
        # Per struck market, before any is liquidated: the first step its path reaches a
        # trigger, and its path's range (what each side's ladder sorts up front). A market is
        # struck when its path's low reaches its long trigger or its high its short one: two
        # reductions over the block, and the steps compared for the ~20 struck markets only.
        low, high = marks.min(axis=0), marks.max(axis=0)
        struck = np.flatnonzero((low <= long_trig) | (high >= short_trig))
        paths = marks[:, struck]
        hit = (paths <= long_trig[struck]) | (paths >= short_trig[struck])
        self._taken = []
        for m, first, low_m, high_m in zip(
            struck.tolist(),
            hit.argmax(axis=0).tolist(),
            low[struck].tolist(),
            high[struck].tolist(),
            strict=True,
        ):
            begin = (float(state[0][m]), float(state[1][m]), float(state[2][m]))
            triggers = (float(long_trig[m]), float(short_trig[m]))
            after = self._liquidate_market(
                m, begin, marks, x_path, log, start, first, triggers, (low_m, high_m), sides
            )
            self._perm[m], self._trans[m], self._pend[m] = after
        self._gone = np.concatenate(self._taken) if self._taken else np.zeros(0, dtype=np.int64)
        self._close_accounts(marks, start, log)
        self._x = x_path[-1]
        self._x_trend += (self._x - self._x_trend) * (cfg.block_ms / 3_600_000)
        previous = self._marks[-1]
        self._marks = marks
        end = start + cfg.block_ms
        self._basis = basis.advance(self._basis, self._rng, self._basis_spread, cfg.block_ms)
        move = _largest_moves(marks, previous)
        self._quoted_basis = basis.widened(self._basis, move, self._vol_regime)
        self._share_noise = shares.advance(self._share_noise, self._rng, cfg.block_ms)
        self._apply_shares()
        self._oi_level = openinterest.advance(self._oi_level, self._rng, cfg.block_ms)
        # The events are split with a generator of their own, seeded by one draw of the
        # market's stream per block: how a liquidation is reported never changes the path.
        events_rng = np.random.default_rng(int(self._rng.integers(2**63)))
        raw = log.flush(
            self._table,
            self.book,
            events_rng,
            step_ms=cfg.step_ms,
            start_ms=start,
            end_ms=end,
            first_n=self._next_event,
            marks=marks,
            basis=self._quoted_basis,
        )
        self.runs.end_block(raw)
        self._next_event += raw.ts.size
        self.now_ms = end
        return raw

    def _close_accounts(self, marks: FloatArray, start: int, log: CohortLog) -> None:
        """Cross-margin accounts liquidated in the block (:mod:`purpleflea.sim.accounts`),
        more of them when the market-wide volatility is high: each position is taken from
        an open cohort of its market that the block did not liquidate, at the step's mark."""
        cfg, book = self.config, self.book
        regime = math.exp(self._h_common - 0.5 * _H_VAR_COMMON)
        mean = accounts.PER_MARKET_PER_DAY * self._n * cfg.block_ms / DAY_MS * regime
        pos = accounts.draw(
            self._rng,
            self._venues,
            self._table.listing_cum,
            mean_accounts=mean,
            steps=self._steps_per_block,
            step_ms=cfg.step_ms,
            moved=np.abs(np.log(marks[-1] / self._marks[-1]))
            / (self._daily_vol * self._vol_regime * math.sqrt(cfg.block_ms / DAY_MS)),
        )
        slot = accounts.pick_cohorts(self._rng, book.seg, pos.market, book.qty, book.gone_ms)
        found = slot >= 0
        if not found.any():
            return
        slot, market, step = slot[found], pos.market[found], pos.step[found]
        qty = np.minimum(
            pos.usd[found] / marks[step, market], accounts.MAX_COHORT_SHARE * book.qty[slot]
        )
        book.qty[slot] -= qty
        self._liquidated += np.bincount(market, weights=qty, minlength=self._n)
        log.add_timed(
            start + step * cfg.step_ms + pos.jitter_ms[found],
            market,
            pos.listing[found],
            book.side[slot],
            qty,
            book.cohort_id[slot],
            # A cross-margin account has no per-position bankruptcy price (module docstring of
            # purpleflea.sim.events): each position a maintenance margin past the mark.
            marks[step, market] * (1.0 - book.side[slot] * book.mmr[slot]),
            marks[step, market],
        )

    def _finalize_liquidations(self, now: int) -> None:
        book = self.book
        # By index: a block liquidates a few of the 180,000 slots (those it took, in slot
        # order, as a scan of gone_ms would find them).
        gone = np.flatnonzero(book.gone_ms != NEVER) if self._gone is None else np.sort(self._gone)
        if gone.size:
            self._liquidated += self._per_market_at(gone)
            book.qty[gone] = 0.0
            book.gone_ms[gone] = NEVER
            book.close_ms[gone] = NEVER
            # A liquidated trader's slot refills after a wait, as a closed one does (at once,
            # open interest would be back within minutes of a cascade).
            book.reopen_ms[gone] = now + self._refill_waits(now, gone.size)

    def _per_market_at(self, slots: IntArray) -> FloatArray:
        """The coins held in ``slots`` (indices), summed per market."""
        book = self.book
        sums: FloatArray = np.bincount(
            book.market[slots], weights=book.qty[slots], minlength=self._n
        ).astype(np.float64, copy=False)
        return sums

    def _traders(self, now: int, *, spread: float = 0.0) -> None:
        """Close expired cohorts and open new ones in empty slots due to refill by ``now``.

        ``spread`` > 0 (the initial book) scatters entries log-normally by that many daily
        volatilities and drops cohorts that would already have been liquidated.
        """
        book, rng, n = self.book, self._rng, self._n
        # A slot has a closing time exactly while it holds a cohort (it is set when one opens,
        # NEVER when the slot is emptied): no pass over the quantities.
        closing = book.close_ms <= now
        since_crash = self._since_crash(now)
        if crash.falling(since_crash):  # holders de-risk while a wave falls
            minutes = self.config.block_ms / 60_000
            hazard = 1.0 - math.exp(-crash.DERISK_PER_MIN * minutes)
            closing |= (book.qty > 0) & (rng.random(book.qty.size) < hazard)
        closed = np.flatnonzero(closing)
        if closed.size:
            self._closed += self._per_market_at(closed)
            book.qty[closed] = 0.0
            book.close_ms[closed] = NEVER
            book.reopen_ms[closed] = now + self._refill_waits(now, closed.size)
        idx = np.nonzero((book.qty == 0) & (book.reopen_ms <= now))[0]
        if idx.size == 0:
            return
        m = book.market[idx]
        mark = np.exp(self._x + self._perm + self._trans)[m]
        # Entries are spread over the prices of the opening window, not all at this mark:
        # liquidation prices form a continuum rather than a few clumps.
        window = self._daily_vol[m] * self._vol_regime[m] * _ENTRY_WINDOW_DAYS**0.5
        scatter = np.hypot(spread * self._daily_vol[m], window)
        entry = mark * np.exp(scatter * rng.standard_normal(idx.size))
        trend = (self._x - self._x_trend)[m] / (self._daily_vol[m] * 0.2)
        p_long = np.clip(0.5 + 0.1 * np.tanh(trend), 0.4, 0.6)
        side = np.where(rng.random(idx.size) < p_long, 1, -1)
        btc_lev, relative = cohort_draws(rng, idx.size)
        level = np.exp(self._oi_level[m])  # the market's open interest trends
        cap = self._cohort_cap[m] * level
        usd = np.minimum(relative * self._cohort_usd[m] * level, cap)
        whale = usd > 8.0 * self._cohort_usd[m] * level
        mmr = self._mmr[m] * np.where(whale, 2.0, 1.0)
        lev = leverage_for(btc_lev, self._base_vol[m], mmr, self._max_lev[m])
        # High-leverage traders hold for shorter (median 3 h at 10x on BTC, 40 min at 100x:
        # at ~1 h, with 5x the cohorts, BTC's calm hours liquidated 1.26e-4 of its open
        # interest at the median, real 6.85e-5). Low leverage holds longer still (2x: ~10 h),
        # so the open interest they carry turns over slowly, as real open interest does.
        median_life = 3 * 3_600_000 * (10.0 / btc_lev) ** np.where(btc_lev < 10, 0.75, 0.65)
        life = median_life * np.exp(rng.normal(0.0, 1.2, idx.size))
        liq = entry * (1.0 + side * (mmr - 1.0 / lev))
        safe = (liq - mark) * side < 0  # always true unless spread > 0
        if not safe.all():
            book.reopen_ms[idx[~safe]] = now + rng.integers(1, 3_600_000, int((~safe).sum()))
            idx, m, side, lev, usd, mmr, life, liq, entry = (
                v[safe] for v in (idx, m, side, lev, usd, mmr, life, liq, entry)
            )
        book.qty[idx] = usd / entry
        book.side[idx] = side
        book.entry[idx] = entry
        book.lev[idx] = lev
        book.mmr[idx] = mmr
        book.liq[idx] = liq
        book.opened_ms[idx] = now
        book.close_ms[idx] = now + np.maximum(life, 60_000).astype(np.int64)
        book.cohort_id[idx] = np.arange(self._next_cohort, self._next_cohort + idx.size)
        self._next_cohort += idx.size
        self._opened += np.bincount(m, weights=usd / entry, minlength=n)

    def _price_path(self) -> tuple[FloatArray, FloatArray]:
        """Mark prices (steps x markets) assuming no liquidation, and the exogenous log path."""
        rng, n, steps = self._rng, self._n, self._steps_per_block
        cfg = self.config
        # Volatility clustering, stepped by one block.
        minutes = cfg.block_ms / 60_000
        phi_c, phi_i = _VOL_PERSISTENCE_COMMON**minutes, _VOL_PERSISTENCE_OWN**minutes
        self._h_common = phi_c * self._h_common + _VOL_NOISE_COMMON * math.sqrt(
            (1 - phi_c**2) / (1 - _VOL_PERSISTENCE_COMMON**2)
        ) * float(rng.standard_normal())
        self._h = phi_i * self._h + _VOL_NOISE_OWN * math.sqrt(
            (1 - phi_i**2) / (1 - _VOL_PERSISTENCE_OWN**2)
        ) * rng.standard_normal(n)
        var = _H_VAR_COMMON + _H_VAR_OWN
        self._vol_regime = np.exp(self._h_common + self._h - var)
        sigma = self._sigma_step * self._vol_regime
        common = rng.standard_normal(steps)
        own = rng.standard_normal((steps, n))
        # In place (the same operations in the same order, without a block-sized temporary
        # for each): this runs on every block of every market.
        returns = np.multiply(own, np.sqrt(1 - self._rho**2), out=own)
        returns = np.add(np.multiply.outer(common, self._rho), returns, out=returns)
        returns *= sigma
        block_days = cfg.block_ms / DAY_MS
        # Per-market shocks: ~1 a day each; market-wide: ~1 every 4 days.
        n_own = rng.poisson(1.0 * cfg.cascade_rate * n * block_days)
        if n_own:
            at_market = rng.integers(0, n, n_own)
            jump = 0.4 * self._daily_vol[at_market] * _clipped(rng.standard_t(3, n_own))
            np.add.at(self._jump_pending, at_market, jump)
        # A market's own shock unfolds over minutes (exponentially, time constant
        # _JUMP_TAU_MS), as real large moves do: in one step it made BTC's 5-minute moves
        # wilder than real ones while its hourly moves stayed tamer.
        released = np.multiply(self._jump_release[:, None], self._jump_pending)
        returns[0] += released[0]
        returns[1:] += np.subtract(released[1:], released[:-1])
        self._jump_pending = self._jump_pending - released[-1]
        n_common = rng.poisson(0.25 * cfg.cascade_rate * block_days)
        for _ in range(n_common):
            shock_step = int(rng.integers(0, steps))
            returns[shock_step] += 0.25 * self._daily_vol * float(_clipped(rng.standard_t(3)))
        if cfg.crash_start_ms is not None:
            returns = self._crash_path(returns)
        x_path = np.cumsum(returns, axis=0, out=returns)
        x_path = np.add(self._x, x_path, out=x_path)
        impact = self._impact_path.levels(self._perm, self._trans, self._pend)
        marks = np.exp(np.add(x_path, impact, out=impact), out=impact)
        return marks, x_path

    def _apply_shares(self) -> None:
        """Venue shares (of liquidations and of open interest) from their current deviations."""
        self._listing_share = shares.current(self._nominal_share, self._share_noise)
        cum = shares.cumulative(self._listing_share, self._listing_count)
        self._table = dataclasses.replace(self._table, listing_cum=cum)

    def _refill_waits(self, now: int, count: int) -> IntArray:
        """Waits before ``count`` emptied slots refill: exponential, mean 20 minutes (longer
        for hours after a crash episode)."""
        mean = 1_200_000.0 * crash.refill_factor(self._since_crash(now))
        waits: IntArray = self._rng.exponential(mean, count).astype(np.int64)
        return waits

    def _since_crash(self, now: int) -> float:
        """Time since the scheduled crash episode began (-inf when none is scheduled)."""
        start = self.config.crash_start_ms
        return -math.inf if start is None else float(now - start)

    def _crash_path(self, returns: FloatArray) -> FloatArray:
        """The block's exogenous returns with the crash episode's path and volatility added."""
        start = self._since_crash(self._block_start)
        times = start + np.concatenate(([0.0], self._offsets))
        if times[-1] < 0.0 or times[0] >= crash.DURATION_MS:
            return returns
        path = crash.level(times)
        # A step (end - step_ms, end] is in the episode when it ends after its start and
        # begins before its end (the step ending at the start is the warm-up's last).
        inside = (times[1:] > 0.0) & (times[:-1] < crash.DURATION_MS)
        boost = np.where(inside, crash.VOL_BOOST, 1.0)
        shaped: FloatArray = returns * boost[:, None] + np.diff(path)[:, None] * self._crash_beta
        return shaped

    def _liquidate_market(
        self,
        m: int,
        impact_state: tuple[float, float, float],
        marks: FloatArray,
        x_path: FloatArray,
        log: CohortLog,
        start: int,
        first: int,
        triggers: tuple[float, float],
        path_range: tuple[float, float],
        sides: tuple[BoolArray, BoolArray],
    ) -> tuple[float, float, float]:
        """Liquidate market ``m`` through the block, step by step.

        ``impact_state`` is the market's (permanent, transient, pending) impact at the block's
        start; returns it at the block's end. ``marks[:, m]`` is rewritten from each
        liquidation step on with the new impact. ``first`` is the first step whose mark
        reaches ``triggers`` (the highest long and the lowest short liquidation price of the
        market's open cohorts, :meth:`Book.triggers`), ``path_range`` the lowest and highest
        mark of the block's path without this block's impact.
        """
        book, cfg = self.book, self.config
        dt, steps = cfg.step_ms, self._steps_per_block
        a, b = int(book.seg[m]), int(book.seg[m + 1])
        qty, liq, gone = book.qty[a:b], book.liq[a:b], book.gone_ms[a:b]
        depth = float(self._depth[m])
        perm, trans, pend = impact_state
        ref = -1  # the impact state is as of step `ref` (-1: the block's start)
        # The cohorts a mark reaches are a prefix of each side's ladder (longs by liquidation
        # price, highest first; shorts lowest first), so a step costs a binary search, not a
        # scan of the market's slots. Sorted when the mark first reaches that side (until then
        # its trigger is `triggers`', and most blocks reach one side only): those within 2 %
        # beyond the block's path without this block's impact; a cascade carrying the mark
        # further sorts the rest.
        column = marks[:, m]
        long_trig, short_trig = triggers
        ladders: dict[int, Ladder] = {}
        k = first
        while True:
            mark = float(column[k])
            sign = 1 if mark <= long_trig else -1
            ladder = ladders.get(sign)
            if ladder is None:
                ladder = ladders[sign] = self._ladder(a, b, sign, path_range, sides)
            # Every open long with liq >= mark, or every open short with liq <= mark.
            idx = ladder.take(-mark if sign > 0 else mark)
            step_end = start + (k + 1) * dt
            gone[idx] = step_end
            usd = qty[idx] * mark
            total_usd = float(usd.sum())
            impact = -sign * log_move(total_usd, depth, cfg.impact_scale)
            uid = self.runs.record(m, sign, liq[idx], impact, mark, step_end)
            slots = a + idx
            self._taken.append(slots)
            log.add(m, step_end - dt, uid, slots, usd)
            perm, trans, pend = _IMPACT.roll_one(perm, trans, pend, float((k - ref) * dt))
            pend += impact
            ref = k
            k += 1
            if k >= steps:
                break
            ahead = self._impact_path.level(perm, trans, pend, steps - k)
            ahead += x_path[k:, m]
            column[k:] = np.exp(ahead, out=ahead)
            if sign > 0:
                long_trig = -ladder.trigger()
            else:
                short_trig = ladder.trigger()
            rest = column[k:]
            crossed = rest <= long_trig
            crossed |= rest >= short_trig
            later = int(crossed.argmax())
            if not crossed[later]:
                break
            k += later
        return _IMPACT.roll_one(perm, trans, pend, float((steps - 1 - ref) * dt))

    def _ladder(
        self,
        a: int,
        b: int,
        sign: int,
        path_range: tuple[float, float],
        sides: tuple[BoolArray, BoolArray],
    ) -> Ladder:
        """The ladder of the open cohorts of ``sign`` (+1 longs, -1 shorts) in slots
        ``a:b`` (one market), sorted up front to 2 % beyond the block's ``path_range``.

        ``sides`` are the block's open cohorts as it started: until a side's ladder is made, the
        block has liquidated none of that side's cohorts in this market, so they are the
        side's open cohorts now."""
        if sign > 0:
            return Ladder(sides[0][a:b], -self.book.liq[a:b], -0.98 * path_range[0])
        return Ladder(sides[1][a:b], self.book.liq[a:b], 1.02 * path_range[1])


__all__ = ["DAY_MS", "DEFAULT_START_MS", "SimConfig", "SimStep", "Simulator"]
