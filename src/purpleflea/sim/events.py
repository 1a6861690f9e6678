"""From liquidated cohorts to exchange events, one block at a time, vectorized.

A liquidated cohort is many traders' positions; exchanges report them as separate forced
orders. Each cohort becomes ``1 + Poisson(notional / event_mean)`` events (at most
:data:`MAX_EVENTS_PER_COHORT`) whose sizes are log-normal shares of its quantity (sigma
:data:`SHARE_SIGMA`), each
attributed to one of the market's exchanges by its share. The first is timed inside the step
that liquidated the cohort, the others follow over the next seconds (see :class:`CohortLog`).

An event's fill is the exchange's price at its own step: the market's mark then times the
listing's basis (:mod:`purpleflea.sim.basis`), and the order slips by half its own impact (a
sell below, a buy above). Events that follow later are priced when their step comes, so two
exchanges' fills for the same market in the same second differ by their basis, not by how
long ago the positions behind them were liquidated.

An event's ``price`` is what its exchange's feed says, by the exchange's declared price kind
(:func:`purpleflea.venues.registry.price_kind_of`, see :func:`quotes_bankruptcy`): the fill on
fill venues (Binance, Deribit, dYdX, Hyperliquid, Kraken); elsewhere the position's
**bankruptcy** price, the price at which its margin is gone (isolated margin:
``entry * (1 - side / leverage)``; a long's lies under its liquidation price by about the
maintenance margin, so under the market). A cohort's bankruptcy price is fixed, so the events
of one position repeat it while the market moves on, and cohorts of other leverage and tier
liquidated in the same seconds interleave as separate tracks, as OKX's ``bkPx`` do. A
straggler (a position whose liquidation price lies further out, below) has its bankruptcy
price further out by the same move. Cross-margin accounts' positions
(:mod:`purpleflea.sim.accounts`) have no bankruptcy price of their own: the account goes
when its equity falls to its maintenance margin and is bankrupt when its positions lose that
margin as well, so each position is quoted at its step's mark moved ``maintenance margin``
against it. The venue's basis applies to either price (its positions were opened at its own
prices). Real OKX orders come in two tracks a maintenance margin apart: a share
(:data:`LIQUIDATION_TRACK_SHARE`, drawn per event) is quoted at the position's liquidation
price instead (an account's at the mark), the rest at the bankruptcy price.

The maintenance margin is the cohort's own, one per market for every venue
(:mod:`purpleflea.sim.markets`: BTC and ETH 0.4 %, 0.5-1.5 % down the list), doubled for
whale cohorts (a higher tier by notional), not each venue's tier table: it sets the moment
the simulator liquidates a cohort on every venue at once, and a venue's own margin would need
a liquidation moment of its own. The track is drawn last from each block's own generator, so
every other output (times, sizes, fills) is the same as with fills everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from purpleflea.sim.book import Book
from purpleflea.venues import registry

#: The share of a bankruptcy-quoting venue's events quoted at the position's liquidation price
#: instead of its bankruptcy price: real OKX ``bkPx`` (SOURCES.md 5b, 2026-03-04/05) come in
#: exactly two tracks one maintenance margin apart (BTC and ETH: the consecutive same-side
#: orders within 10 s that differ by over 0.15 % differ by 0.389-0.400 % at the quartiles, OKX's
#: 0.4 % first-tier margin), and 44.6 % (BTC) and 50.2 % (ETH) of those pairs switch track:
#: ``2 p (1 - p)`` = 0.475 gives p = 0.39 for the nearer track, drawn per event (each real
#: order is one account's position). Chosen on BTC and ETH; SOL and DOGE (0.62 % apart, 40 %
#: and 39 % switching) were left to check it (``bench/sim_venue_prices.py``).
LIQUIDATION_TRACK_SHARE = 0.39
#: A cohort (one of 5x as many, smaller, since issue 20's timing work) on the smallest market
#: is at most this many events: with 200 per cohort a liquidated cohort was a one-symbol
#: burst, and the stored history's size is its event count (~12 us an event into SQLite).
MAX_EVENTS_PER_COHORT = 16
#: ... and on deeper markets this many times (open interest / $16M) ** MAX_EVENTS_EXP more
#: (BTC 27): their cohorts are larger, and at 16 their events made Binance's size p99 $20.7k
#: (real $13.7k, out of band).
MAX_EVENTS_EXP = 0.0675
#: Log-normal sigma of the events' shares of a cohort: few events per cohort with wide shares
#: keep Binance's sizes (median $171, mean $1.2k: a long tail of large orders and many small).
SHARE_SIGMA = 1.6
#: No event of a liquidated cohort comes later than this after its liquidation (below the
#: truth's cascade gap, so a finished run has all its events).
MAX_SPREAD_MS = 30_000
#: Share of a cohort's later events that are stragglers: positions of the cohort whose own
#: liquidation price lies further out (cross margin, added margin), filled when the mark goes
#: a further random move (exponential, mean the market's typical 10 s move) the same way, in
#: the step it gets there; when the block's computed path does not get there (or ends), an
#: exponential delay of mean STRAGGLER_MS. They interleave with other symbols' events (and
#: come in the same seconds as theirs when a common move carries several markets) instead of
#: extending a one-symbol streak. A quarter since cross-margin accounts' closes
#: (:mod:`purpleflea.sim.accounts`) fill the hour between sweeps: with 40 % as well, Binance's
#: thinned stream carried 0.43 events/s on tuning seeds 10-13 (real 0.297).
STRAGGLER_SHARE = 0.25
STRAGGLER_MS = 15_000.0

#: The run of events that belong to none (:meth:`CohortLog.add_timed`); runs count from 1.
NO_RUN = 0

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(slots=True)
class RawBlock:
    """One block's liquidation events as arrays, sorted by time (the fast path)."""

    start_ms: int
    end_ms: int
    first_n: int  # event number of the first event (ids are sim-<seed>-<n>)
    ts: IntArray
    market: IntArray
    listing: IntArray  # index into the market's listings
    side: IntArray  # +1 a long was liquidated, -1 a short
    price: FloatArray
    quantity: FloatArray
    run: IntArray  # uid of the run (truth) the event belongs to
    cohort: IntArray  # id of the liquidated cohort (TruePosition.id)
    #: The price the order filled at: ``price`` itself where the exchange sends fills, the
    #: market's where it sends a bankruptcy or order price (see the module docstring).
    fill: FloatArray

    @property
    def size_usd(self) -> FloatArray:
        """Each event's size as its exchange reports it (its ``price`` x quantity)."""
        return self.price * self.quantity

    @property
    def filled_usd(self) -> FloatArray:
        """Each event's size at the price it filled at (what the market absorbed)."""
        return self.fill * self.quantity


def quotes_bankruptcy(exchange_id: str) -> bool:
    """Whether the simulator quotes ``exchange_id``'s events at the position's bankruptcy
    price rather than its fill, from the exchange's declared price kind.

    ``bankruptcy`` (Bybit, OKX, HTX) is that price. ``order`` is the liquidation order's limit
    price: BitMEX's engine places it at the bankruptcy price (shared/EXCHANGES.md, BitMEX);
    Gate documents only "order price", and its ``liq_orders`` example (a 25x long from 3536.12,
    liquidation price 3421.54, mark 3420.27) has ``order_price`` 3405, 0.45 % under the mark
    and 0.30 % above that long's bankruptcy price (3394.68), against a fill of 3424: a limit
    near the bankruptcy price, quoted here at it. ``liquidation`` (Bitget) says no more than
    "liquidation price"; with no evidence that it is a fill it is quoted as a bankruptcy
    price, the far side of the choice for anything that reads prices across venues."""
    return registry.price_kind_of(exchange_id) != "fill"


@dataclass(frozen=True, slots=True)
class MarketTable:
    """Per-market constants the splitter needs, as arrays indexed by market."""

    event_mean_usd: FloatArray
    listing_cum: FloatArray  # (markets, max listings) cumulative shares, padded with 1.0
    price_scale: FloatArray  # 10 ** decimals: prices are rounded to 5 significant digits
    depth_usd: FloatArray  # 1% depth: an order's slippage is half its own impact
    impact_scale: float
    max_events: IntArray  # the most events a liquidated cohort is reported as
    #: The market's typical log move in 10 s (its daily volatility scaled): how much further
    #: the mark goes before a straggler fills (see :class:`CohortLog`).
    straggler_move: FloatArray
    #: (markets, max listings): the listing's exchange quotes bankruptcy prices
    #: (:func:`quotes_bankruptcy`); padding is False.
    bankrupt_quoted: npt.NDArray[np.bool_]


_COLUMNS = (
    "ts",
    "market",
    "listing",
    "side",
    "quantity",
    "run",
    "cohort",
    "bankrupt",
    "liquidation",
)


class CohortLog:
    """Liquidated cohorts in liquidation order, turned into events block by block.

    A cohort's first event is reported inside the step that liquidated it; the rest follow
    as the liquidation engine works the position (exponential delays, mean ``spread_ms``;
    a :data:`STRAGGLER_SHARE` of them mean :data:`STRAGGLER_MS`; all capped at
    :data:`MAX_SPREAD_MS`), so events due after the block's end are carried into the next
    block's output.
    """

    def __init__(self, spread_ms: float) -> None:
        self._spread = spread_ms
        # One entry per add(): its step's market, step start and run, repeated per cohort
        # only when the block is split, and its cohorts' slots and notional. Their columns
        # are read from the book then too, in one pass for the block: per liquidation step,
        # numpy's cost per call was most of the liquidation loop's.
        self._steps: list[tuple[int, int, int]] = []
        self._slots: list[IntArray] = []
        self._usd: list[FloatArray] = []
        self._timed: list[dict[str, npt.NDArray[Any]]] = []
        self._carried: dict[str, npt.NDArray[Any]] | None = None

    def add(self, market: int, step_start: int, run: int, slots: IntArray, usd: FloatArray) -> None:
        """Cohorts of one market liquidated in the step starting at ``step_start``, all of run
        ``run``: their book slots (which keep them until the block is flushed) and notional at
        the mark."""
        self._steps.append((market, step_start, run))
        self._slots.append(slots)
        self._usd.append(usd)

    def add_timed(
        self,
        ts: IntArray,
        market: IntArray,
        listing: IntArray,
        side: IntArray,
        qty: FloatArray,
        cohort: IntArray,
        bankrupt: FloatArray,
        liquidation: FloatArray,
    ) -> None:
        """Events reported as they are, one each, at ``ts`` (within the block being
        computed): cross-margin accounts' positions (:mod:`purpleflea.sim.accounts`), with
        the prices a bankruptcy-quoting venue gives them (in the mark's units, either track).
        Their run is :data:`NO_RUN`: a single account's close is no part of a cascade."""
        self._timed.append(
            {
                "ts": ts,
                "market": market,
                "listing": listing,
                "side": side,
                "quantity": qty,
                "run": np.full(ts.size, NO_RUN, dtype=np.int64),
                "cohort": cohort,
                "bankrupt": bankrupt,
                "liquidation": liquidation,
            }
        )

    def flush(
        self,
        table: MarketTable,
        book: Book,
        rng: np.random.Generator,
        *,
        step_ms: int,
        start_ms: int,
        end_ms: int,
        first_n: int,
        marks: FloatArray,
        basis: FloatArray,
    ) -> RawBlock:
        """The events due in ``(start_ms, end_ms]``, sorted by time (ties: liquidation order),
        priced at ``marks`` (steps x markets: each step's mark) times ``basis`` (markets x
        listings, log units)."""
        columns = self._split(table, book, rng, step_ms, start_ms, marks) if self._steps else None
        self._steps, self._slots, self._usd = [], [], []
        for timed in self._timed:
            columns = (
                timed
                if columns is None
                else {k: np.concatenate((columns[k], timed[k])) for k in _COLUMNS}
            )
        self._timed = []
        if self._carried is not None:
            carried, self._carried = self._carried, None
            columns = (
                carried
                if columns is None
                else {k: np.concatenate((carried[k], columns[k])) for k in _COLUMNS}
            )
        if columns is None:
            none_i, none_f = np.zeros(0, dtype=np.int64), np.zeros(0)
            return RawBlock(
                start_ms, end_ms, first_n, *(none_i,) * 4, none_f, none_f, none_i, none_i, none_f
            )
        due = columns["ts"] <= end_ms
        if not due.all():
            self._carried = {k: v[~due] for k, v in columns.items()}
        order = np.argsort(columns["ts"][due], kind="stable")
        out = {k: v[due][order] for k, v in columns.items()}
        market = out["market"]
        step = (out["ts"] - start_ms - 1) // step_ms
        price = marks[step, market] * np.exp(basis[market, out["listing"]])
        # Half the order's own impact (linear, then square root past the 1% depth).
        ratio = out["quantity"] * price / table.depth_usd[market]
        own = 0.01 * table.impact_scale * np.where(ratio <= 1.0, ratio, np.sqrt(ratio))
        filled = price * np.exp(-0.5 * out["side"] * own)
        scale = table.price_scale[market]
        fill = np.round(filled * scale) / scale
        # Drawn last, from the block's own generator: the track changes nothing else.
        on_liquidation = rng.random(market.size) < LIQUIDATION_TRACK_SHARE
        liquidation, bankrupt = out.pop("liquidation"), out.pop("bankrupt")
        bankrupt = np.where(on_liquidation, liquidation, bankrupt)
        bankrupt *= np.exp(basis[market, out["listing"]])
        quoted = np.where(
            table.bankrupt_quoted[market, out["listing"]],
            np.round(bankrupt * scale) / scale,
            fill,
        )
        return RawBlock(
            start_ms=start_ms, end_ms=end_ms, first_n=first_n, price=quoted, fill=fill, **out
        )

    def _split(
        self,
        table: MarketTable,
        book: Book,
        rng: np.random.Generator,
        step_ms: int,
        start_ms: int,
        marks: FloatArray,
    ) -> dict[str, npt.NDArray[Any]]:
        sizes = [slots.size for slots in self._slots]
        market, step_start, run = (
            np.repeat(np.array(column, dtype=np.int64), sizes)
            for column in zip(*self._steps, strict=True)
        )
        slots = np.concatenate(self._slots)
        usd = np.concatenate(self._usd)
        side, qty, cohort = book.side[slots], book.qty[slots], book.cohort_id[slots]
        # Isolated margin: a position is bankrupt when the price has moved 1 / leverage.
        bankrupt = book.entry[slots] * (1.0 - side / book.lev[slots])
        liquidation = book.liq[slots]
        count = np.minimum(
            1 + rng.poisson(usd / table.event_mean_usd[market]), table.max_events[market]
        )
        owner = np.repeat(np.arange(market.size), count)
        weight = rng.lognormal(0.0, SHARE_SIGMA, owner.size)
        weight /= np.bincount(owner, weights=weight)[owner]
        event_market = market[owner]
        draw = rng.random(owner.size)
        listing = (draw[:, None] >= table.listing_cum[event_market]).sum(axis=1)
        straggler = rng.random(owner.size) < STRAGGLER_SHARE
        mean_delay = np.where(straggler, STRAGGLER_MS, self._spread)
        delay = np.minimum(rng.exponential(mean_delay), MAX_SPREAD_MS)
        first = np.ones(owner.size, dtype=bool)
        first[1:] = owner[1:] != owner[:-1]
        straggler &= ~first
        event_bankrupt, event_liquidation = bankrupt[owner], liquidation[owner]
        if straggler.any():
            at = event_market[straggler]
            further = table.straggler_move[at] * rng.exponential(1.0, at.size)
            # Its liquidation price lies `further` out, and its bankruptcy price with it.
            event_bankrupt[straggler] *= np.exp(-side[owner][straggler] * further)
            event_liquidation[straggler] *= np.exp(-side[owner][straggler] * further)
            moved = _when_moved(
                marks,
                (step_start[owner][straggler] - start_ms) // step_ms,
                at,
                side[owner][straggler],
                further,
                MAX_SPREAD_MS // step_ms,
            )
            found = moved >= 0
            picked = np.flatnonzero(straggler)[found]
            delay[picked] = moved[found] * step_ms
        delay[first] = 0.0
        jitter = rng.integers(1, step_ms + 1, owner.size)
        return {
            "ts": step_start[owner] + jitter + delay.astype(np.int64),
            "market": event_market,
            "listing": listing,
            "side": side[owner],
            "quantity": qty[owner] * weight,
            "run": run[owner],
            "cohort": cohort[owner],
            "bankrupt": event_bankrupt,
            "liquidation": event_liquidation,
        }


def _when_moved(
    marks: FloatArray,
    step: IntArray,
    market: IntArray,
    side: IntArray,
    move: FloatArray,
    window: int,
) -> IntArray:
    """For each liquidated position (liquidated at ``step`` of the block, on ``market``,
    ``side`` +1 long / -1 short): how many steps later the block's mark first goes ``move``
    (log) further in the liquidation's direction (down for a long), within ``window`` steps;
    -1 when it does not within the block's computed path."""
    steps, markets = marks.shape
    # A cohort's stragglers, and the cohorts a market liquidated at one step, share their
    # path: its logarithms are taken once per (step, market) (they were most of the split).
    shared, which = np.unique(step * markets + market, return_inverse=True)
    at_step, at_market = shared // markets, shared % markets
    ahead = at_step[:, None] + np.arange(1, window + 1)[None, :]
    inside = ahead < steps
    path = np.log(marks[np.minimum(ahead, steps - 1), at_market[:, None]])
    start = np.log(marks[at_step, at_market])
    beyond = (start[:, None] - path)[which] * side[:, None] >= move[:, None]
    beyond &= inside[which]
    first: IntArray = np.where(beyond.any(axis=1), beyond.argmax(axis=1) + 1, -1)
    return first


def max_events(oi_usd: FloatArray) -> IntArray:
    """The most events a liquidated cohort of a market with ``oi_usd`` is reported as."""
    scale = np.maximum(oi_usd / 16e6, 1.0) ** MAX_EVENTS_EXP
    most: IntArray = np.round(MAX_EVENTS_PER_COHORT * scale).astype(np.int64)
    return most
