"""Liquidation heatmaps: where open interest would be force-liquidated, by price, per market.

Nobody publishes where each trader's liquidation price is, so this is a *model* fed only by what
every exchange does publish: one side's open interest and the mark price
(:class:`~purpleflea.model.MarketSnapshot`). It is pure (no I/O, no clock) and deterministic;
the live server, the simulator and backtests drive the same code.

How it estimates (per instrument, summed per market):

- **Open.** Open interest is one side: ``OI`` coins of longs face ``OI`` coins of shorts. The
  model keeps, per side, coins of positions by *liquidation price* on a fine log-price grid
  (0.1 % per bin; two positions whose liquidation prices share a bin behave identically below,
  so summing them loses nothing but that resolution). When the snapshot's open interest is more
  than the model holds on a side, the difference was opened since the last snapshot: its entry
  prices are spread evenly over the price range since then (``low``..``high`` if given, else
  the previous and current mark), and its liquidation prices placed at log-distances from each
  entry drawn from the first-sight shape fitted on real positions (``opened``, by default
  :data:`FIRST_SIGHT`; better than the tiers held out on the measured maps and on the
  simulator, though not better than the first sight alone: docs/heatmap.md, section 6). With
  ``opened=None`` (or for the part beyond ``opened_share``) it is split across the leverage
  tiers of :class:`HeatmapConfig` and placed at each tier's liquidation price (isolated
  margin, linear contract)::

      long:  entry * (1 - 1/L) / (1 - mmr)        short: entry * (1 + 1/L) / (1 + mmr)

- **Sweep.** A long is gone once the path's low reaches its liquidation price, a short once the
  high does: every bin beyond the range since the last snapshot is emptied (partly, for the bin
  the extreme falls in). Sweeping happens before opening, so positions opened in an interval
  are never swept by that same interval.
- **Close.** When open interest is less than the model holds on a side, the side is scaled down
  *proportionally* (every tier and price loses the same fraction). That is what a population of
  traders who each close at random times looks like; "oldest first" would need ages the
  exchanges do not publish.
- **Turnover.** Open interest hides churn (one trader closes, another opens):
  ``turnover_per_hour`` of each side is closed per hour and, open interest being unchanged,
  reopened at the interval's prices.
- **Still open.** A position open at the snapshot cannot have its liquidation price beyond the
  mark, so each tier's entries are limited to those that leave it on the safe side.
- **First sight.** The open interest that exists when an instrument is first seen was opened
  at unknown prices and leverages: its liquidation prices are placed at log-distances from the
  mark drawn from a gamma distribution fitted on real positions (:data:`FIRST_SIGHT`), out to
  ``reach``. ``first_sight=None`` restores the earlier flat spread of entries within
  ``warm_start_pct`` of the mark, through the tiers (kept for comparison).
- **Trim.** Books only widen as price wanders; every hour (by snapshot time) each book drops
  the bins at its ends that hold together no more than ``negligible_share`` of its notional
  (emptied by sweeps, or decayed by turnover), so a market that went far and came back does
  not carry the far bins for ever.
- **Retired.** An instrument with no snapshot for ``retire_after_h`` (by snapshot time) is
  dropped: an expired future or a delisted contract (:meth:`HeatmapModel.take_retired`).

The leverage mix and maintenance rates are assumptions, not facts (docs/heatmap.md): the
tiers' default is a mix *by notional*, most of it at 2x-10x (see :data:`DEFAULT_TIERS`); the
default configuration places nothing through them (``opened_share`` 1).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec
import numpy as np
import numpy.typing as npt

from purpleflea.formatting import format_price as price_text
from purpleflea.formatting import format_usd, step_decimals
from purpleflea.model import Cluster, Heatmap, MarketSnapshot, Side

Array = npt.NDArray[np.float64]

#: Width of one bin of the internal grid in log-price: 0.1 %. Bin ``i`` covers prices
#: ``[exp(i * STEP), exp((i + 1) * STEP))`` on every instrument, so books of one market add.
STEP = math.log(1.001)
#: Arrays grow by at least this many bins at a time (fewer reallocations as price wanders).
_GROW = 256
SIDES: tuple[Side, ...] = ("long", "short")
#: More buckets than this in one heatmap request is a caller error, not a chart.
MAX_BUCKETS = 10_000


class LeverageTier(msgspec.Struct, frozen=True):
    """One leverage level of the assumed mix: its share of new open interest and the
    maintenance margin rate positions at that leverage pay."""

    leverage: float
    weight: float
    maintenance: float


#: The default mix: shares of open interest *by notional* (weights sum to 1). Open interest is
#: money, so what matters is where the dollars sit, not how many traders pick a setting. Two
#: public facts set it: (1) every large exchange's leverage brackets cap leverage by position
#: notional (Binance BTCUSDT: 125x only for the first ~$50k-$300k, 20x by ~$10M-$50M, 5x and
#: below for the largest positions), and (2) position sizes are heavy-tailed, so most notional
#: is in large positions. Hence dollars concentrate at 2x-10x while the popular retail settings
#: (20x-125x) hold little notional. Chosen once from that reasoning, not fitted to any truth
#: (docs/heatmap.md). Maintenance: 0.5 % (first brackets), 0.4 % at 125x as on Binance.
DEFAULT_TIERS: tuple[LeverageTier, ...] = (
    LeverageTier(2, 0.25, 0.005),
    LeverageTier(3, 0.20, 0.005),
    LeverageTier(5, 0.20, 0.005),
    LeverageTier(10, 0.20, 0.005),
    LeverageTier(20, 0.07, 0.005),
    LeverageTier(25, 0.03, 0.005),
    LeverageTier(50, 0.03, 0.005),
    LeverageTier(75, 0.007, 0.005),
    LeverageTier(100, 0.008, 0.005),
    LeverageTier(125, 0.005, 0.004),
)

#: The previous default: a retail mix around 10-25x (closer to a mix by *number* of positions).
#: Kept for comparison (bench/heatmap_eval.py --tiers retail).
RETAIL_TIERS: tuple[LeverageTier, ...] = (
    LeverageTier(2, 0.04, 0.005),
    LeverageTier(3, 0.06, 0.005),
    LeverageTier(5, 0.12, 0.005),
    LeverageTier(10, 0.25, 0.005),
    LeverageTier(20, 0.18, 0.005),
    LeverageTier(25, 0.12, 0.005),
    LeverageTier(50, 0.12, 0.005),
    LeverageTier(75, 0.04, 0.005),
    LeverageTier(100, 0.05, 0.005),
    LeverageTier(125, 0.02, 0.004),
)


class FirstSight(msgspec.Struct, frozen=True):
    """Where open interest found at an instrument's first sight is placed, per side: the
    log-distance ``x = |ln(liquidation / mark)|`` of its liquidation prices follows, by
    notional, a gamma distribution of ``shape`` and ``scale`` (density ``x^(shape-1)
    e^(-x/scale)``), cut at ``reach`` and renormalized so the side holds all of the open
    interest. ``shape`` 1 is the exponential: the closer to the mark, the more."""

    shape: float
    scale: float
    reach: float = math.log(2.0)


#: The first-sight shape, fitted by ``bench/heatmap_prior.py`` (weighted maximum likelihood)
#: on the 131 real Hyperliquid BTC positions with a liquidation price of
#: ``wangrdotcom_wangrcli/whales_btc.json`` (2026-01-04; shared/data/real, not in the package):
#: each position's liquidation log-distance from its own mark (entry + unrealized PnL / size),
#: weighted by notional, long and short pooled (one snapshot's asymmetry is that day's trend,
#: which a first sight elsewhere knows nothing of). Mode (shape - 1) x scale = 4.9 % from the
#: mark, mean 32 %. Judged on the measured maps of docs/heatmap.md, which the fit never saw.
#: The reach, ln 2 (longs down to half the mark, shorts up to twice it), is the 2x tier's.
FIRST_SIGHT = FirstSight(shape=1.18, scale=0.273)


class HeatmapConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Model assumptions and presentation defaults.

    ``range_pct``/``buckets`` give a heatmap's default view (mark +/- ``range_pct`` %, about
    ``buckets`` buckets of a round size). A bucket is *dense* when it holds at least
    ``cluster_factor`` times the side's mean bucket in the view; a cluster is a run of dense
    buckets holding at least ``cluster_min_share`` of the side's notional in the view, and at
    most ``max_clusters`` per side are reported, largest first.
    """

    tiers: tuple[LeverageTier, ...] = DEFAULT_TIERS
    #: A listing with no snapshot for this long (by snapshot time, against the newest any
    #: listing had) is dropped: an expired future or a delisted contract. The pollers answer
    #: each listing every minute or so; live, every expiry and delisting otherwise stayed
    #: for ever (~60 KB a listing with the cascade engine's share, bench/live_memory.py).
    retire_after_h: float = 24.0
    #: How open interest present at an instrument's first sight is placed; ``None``: the
    #: earlier flat spread of entries within ``warm_start_pct`` of the mark, through the tiers.
    first_sight: FirstSight | None = FIRST_SIGHT
    warm_start_pct: float = 3.0
    #: How open interest opened since the last snapshot (and turnover's reopened part) places
    #: its liquidation prices: ``opened_share`` of it at log-distances from each entry drawn
    #: from ``opened`` (the fitted real shape, as at first sight), the rest through ``tiers``.
    #: ``None`` or a share of 0: all through the tiers (the default until 2026-12-08, with
    #: turnover 0.1 an hour; docs/heatmap.md, section 6). By default all of it by the shape,
    #: so the tiers place nothing.
    opened: FirstSight | None = FIRST_SIGHT
    opened_share: float = 1.0
    #: Hourly, the bins at a book's two ends holding together at most this share of its
    #: notional are dropped (0: never). Results move by at most this share.
    negligible_share: float = 1e-9
    #: Chosen with the shape on the measured maps (docs/heatmap.md, section 6); 0.1 before.
    turnover_per_hour: float = 0.3
    range_pct: float = 20.0
    buckets: int = 100
    cluster_factor: float = 2.0
    cluster_min_share: float = 0.05
    max_clusters: int = 3

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("HeatmapConfig.tiers: at least one leverage tier is needed")
        for tier in self.tiers:
            if not (tier.leverage >= 1 and tier.weight > 0):
                raise ValueError(f"HeatmapConfig.tiers: bad leverage or weight in {tier!r}")
            if not 0 <= tier.maintenance < 1 / tier.leverage:
                raise ValueError(
                    f"HeatmapConfig.tiers: maintenance {tier.maintenance} must be in "
                    f"[0, 1/leverage) for {tier!r}"
                )
        for what in ("first_sight", "opened"):
            shape = getattr(self, what)
            if shape is None:
                continue
            for name in ("shape", "scale", "reach"):
                value = getattr(shape, name)
                if not (math.isfinite(value) and value > 0):
                    raise ValueError(
                        f"HeatmapConfig.{what}.{name} must be a positive number, got {value}"
                    )
        if not (math.isfinite(self.opened_share) and 0 <= self.opened_share <= 1):
            raise ValueError(
                f"HeatmapConfig.opened_share must be in [0, 1], got {self.opened_share}"
            )
        if not (math.isfinite(self.negligible_share) and 0 <= self.negligible_share < 1e-3):
            raise ValueError(
                f"HeatmapConfig.negligible_share must be in [0, 0.001), got {self.negligible_share}"
            )
        if not (math.isfinite(self.turnover_per_hour) and self.turnover_per_hour >= 0):
            raise ValueError(
                f"HeatmapConfig.turnover_per_hour must be >= 0, got {self.turnover_per_hour}"
            )
        positive = (
            "retire_after_h",
            "warm_start_pct",
            "range_pct",
            "buckets",
            "cluster_factor",
            "max_clusters",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(
                    f"HeatmapConfig.{name} must be positive, got {getattr(self, name)}"
                )


_HOUR_MS = 3_600_000


def _grid(price: float) -> float:
    """Position of a price on the grid, in bins (fractional)."""
    return math.log(price) / STEP


def _spread(held: Array, offset: int, a: float, b: float, amount: float) -> None:
    """Add ``amount`` spread evenly over grid positions ``[a, b]`` to ``held`` (whose index 0
    is bin ``offset``); an empty or inverted range puts it all in the bin of ``a``."""
    first = math.floor(a)
    if b - a < 1e-9:
        held[first - offset] += amount
        return
    last = math.floor(b)
    at = first - offset
    if last == first:
        held[at] += amount
        return
    # Most ranges cover a few bins: scalar arithmetic beats array calls here (the hot path of
    # every snapshot, ten tiers a side).
    per_bin = amount / (b - a)
    held[at] += (first + 1 - a) * per_bin
    inner = last - first - 1
    if inner == 1:
        held[at + 1] += per_bin
    elif inner > 1:
        held[at + 1 : at + 1 + inner] += per_bin
    held[last - offset] += (b - last) * per_bin


def _first_sight_shares(first: float, reach: float, shape: FirstSight) -> Array:
    """Shares of a first-sight side per grid bin, going outward from the mark's bin.

    Distances are in bins from the mark: the first bin covers ``[0, first]`` (the part of the
    mark's own bin on the side), each next one a whole bin further, the last cut at ``reach``.
    Each bin gets the gamma density at its middle times its width (bins are 0.1 %, the
    density varies over percents), and the shares are normalized to sum to 1.
    """
    count = max(0, math.ceil(reach - first))
    edges = np.minimum(np.concatenate(([0.0], first + np.arange(count + 1.0))), reach)
    widths = np.diff(edges)
    # A zero-width first bin (the mark on a bin edge) has its middle at 0, where a shape
    # under 1 is infinite: any positive middle does, its width is 0.
    middle = np.maximum((edges[:-1] + edges[1:]) / 2 * STEP, 1e-12)
    mass = widths * middle ** (shape.shape - 1) * np.exp(-middle / shape.scale)
    shares: Array = mass / mass.sum()
    return shares


@dataclass
class _Book:
    """One instrument's estimated positions: coins by liquidation-price bin, per side."""

    start: int
    mark: float
    ts: int
    open_interest: float
    long: Array = field(default_factory=lambda: np.zeros(0))
    short: Array = field(default_factory=lambda: np.zeros(0))

    def side(self, side: Side) -> Array:
        return self.long if side == "long" else self.short

    def cover(self, first: int, end: int) -> None:
        """Grow the arrays so bins ``[first, end)`` exist."""
        size = len(self.long)
        before = max(0, self.start - first)
        after = max(0, end - (self.start + size))
        if before or after:
            before = before and before + _GROW
            after = after and after + _GROW
            self.long = np.pad(self.long, (before, after))
            self.short = np.pad(self.short, (before, after))
            self.start -= before

    def trim(self, share: float) -> bool:
        """Drop the bins at each end holding together at most ``share / 2`` of the book's
        notional, keeping ``_GROW`` bins of slack; ``True`` when the arrays were cut (only when
        that saves at least ``_GROW`` bins)."""
        size = len(self.long)
        if size <= _GROW:
            return False
        # Notional up to a common factor: coins x price relative to the first bin.
        usd = (self.long + self.short) * np.exp(np.arange(size) * STEP)
        total = float(usd.sum())
        if not total > 0:
            return False
        limit = share / 2 * total
        first = int(np.searchsorted(np.cumsum(usd), limit, side="right"))
        dropped_end = int(np.searchsorted(np.cumsum(usd[::-1]), limit, side="right"))
        low = max(0, first - _GROW)
        high = min(size, size - dropped_end + _GROW)
        if low + size - high < _GROW:
            return False
        self.long = self.long[low:high].copy()
        self.short = self.short[low:high].copy()
        self.start += low
        return True

    def sweep(self, low: float, high: float) -> None:
        """Remove longs liquidated at or above ``low`` and shorts at or below ``high``."""
        x = _grid(low) - self.start
        k = math.floor(x)
        if k < len(self.long):
            if k < 0:
                self.long[:] = 0.0
            else:
                self.long[k + 1 :] = 0.0
                self.long[k] *= x - k  # the part of the bin below the low survives
        x = _grid(high) - self.start
        k = math.floor(x)
        if k >= 0:
            if k >= len(self.short):
                self.short[:] = 0.0
            else:
                self.short[:k] = 0.0
                self.short[k] *= 1.0 - (x - k)


@dataclass
class _View:
    """A market's books summed: cumulative USD at every grid edge from ``start``."""

    start: int
    long_cdf: Array
    short_cdf: Array
    mark: float
    ts: int

    def usd_between(self, side: Side, low: Array, high: Array) -> Array:
        cdf = self.long_cdf if side == "long" else self.short_cdf
        positions = np.arange(len(cdf), dtype=np.float64)
        at = np.interp(np.log(np.concatenate([low, high])) / STEP - self.start, positions, cdf)
        usd: Array = np.maximum(at[len(low) :] - at[: len(low)], 0.0)
        return usd


class HeatmapModel:
    """Per-market liquidation heatmaps estimated from open-interest snapshots.

    Feed every snapshot (any exchange, any order of instruments) to :meth:`on_snapshot`;
    instruments of one ``market`` are modelled separately and summed.
    """

    def __init__(self, config: HeatmapConfig | None = None) -> None:
        self.config = config or HeatmapConfig()
        tiers = self.config.tiers
        total = sum(tier.weight for tier in tiers)
        self._weights = [tier.weight / total for tier in tiers]
        self._shift: dict[Side, list[float]] = {
            "long": [
                math.log((1 - 1 / t.leverage) / (1 - t.maintenance)) / STEP
                if t.leverage > 1
                # 1x long with no maintenance is never liquidated: park it far below.
                else math.log(1e-9) / STEP
                for t in tiers
            ],
            "short": [math.log((1 + 1 / t.leverage) / (1 + t.maintenance)) / STEP for t in tiers],
        }
        opened = self.config.opened
        share = self.config.opened_share if opened is not None else 0.0
        #: Share of new open interest placed by the shape, and the shape's shares per bin of
        #: distance from the entry (bin ``j`` at ``j + 0.5`` bins).
        self._opened_share = share
        self._opened: Array = (
            _first_sight_shares(1.0, opened.reach / STEP, opened)
            if opened is not None and share > 0
            else np.zeros(0)
        )
        self._books: dict[str, dict[tuple[str, str], _Book]] = {}
        self._views: dict[str, _View] = {}
        #: The newest snapshot time applied, and when listings are next looked at for retiring.
        self._newest_ts = 0
        self._next_retire_ts = 0
        # (market, exchange, symbol) dropped, for take_retired(); bounded for a model nobody
        # asks (backtests, benchmarks): the server's feed asks after every snapshot.
        self._retired: deque[tuple[str, str, str]] = deque(maxlen=4096)

    # -- input ---------------------------------------------------------------------------

    def on_snapshot(
        self, snapshot: MarketSnapshot, *, low: float | None = None, high: float | None = None
    ) -> bool:
        """Update the market with one instrument's open interest and mark.

        ``low``/``high`` are the price extremes since this instrument's previous snapshot when
        known (a candle's low and high); otherwise the path is taken as the straight line from
        the previous mark. Returns ``False`` (and changes nothing) for a snapshot older than
        the last one applied for the instrument. Raises ``ValueError`` naming the bad field.
        """
        mark, coins = snapshot.mark_price, snapshot.open_interest
        where = f"snapshot {snapshot.exchange} {snapshot.symbol}"
        if not (math.isfinite(mark) and mark > 0):
            raise ValueError(f"{where}: mark_price must be a positive number, got {mark}")
        if not (math.isfinite(coins) and coins >= 0):
            raise ValueError(f"{where}: open_interest must be >= 0, got {coins}")
        for name, value in (("low", low), ("high", high)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{where}: {name} must be a positive number, got {value}")
        if low is not None and high is not None and low > high:
            raise ValueError(f"{where}: low {low} is above high {high}")

        books = self._books.setdefault(snapshot.market, {})
        key = (snapshot.exchange, snapshot.symbol)
        book = books.get(key)
        if book is not None and snapshot.ts < book.ts:
            return False
        self._views.pop(snapshot.market, None)
        if book is None:
            book = books[key] = _Book(math.floor(_grid(mark)), mark, snapshot.ts, coins)
            self._first_sight(book, coins, mark)
        else:
            path_low = min(mark, book.mark, low if low is not None else mark)
            path_high = max(mark, book.mark, high if high is not None else mark)
            book.sweep(path_low, path_high)
            # Turnover: some positions were closed and others opened in their place, which
            # leaves open interest unchanged; the closed part goes here, the reopened part is
            # opened below at the interval's prices.
            hours = max(snapshot.ts - book.ts, 0) / 3_600_000
            kept = math.exp(-self.config.turnover_per_hour * hours)
            for side in SIDES:
                held = book.side(side)
                held *= kept
                total = float(held.sum())
                if coins < total:
                    held *= coins / total
                elif coins > total:
                    self._open(book, side, coins - total, path_low, path_high, mark)
        book.mark, book.ts, book.open_interest = mark, snapshot.ts, coins
        if snapshot.ts > self._newest_ts:
            self._newest_ts = snapshot.ts
            if snapshot.ts >= self._next_retire_ts:  # hourly (by default): every listing
                retire_ms = round(self.config.retire_after_h * _HOUR_MS)
                self._retire(snapshot.ts - retire_ms)
                self._trim()
                self._next_retire_ts = snapshot.ts + max(1, retire_ms // 24)
        return True

    def _first_sight(self, book: _Book, coins: float, mark: float) -> None:
        """Place the open interest a new instrument already has (see :class:`FirstSight`)."""
        shape = self.config.first_sight
        if shape is None:  # the earlier flat spread of entries, through the tiers
            spread = 1 + self.config.warm_start_pct / 100
            for side in SIDES:
                self._open(book, side, coins, mark / spread, mark * spread, mark)
            return
        m = _grid(mark)
        at = math.floor(m)
        reach = shape.reach / STEP
        longs = _first_sight_shares(m - at, reach, shape)
        shorts = _first_sight_shares(at + 1 - m, reach, shape)
        book.cover(at + 1 - len(longs), at + len(shorts))
        at -= book.start
        book.long[at + 1 - len(longs) : at + 1] += coins * longs[::-1]
        book.short[at : at + len(shorts)] += coins * shorts

    def _trim(self) -> None:
        """Cut every book's negligible ends (``HeatmapConfig.negligible_share``)."""
        share = self.config.negligible_share
        if share <= 0:
            return
        for market, books in self._books.items():
            if any([book.trim(share) for book in books.values()]):
                self._views.pop(market, None)

    def _retire(self, before_ts: int) -> None:
        """Drop the listings whose last snapshot is older than ``before_ts``, and the markets
        left with none."""
        for market, books in list(self._books.items()):
            gone = [key for key, book in books.items() if book.ts < before_ts]
            if not gone:
                continue
            for key in gone:
                del books[key]
                self._retired.append((market, *key))
            self._views.pop(market, None)
            if not books:
                del self._books[market]

    def take_retired(self) -> list[tuple[str, str, str]]:
        """The ``(market, exchange, symbol)`` listings dropped since the last call."""
        retired = list(self._retired)
        self._retired.clear()
        return retired

    def _open(
        self, book: _Book, side: Side, coins: float, low: float, high: float, mark: float
    ) -> None:
        """Add ``coins`` of new positions with entries spread evenly over ``[low, high]``.

        A position still open at ``mark`` cannot have its liquidation price beyond it, so each
        tier's entries are limited to those whose liquidation price is on the safe side of the
        mark (the tier keeps its weight).
        """
        a, b, m = _grid(low), _grid(high), _grid(mark)
        shaped = self._opened_share
        if shaped > 0:
            self._open_shaped(book, side, coins * shaped, a, b, m)
            if shaped >= 1:
                return
            coins *= 1 - shaped
        if side == "long":
            spans = [(a + shift, min(b + shift, m)) for shift in self._shift[side]]
        else:
            spans = [(max(a + shift, m), b + shift) for shift in self._shift[side]]
        book.cover(
            min(math.floor(lo) for lo, _ in spans),
            max(math.floor(max(lo, hi)) for lo, hi in spans) + 1,
        )
        held = book.side(side)
        for weight, (lo, hi) in zip(self._weights, spans, strict=True):
            _spread(held, book.start, lo, hi, coins * weight)

    def _open_shaped(
        self, book: _Book, side: Side, coins: float, a: float, b: float, m: float
    ) -> None:
        """Add ``coins`` with entries spread evenly over grid positions ``[a, b]`` and
        liquidation prices at the ``opened`` shape's log-distances from each entry.

        As for the tiers, a position still open at the mark ``m`` has its liquidation price on
        the safe side of it: the part of the shape beyond the mark is dropped and the rest
        scaled up to hold all ``coins``.
        """
        first, last = math.floor(a), math.floor(max(a, b))
        entries = np.zeros(last - first + 1)
        _spread(entries, first, a, b, 1.0)
        mark_bin = math.floor(m)
        if side == "long":
            # Entry bin first + e, distance bin j: liquidation bin first + e - 1 - j, which is
            # bin low + i of the convolution with the reversed shares (i = e + L - 1 - j).
            low = first - len(self._opened)
            placed = np.convolve(entries, self._opened[::-1])
            keep = min(len(placed), mark_bin - low)  # bins below the mark's
        else:
            # Liquidation bin first + e + 1 + j: bin low + i of the plain convolution.
            low = first + 1
            placed = np.convolve(entries, self._opened)
            skip = max(0, mark_bin + 1 - low)  # bins above the mark's
            placed = placed[skip:]
            low += skip
            keep = len(placed)
        if keep <= 0 or not (total := float(placed[:keep].sum())) > 0:
            return
        book.cover(low, low + keep)
        held = book.side(side)
        at = low - book.start
        held[at : at + keep] += placed[:keep] * (coins / total)

    def forget(self, market: str, exchange: str, symbol: str) -> None:
        """Drop one instrument's book of ``market`` (nothing if there is none)."""
        books = self._books.get(market)
        if books is None or books.pop((exchange, symbol), None) is None:
            return
        self._views.pop(market, None)
        if not books:
            del self._books[market]

    # -- queries -------------------------------------------------------------------------

    def markets(self) -> tuple[str, ...]:
        """Every market with a listing reported within ``retire_after_h``, sorted."""
        return tuple(sorted(self._books))

    def lists(self, market: str) -> bool:
        """Whether ``market`` has a listing reported within ``retire_after_h``."""
        return market in self._books

    def heatmap(
        self,
        market: str,
        *,
        low: float | None = None,
        high: float | None = None,
        bucket: float | None = None,
    ) -> Heatmap:
        """Notional at risk per price bucket between ``low`` and ``high`` (default: the mark
        +/- ``config.range_pct`` %, snapped to ``bucket``; default bucket: a round price near
        the range over ``config.buckets``)."""
        view = self._view(market)
        config = self.config
        for name, value in (("low", low), ("high", high), ("bucket", bucket)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"heatmap {market}: {name} must be positive, got {value}")
        top = high if high is not None else view.mark * (1 + config.range_pct / 100)
        bottom = low if low is not None else view.mark * (1 - config.range_pct / 100)
        if bottom >= top:
            raise ValueError(f"heatmap {market}: low {bottom} must be below high {top}")
        size = bucket if bucket is not None else _round_size((top - bottom) / config.buckets)
        # Checked before snapping too: a tiny bucket would overflow ``bottom / size`` there.
        ratio = (top - bottom) / size
        if ratio > MAX_BUCKETS:
            smallest = _at_least((top - bottom) / MAX_BUCKETS)
            # A denormal bucket makes the ratio infinite: no count to print.
            made = f"{math.ceil(ratio):,}" if ratio < 1e15 else "more than 10^15"
            raise ValueError(
                f"heatmap {market}: bucket {size:g} makes {made} "
                f"buckets between {price_text(bottom)} and {price_text(top)}, at most "
                f"{MAX_BUCKETS:,}: take a bucket of {smallest:,.6g} or more, or a narrower "
                "low..high"
            )
        if low is None:
            bottom = max(math.floor(bottom / size) * size, size)
        count = math.ceil((top - bottom) / size - 1e-9)
        if count > MAX_BUCKETS:
            raise ValueError(
                f"heatmap {market}: bucket {size} makes {count} buckets between {bottom} and "
                f"{top}; at most {MAX_BUCKETS}"
            )
        count = max(count, 1)
        edges = bottom + size * np.arange(count + 1, dtype=np.float64)
        longs = view.usd_between("long", edges[:-1], edges[1:])
        shorts = view.usd_between("short", edges[:-1], edges[1:])
        clusters = sorted(
            [
                *self._clusters("long", edges, longs, view.mark, size),
                *self._clusters("short", edges, shorts, view.mark, size),
            ],
            key=lambda cluster: -cluster.usd,
        )
        return Heatmap(
            market=market,
            ts=view.ts,
            mark_price=view.mark,
            bucket_size=size,
            prices=tuple(edges[:-1].tolist()),
            long_usd=tuple(longs.tolist()),
            short_usd=tuple(shorts.tolist()),
            clusters=tuple(clusters),
        )

    def fuel(self, market: str, side: Side, price: float, pct: float) -> float:
        """USD of ``side`` positions liquidated if price moved ``pct`` percent from ``price``
        against them: longs with liquidation prices in ``[price * (1 - pct/100), price]``,
        shorts in ``[price, price * (1 + pct/100)]``. The cascade engine's "fuel ahead"."""
        if side not in ("long", "short"):
            raise ValueError(f"fuel {market}: side must be 'long' or 'short', got {side!r}")
        if not (math.isfinite(price) and price > 0):
            raise ValueError(f"fuel {market}: price must be positive, got {price}")
        if not (math.isfinite(pct) and 0 < pct < 100):
            raise ValueError(f"fuel {market}: pct must be in (0, 100), got {pct}")
        view = self._view(market)
        if side == "long":
            low, high = price * (1 - pct / 100), price
        else:
            low, high = price, price * (1 + pct / 100)
        return float(view.usd_between(side, np.array([low]), np.array([high]))[0])

    def _view(self, market: str) -> _View:
        view = self._views.get(market)
        if view is not None:
            return view
        books = self._books.get(market)
        if not books:
            known = ", ".join(sorted(self._books)[:5]) or "none yet"
            raise ValueError(f"unknown market {market!r} (markets seen: {known}...)")
        view = self._views[market] = _sum(books[key] for key in sorted(books))
        return view

    def _clusters(
        self, side: Side, edges: Array, usd: Array, mark: float, size: float
    ) -> list[Cluster]:
        config = self.config
        total = float(usd.sum())
        if total <= 0:
            return []
        mean = total / len(usd)
        dense = np.concatenate([[False], usd >= config.cluster_factor * mean, [False]])
        changes = np.flatnonzero(np.diff(dense.astype(np.int8)))
        found = []
        for begin, end in zip(changes[::2], changes[1::2], strict=True):
            run = float(usd[begin:end].sum())
            if run < config.cluster_min_share * total:
                continue
            low, high = float(edges[begin]), float(edges[end])
            found.append(
                Cluster(
                    side=side,
                    low=low,
                    high=high,
                    usd=run,
                    density=run / ((high - low) / mark * 100),
                    strength=float(run / (end - begin) / mean),
                    label=f"{format_usd(run)} of {side}s between "
                    f"{format_price(low, size)} and {format_price(high, size)}",
                )
            )
        found.sort(key=lambda cluster: -cluster.usd)
        return found[: config.max_clusters]


def _sum(books: Iterable[_Book]) -> _View:
    """Add instrument books on their common grid into cumulative USD per grid edge."""
    books = list(books)
    start = min(book.start for book in books)
    end = max(book.start + len(book.long) for book in books)
    longs, shorts = np.zeros(end - start), np.zeros(end - start)
    for book in books:
        at = book.start - start
        longs[at : at + len(book.long)] += book.long
        shorts[at : at + len(book.short)] += book.short
    # USD at risk = coins x the liquidation price (the bin's geometric centre).
    price = np.exp((np.arange(start, end, dtype=np.float64) + 0.5) * STEP)
    weight = sum(book.open_interest * book.mark for book in books)
    mark = (
        sum(book.open_interest * book.mark * book.mark for book in books) / weight
        if weight > 0
        else books[-1].mark
    )
    return _View(
        start=start,
        long_cdf=np.concatenate([[0.0], np.cumsum(longs * price)]),
        short_cdf=np.concatenate([[0.0], np.cumsum(shorts * price)]),
        mark=mark,
        ts=max(book.ts for book in books),
    )


def _at_least(raw: float) -> float:
    """``raw`` rounded up to three significant digits (a bucket size to suggest)."""
    step = 10.0 ** (math.floor(math.log10(raw)) - 2)
    return math.ceil(raw / step - 1e-9) * step


def _round_size(raw: float) -> float:
    """The round number (1, 2, 2.5 or 5 x a power of ten) nearest ``raw`` in ratio."""
    power = 10.0 ** math.floor(math.log10(raw))
    steps = [step * power for step in (1.0, 2.0, 2.5, 5.0, 10.0)]
    return min(steps, key=lambda step: abs(math.log(step / raw)))


def format_price(price: float, bucket: float) -> str:
    """A price with as many decimals as the bucket size needs: ``$91,000``, ``$0.0001234``."""
    return f"${price:,.{step_decimals(bucket)}f}"
