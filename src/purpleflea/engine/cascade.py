"""The cascade engine: a 0-10 score per market and side, and cascade alerts.

Pure and deterministic: no I/O, no clock. Time comes only from event timestamps (and from
``tick(now_ms)``, which the server calls every second and a replay calls at every whole second
the event stream crosses), so the same code scores live events, the simulator and backtests.
The score of an event depends only on that event and the ones before it (no look-ahead).

How the score is built (per market and side, e.g. ``BTC-PERP`` longs):

- **Window.** Notional and event count in the last 90 s (the product page's window), kept in
  eighteen 5 s buckets; the last six buckets are the last 30 s.
- **Baseline.** An EWMA of notional and of event count per 5 s bucket with a 24 h time
  constant: the market's own normal pace. Each bucket's event count is clipped at
  ``baseline_clip`` times the baseline's (never below one event) and its notional in the same
  proportion, so a cascade barely raises its own yardstick while a market that liquidates once
  an hour still learns that pace and its typical size. A bucket feeds the baseline when it
  leaves the 90 s window, so the yardstick never holds the window it judges (a market first
  seen inside a burst does not take the burst for its pace). A market with no history
  starts from a prior of ``prior_events_per_hour`` events of the size of its first event.
- **Intensity ratio.** ``r = window notional / expected notional in 90 s``, the expectation
  being the baseline, but at least ``floor_events`` events of the market's typical size (so a
  lone liquidation on a quiet coin is not a cascade). This is the self-exciting (Hawkes)
  picture in discrete form: a cascade is intensity far above the background rate ``mu``.
- **Chain.** Once ``r`` reaches ``level_arm_ratio`` (1: the window at the market's usual pace),
  the engine follows the chain of liquidations on this side (it ends after ``chain_gap_s``
  without one) and counts its price levels: a price further than ``level_tol_pct`` from every
  level already seen, at least ``level_delay_s`` after the chain's first event. One level is one
  shock or one position's fills (a position's fills share a price up to the exchange's noise,
  hence a tolerance of 0.12 %); each further level, reached later, is a new set of positions
  the move reached. The first second's levels are one shock: positions swept together by a jump
  are not a chain reaction. A later level need not be beyond the last one: forced orders' impact
  partly reverts, and the next positions are then found nearer again.
- **Score.** ``rate_gain * log2(r)``, plus ``accel_gain * log2(acceleration)`` where
  acceleration is the last 30 s pace over the 90 s pace (1 = steady, 3 = all of it just now,
  below 1 = fading), plus ``log2(fuel)`` (clipped to +/-1) when the heatmap has told us how much
  liquidation fuel lies ahead (:meth:`CascadeEngine.set_fuel`), plus the **size** term
  ``oi_gain * log2(window / (oi_ref * open interest))`` (clipped to +/-``oi_clip``) once the
  snapshots have told us the market's open interest (:meth:`CascadeEngine.set_open_interest`):
  the window against the market's size, hence against its depth, which the liquidation
  baseline alone does not know (a market that rarely liquidates may still be deep). Until the
  market's open interest is known, the **move** term stands in for it:
  ``move_gain * log2(move / move_ref_pct)`` (clipped to +/-``move_clip``), the price move since
  the window's oldest event in the cascade's direction (down for longs), -``move_clip`` when
  the price went the other way: how far the burst pushed the price is the market's own answer
  to how big it is against its depth. The sum is capped at ``count_gain`` times
  the number of events in the window (one event alone cannot score high) and at
  ``level_base + level_gain * (levels - 1)`` (5 with one level, 7 needs three), rounded, 0-10.

Because everything is a ratio to the market's own baseline and its own open interest, a score
means the same on BTC and on a small coin. In plain words (default config, open interest
known):

- **3**: liquidations on this side run about 20x this market's normal pace with the 90 s window
  at about 0.25% of its open interest (each halving of that share is 3 points less, each
  doubling 3 more, at most 3). Notable, not a cascade.
- **7**: a cascade: at least three price levels (two reached after the first second),
  ``0.7 * log2(pace ratio) + 3 * log2(window / 0.25% of OI)`` (the second term within +/-3)
  reaches 6.5: e.g. ~600x its normal pace with 0.25% of its open interest, or ~32x with 0.5%
  or more. A ``started`` alert fires here; positions on this side are being force-sold
  (longs) or force-bought (shorts) into the book and the move is likely to extend.
- **9**: an extreme cascade: five or more price levels, the window at 0.5% of open interest or
  more and ~230x the market's pace.

Until a market's open interest is known the move term replaces the size term: 2 points per
doubling of "the price moved 0.3% its way" in place of 3 per doubling of "the window holds
0.25% of open interest", up to +/-5 points (a move of 1.7% or more adds 5: without open
interest the pace ratio of a market seen for minutes says little, and a burst that moved price
that far is a cascade).

Alerts (:class:`~purpleflea.model.CascadeAlert`) follow a lifecycle per market and side:
``started`` when the score reaches ``start_score`` and the window holds at least
``min_alert_usd`` (a score is relative; an alert about $200 helps nobody); ``updated`` when
the score changed (at most every ``update_min_s``) or every ``update_every_s`` while
liquidations continue; ``exhausted``
when the last 30 s notional falls below ``exhaust_fraction`` of its peak during the cascade
(volume dropped sharply), checked on events and on ``tick``. A new cascade on the same market and
side may start ``cooldown_s`` after the previous one was exhausted.

An alert's ``start_price``, ``last_price`` and ``price_move_pct`` say how far the market moved,
so they are read from **fill** prices when the cascade has any: venues whose ``price`` is a
bankruptcy or order price (shared/EXCHANGES.md trap 5) sit 0.4-0.6 % from the market (OKX's
``bkPx``, docs/cascade.md), and a move from one venue's kind of price to another's was that gap,
not the market. ``CascadeEngine(fill_priced=...)`` names the exchanges whose prices are fills
(the server passes ``registry.fill_priced()``; None: every price counts as a fill); a cascade
with no fill-priced event falls back to all its events. The score (its price levels and move
term) reads every event's price as before.

API: ``score = engine.observe(market, side, size_usd, price, ts_ms, exchange)`` returns the score
right after the event; alerts are queued and handed over exactly once by ``drain_alerts()`` or
``tick(now_ms)`` (which first exhausts cascades that went quiet). Events a little out of order
(another exchange's clock) are scored at the latest time already seen for that market and side.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields

from purpleflea.formatting import format_usd
from purpleflea.model import CascadeAlert, CascadeStatus, Side

_LN2 = math.log(2.0)
_log = math.log


#: Below this many baseline events per bucket a market's history has decayed to nothing.
_MIN_BASE_N = 1e-9


@dataclass(frozen=True, slots=True)
class CascadeConfig:
    """Tuning of the score and of the alert lifecycle (see the module docstring)."""

    bucket_ms: int = 5_000
    window_buckets: int = 18  # 90 s
    fast_buckets: int = 6  # 30 s
    baseline_tau_s: float = 24 * 3600.0
    baseline_clip: float = 8.0
    prior_events_per_hour: float = 12.0
    prior_s: float = 600.0
    floor_events: float = 3.0
    rate_gain: float = 0.7
    accel_gain: float = 0.0
    count_gain: float = 1.5
    chain_gap_s: float = 60.0
    level_arm_ratio: float = 1.0
    level_tol_pct: float = 0.12
    level_delay_s: float = 1.0
    level_base: float = 5.0
    level_gain: float = 1.0
    max_levels: int = 32
    oi_gain: float = 3.0
    oi_ref: float = 0.0025
    oi_clip: float = 3.0
    oi_memory_s: float = 0.0  # 0: the size term uses the latest open interest
    move_gain: float = 2.0
    move_ref_pct: float = 0.3
    move_clip: float = 5.0
    start_score: int = 7
    min_alert_usd: float = 25_000.0
    update_min_s: float = 5.0
    update_every_s: float = 30.0
    exhaust_fraction: float = 0.15
    cooldown_s: float = 60.0

    def __post_init__(self) -> None:
        if self.bucket_ms <= 0:
            raise ValueError(f"CascadeConfig.bucket_ms must be > 0, got {self.bucket_ms}")
        if not 0 < self.fast_buckets <= self.window_buckets:
            raise ValueError(
                "CascadeConfig.fast_buckets must be in 1..window_buckets, got "
                f"{self.fast_buckets} (window_buckets={self.window_buckets})"
            )
        if not 0 <= self.start_score <= 10:
            raise ValueError(f"CascadeConfig.start_score must be 0-10, got {self.start_score}")
        if self.oi_ref <= 0 or self.oi_clip < 0:
            raise ValueError(
                f"CascadeConfig.oi_ref must be > 0 and oi_clip >= 0, got {self.oi_ref}, "
                f"{self.oi_clip}"
            )
        if self.move_ref_pct <= 0 or self.move_clip < 0:
            raise ValueError(
                f"CascadeConfig.move_ref_pct must be > 0 and move_clip >= 0, got "
                f"{self.move_ref_pct}, {self.move_clip}"
            )
        if self.baseline_tau_s <= 0 or self.prior_events_per_hour <= 0:
            raise ValueError("CascadeConfig.baseline_tau_s and prior_events_per_hour must be > 0")

    @property
    def window_s(self) -> int:
        return self.bucket_ms * self.window_buckets // 1000


class _Cascade:
    """The running totals of one active cascade (allocated only when one starts)."""

    __slots__ = (
        "events",
        "exchanges",
        "fill_start",
        "id",
        "last_emit_score",
        "last_emit_ts",
        "peak_fast",
        "peak_score",
        "start_price",
        "started_at",
        "total_usd",
    )

    def __init__(self, market: str, side: str, started_at: int, start_price: float) -> None:
        self.id = f"{market}:{side}:{started_at}"
        self.started_at = started_at
        self.start_price = start_price
        # The price of its oldest fill-priced event (0: none yet): where the move is read from.
        self.fill_start = 0.0
        self.total_usd = 0.0
        self.events = 0
        self.peak_score = 0
        self.peak_fast = 0.0
        self.exchanges: set[str] = set()
        self.last_emit_ts = 0
        self.last_emit_score = 0


class _State:
    """Everything the engine knows about one market and side."""

    __slots__ = (
        "base_n",
        "base_usd",
        "born",
        "bucket",
        "cascade",
        "chain_start",
        "cooldown_until",
        "expected",
        "fast_usd",
        "fill_price",
        "first_price",
        "first_ts",
        "fuel_term",
        "last_fill",
        "last_price",
        "last_ts",
        "level_cap",
        "level_prices",
        "levels",
        "log_expected",
        "market",
        "near",
        "oi_log",
        "oi_on",
        "ref_price",
        "ref_stale",
        "ring_n",
        "ring_usd",
        "score",
        "seen",
        "side",
        "weight",
        "win_n",
        "win_usd",
    )

    def __init__(self, market: str, side: str, buckets: int) -> None:
        self.market = market
        self.side = side
        self.bucket = -1  # index of the newest bucket (ts // bucket_ms); -1: no event yet
        self.born = 0  # the bucket the prior was set in: older ones never feed the baseline
        self.ring_usd = [0.0] * buckets
        self.ring_n = [0] * buckets
        self.first_ts = [0] * buckets  # first event time and price of each bucket
        self.first_price = [0.0] * buckets
        self.fill_price = [0.0] * buckets  # first fill-priced event's price (0: none)
        self.win_usd = 0.0
        self.win_n = 0
        self.fast_usd = 0.0
        self.base_usd = 0.0
        self.base_n = 0.0
        self.expected = 1.0
        self.log_expected = 0.0  # its log, kept so an event costs one log less
        self.weight = 1.0
        self.last_ts = 0
        self.last_price = 0.0
        self.last_fill = 0.0  # the last fill-priced event's price (0: none yet)
        self.score = 0
        self.chain_start = 0  # first event of the current chain (no gap over chain_gap_s)
        self.levels = 0  # price levels the chain reached after its first second
        self.level_cap = 0.0  # the score's cap for that many levels (set by the engine)
        self.level_prices: list[float] = []  # the chain's distinct price levels (max_levels)
        self.near = 0.0  # the level the last event belonged to
        self.fuel_term = 0.0
        self.oi_on = False  # open interest known (and the size term on)
        self.oi_log = 0.0  # -log(oi_ref x the market's open interest in USD)
        self.ref_price = 0.0  # the price of the oldest event in the window
        self.ref_stale = False  # the window rolled since: ref_price may have left it
        self.seen: dict[str, int] = {}
        self.cascade: _Cascade | None = None
        self.cooldown_until = 0


class CascadeEngine:
    """Scores every liquidation and turns sustained bursts into cascade alerts."""

    def __init__(
        self, config: CascadeConfig | None = None, fill_priced: Iterable[str] | None = None
    ) -> None:
        """``fill_priced``: the exchange ids whose events' price is a fill (the market's),
        which the alerts' prices are read from; None: every exchange's."""
        self.config = config = config if config is not None else CascadeConfig()
        self._fill: frozenset[str] | None = None if fill_priced is None else frozenset(fill_priced)
        self._states: dict[str, tuple[_State, _State]] = {}
        self._oi: dict[str, dict[str, float]] = {}  # market -> instrument -> open interest USD
        # market -> (the open interest the size term measures against, the time it was held)
        self._oi_yard: dict[str, tuple[float, int]] = {}
        self._pending: list[CascadeAlert] = []
        self._active: dict[str, _State] = {}  # cascade id -> state
        self._bucket_ms = config.bucket_ms
        self._nb = config.window_buckets
        self._nf = config.fast_buckets
        self._weight_cap = max(1.0, config.baseline_tau_s * 1000.0 / config.bucket_ms)
        self._keep = 1.0 - 1.0 / self._weight_cap
        self._prior_weight = min(self._weight_cap, config.prior_s * 1000.0 / config.bucket_ms)
        self._prior_n = config.prior_events_per_hour * config.bucket_ms / 3_600_000.0
        self._rate_gain = config.rate_gain / _LN2
        self._accel_gain = config.accel_gain / _LN2
        self._fast_scale = config.window_buckets / config.fast_buckets
        self._count_gain = config.count_gain
        self._chain_gap = int(config.chain_gap_s * 1000)
        self._tol = config.level_tol_pct / 100.0
        self._log_arm = math.log(config.level_arm_ratio)
        self._level_delay = int(config.level_delay_s * 1000)
        self._level_base = config.level_base
        self._level_gain = config.level_gain
        self._max_levels = config.max_levels
        self._start_score = config.start_score
        self._oi_gain = config.oi_gain / _LN2
        self._oi_clip = config.oi_clip
        self._move_gain = config.move_gain / _LN2
        self._log_move_ref = math.log(config.move_ref_pct / 100.0)
        self._move_clip = config.move_clip

    # -- public API --------------------------------------------------------------------------

    def observe(
        self, market: str, side: Side, size_usd: float, price: float, ts_ms: int, exchange: str
    ) -> int:
        """Score one liquidation; returns the market and side's score (0-10) right after it."""
        # The hot path of every replay: locals and no calls except two logs (see the bench).
        pair = self._states.get(market)
        if pair is None:
            pair = self._new_pair(market)
        state = pair[0] if side == "long" else pair[1]
        ts = ts_ms if ts_ms > state.last_ts else state.last_ts
        bucket = ts // self._bucket_ms
        if bucket != state.bucket:
            self._advance(state, bucket, size_usd)
            if state.cascade is not None:  # it may have gone quiet before this event
                self._check_exhausted(state, ts)
        slot = bucket % self._nb
        ring_n = state.ring_n
        count = ring_n[slot]
        if count == 0:
            state.first_ts[slot] = ts
            state.first_price[slot] = price
            state.fill_price[slot] = 0.0
        fill = self._fill
        if fill is None or exchange in fill:
            # The alert's prices: a fill is the market's (a bankruptcy price is not).
            fill_price = state.fill_price
            if fill_price[slot] == 0.0:
                fill_price[slot] = price
            state.last_fill = price
        ring_n[slot] = count + 1
        state.ring_usd[slot] += size_usd
        win = state.win_usd = state.win_usd + size_usd
        win_n = state.win_n = state.win_n + 1
        if win_n == 1:
            state.ref_price = price
            state.ref_stale = False
        fast = state.fast_usd = state.fast_usd + size_usd
        gap = ts - state.last_ts
        state.last_ts = ts
        state.last_price = price
        state.seen[exchange] = ts
        log_win = _log(win)
        log_ratio = log_win - state.log_expected
        # The chain: once the window runs above the baseline, every new price level (further
        # than level_tol_pct from every level seen so far, after the chain's first second) is a
        # new set of positions the move reached. It ends after chain_gap_s with no liquidation.
        levels = state.levels
        if levels and gap > self._chain_gap:
            levels = state.levels = 0
            state.level_cap = self._level_base
        if not levels:
            if log_ratio >= self._log_arm:
                state.levels = 1
                state.chain_start = ts
                state.level_prices = [price]
                state.near = price
        else:
            near = state.near
            tol = self._tol * price
            if price - near > tol or near - price > tol:
                for level in state.level_prices:
                    if -tol <= price - level <= tol:
                        state.near = level
                        break
                else:
                    state.near = price
                    if len(state.level_prices) < self._max_levels:
                        state.level_prices.append(price)
                    if ts - state.chain_start >= self._level_delay:
                        state.levels = levels + 1
                        state.level_cap = self._level_base + self._level_gain * levels
        raw = self._rate_gain * log_ratio + state.fuel_term
        if self._accel_gain:
            accel = self._fast_scale * fast / win
            raw += self._accel_gain * _log(accel if accel > 0.25 else 0.25)
        if state.oi_on:
            # The window against the market's size: the same notional is a cascade on a thin
            # coin and noise on BTC, whatever either's liquidation history says.
            term = self._oi_gain * (log_win + state.oi_log)
            clip = self._oi_clip
            raw += clip if term > clip else -clip if term < -clip else term
        elif self._move_gain:
            # Without open interest the burst's size against the market is read from what it
            # did to the price: the move since the window's oldest event, in the cascade's
            # direction (longs' forced sales push it down), against move_ref_pct. Money that
            # moves a market by x % is roughly x times its 1 % depth, so this asks the size
            # term's question of the price instead of the snapshots.
            if state.ref_stale:  # found only when needed: the open-interest path never pays
                self._find_ref(state)
            ref = state.ref_price
            move = (ref - price if state.side == "long" else price - ref) / ref if ref > 0 else 0.0
            clip = self._move_clip
            if move > 0.0:
                term = self._move_gain * (_log(move) - self._log_move_ref)
                raw += clip if term > clip else -clip if term < -clip else term
            else:
                raw -= clip
        cap = self._count_gain * win_n
        if raw > cap:  # noqa: PLR1730 (hot path: a branch is cheaper than min())
            raw = cap
        # One price level, however big, is one shock or one position's fills; a cascade is
        # forced orders pushing price into the next levels of liquidations.
        if raw > state.level_cap:  # noqa: PLR1730
            raw = state.level_cap
        score = 0 if raw <= 0.0 else 10 if raw >= 9.5 else int(raw + 0.5)
        state.score = score
        if score >= self._start_score or state.cascade is not None:
            self._follow(state, size_usd, exchange, ts)
        return score

    def tick(self, now_ms: int) -> list[CascadeAlert]:
        """Exhaust cascades that went quiet by ``now_ms``; returns every queued alert."""
        if self._active:
            for state in list(self._active.values()):
                bucket = now_ms // self._bucket_ms
                if bucket > state.bucket:
                    self._advance(state, bucket, 0.0)
                self._check_exhausted(state, max(now_ms, state.last_ts))
        return self.drain_alerts()

    def drain_alerts(self) -> list[CascadeAlert]:
        """Alerts queued since the last drain, in the order they happened."""
        alerts, self._pending = self._pending, []
        return alerts

    def has_alerts(self) -> bool:
        """Whether alerts are queued (cheaper than draining an empty queue on every event)."""
        return bool(self._pending)

    def active(self) -> list[CascadeAlert]:
        """The current state of every active cascade, as ``updated`` alerts."""
        return [self._alert(s, "updated", s.last_ts) for s in self._active.values()]

    def score(self, market: str, side: Side) -> int:
        """The last computed score of a market and side (0 if never seen)."""
        pair = self._states.get(market)
        if pair is None:
            return 0
        return (pair[0] if side == "long" else pair[1]).score

    def set_fuel(self, market: str, side: Side, ratio: float) -> None:
        """Tell the engine how much liquidation fuel lies ahead of a cascade on this side.

        ``ratio`` is the notional at risk within the next few percent of price in the cascade's
        direction over what is usual for this market (1 = usual, 2 = twice as much). It moves
        the score by ``log2(ratio)`` clipped to +/-1 from the next event on; 1 removes it.
        """
        if not ratio >= 0:
            raise ValueError(f"set_fuel({market!r}, {side!r}): ratio must be >= 0, got {ratio}")
        pair = self._states.get(market)
        if pair is None:
            pair = self._new_pair(market)
        term = math.log2(ratio) if ratio > 0 else -1.0
        (pair[0] if side == "long" else pair[1]).fuel_term = max(-1.0, min(1.0, term))

    def set_open_interest(self, market: str, usd: float, instrument: str = "") -> None:
        """Tell the engine one instrument's open interest in USD (``open_interest_usd`` of a
        :class:`~purpleflea.model.MarketSnapshot`; ``instrument`` tells several exchanges'
        listings of one market apart, as ``"<exchange>:<symbol>"``).

        The market's open interest (the sum over its instruments) is its size: with
        ``oi_gain`` set, the score adds ``oi_gain * log2(window / (oi_ref * open interest))``
        clipped to +/-``oi_clip``, from the next event on. 0 forgets the instrument.
        With ``oi_memory_s`` > 0 the open interest measured against never falls faster than
        ``exp(-t / oi_memory_s)``: a fall (a crash's liquidations) lowers the yardstick over that
        time, a rise raises it at once.
        """
        if not (math.isfinite(usd) and usd >= 0):
            raise ValueError(
                f"set_open_interest({market!r}, {instrument!r}): usd must be a finite number "
                f">= 0, got {usd}"
            )
        books = self._oi.setdefault(market, {})
        if usd > 0:
            books[instrument] = usd
        else:
            books.pop(instrument, None)
        total = sum(books.values())
        pair = self._states.get(market)
        if not books:
            del self._oi[market]
            if pair is None or self._eventless(pair):
                # Its last listing gone (an expired future, a delisted contract), a market
                # no event taught anything is forgotten: every listing ever seen stayed.
                self._states.pop(market, None)
                self._oi_yard.pop(market, None)
                return
        if pair is None:
            pair = self._new_pair(market)
        memory = self.config.oi_memory_s
        if memory > 0 and total > 0:
            # A crash's own liquidations remove open interest (2025-10-10: BTC's halved in two
            # hours); against what is left, the crash's next wave would read twice as big. So the
            # yardstick holds the level before a fall and follows it down over oi_memory_s only
            # (time from the market's own events: the engine has no clock).
            now = max(pair[0].last_ts, pair[1].last_ts)
            held, at = self._oi_yard.get(market, (0.0, now))
            held *= math.exp(-max(0, now - at) / (memory * 1000.0))
            total = max(total, held)
            self._oi_yard[market] = (total, now)
        on = total > 0 and self._oi_gain != 0
        oi_log = -math.log(self.config.oi_ref * total) if on else 0.0
        for state in pair:
            state.oi_on = on
            state.oi_log = oi_log

    def retire(self, before_ms: int) -> int:
        """Forget every market whose last event came before ``before_ms`` (event time) and
        that holds no open interest and no cascade: a dated future that expired, a listing
        delisted. Its states kept its baseline, decayed to almost nothing long since (the
        server retires after a week, ``baseline_tau_s`` is a day), for good: one entry a
        market ever liquidated. A market liquidated again starts anew. Returns how many."""
        gone = [
            market
            for market, (long, short) in self._states.items()
            if long.last_ts < before_ms
            and short.last_ts < before_ms
            and market not in self._oi
            and long.cascade is None
            and short.cascade is None
        ]
        for market in gone:
            del self._states[market]
            self._oi_yard.pop(market, None)
        return len(gone)

    def export_state(self) -> dict[str, object]:
        """Everything the engine knows, as plain data (lists, dicts, numbers, strings): what
        :meth:`restore_state` needs to continue exactly where this engine is, for a process
        that stops and starts again (a restart). Queued alerts are not part of it: drain them
        first. The config and ``fill_priced`` are included so that a different engine refuses
        the state instead of continuing with another engine's numbers."""
        if self._pending:
            raise ValueError("export_state: drain the queued alerts first")
        return {
            "config": [getattr(self.config, name) for name in _CONFIG_FIELDS],
            "fill": None if self._fill is None else sorted(self._fill),
            "markets": {
                market: [_export_side(state) for state in pair]
                for market, pair in self._states.items()
            },
            "oi": {market: dict(books) for market, books in self._oi.items()},
            "oi_yard": {market: list(held) for market, held in self._oi_yard.items()},
        }

    def restore_state(self, saved: dict[str, object]) -> None:
        """Continue from a state :meth:`export_state` wrote (of an engine of this config and
        ``fill_priced``), replacing whatever this engine knew. Raises ``ValueError`` naming
        what does not fit; the engine is then unchanged."""
        config = [getattr(self.config, name) for name in _CONFIG_FIELDS]
        if saved.get("config") != config:
            raise ValueError("engine state: written by an engine of another config")
        fill = None if self._fill is None else sorted(self._fill)
        if saved.get("fill") != fill:
            raise ValueError("engine state: written by an engine of other fill-priced exchanges")
        try:
            markets = saved["markets"]
            oi = saved["oi"]
            yard = saved["oi_yard"]
            if not (isinstance(markets, dict) and isinstance(oi, dict) and isinstance(yard, dict)):
                raise TypeError("markets, oi and oi_yard must be maps")
            states: dict[str, tuple[_State, _State]] = {}
            active: dict[str, _State] = {}
            for market, (long, short) in markets.items():
                pair = (
                    _import_side(market, "long", long, self._nb),
                    _import_side(market, "short", short, self._nb),
                )
                states[market] = pair
                for state in pair:
                    if state.cascade is not None:
                        active[state.cascade.id] = state
            books = {market: {k: float(v) for k, v in b.items()} for market, b in oi.items()}
            held = {market: (float(h[0]), int(h[1])) for market, h in yard.items()}
        except (LookupError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            # LookupError: a key or a list's item missing; OverflowError: an infinite count.
            raise ValueError(f"engine state: malformed: {exc!r}") from exc
        self._states, self._active, self._oi, self._oi_yard = states, active, books, held
        self._pending = []

    # -- internals ---------------------------------------------------------------------------

    @staticmethod
    def _eventless(pair: tuple[_State, _State]) -> bool:
        """Whether neither side of a market has seen an event (nothing but defaults)."""
        return pair[0].bucket < 0 and pair[1].bucket < 0

    def _new_pair(self, market: str) -> tuple[_State, _State]:
        pair = self._states[market] = (
            _State(market, "long", self._nb),
            _State(market, "short", self._nb),
        )
        for state in pair:
            state.level_cap = self._level_base
        return pair

    def _advance(self, state: _State, bucket: int, size_usd: float) -> None:
        """Move ``state`` to ``bucket``, seeding it on its first event."""
        if state.bucket >= 0:
            self._roll(state, bucket)
        # A market we have never seen, or one silent for so long that its baseline decayed
        # to nothing, starts again from the prior.
        if state.bucket < 0 or state.base_n < _MIN_BASE_N:
            # The prior: a market is assumed to liquidate a few positions an hour of the size
            # of its first liquidation, so it is in its own units at once.
            state.base_n = self._prior_n
            state.base_usd = self._prior_n * max(size_usd, 1e-9)
            state.weight = self._prior_weight
            state.born = bucket
            self._set_expected(state)
        state.bucket = bucket

    def _set_expected(self, state: _State) -> None:
        # The notional a 90 s window holds at the baseline pace, but at least a few typical
        # liquidations: the yardstick of the score, changed only when a bucket completes.
        expected = state.base_usd * self._nb
        floor = self.config.floor_events * state.base_usd / max(state.base_n, _MIN_BASE_N)
        state.expected = max(expected, floor, 1e-9)
        state.log_expected = _log(state.expected)

    def _roll(self, state: _State, bucket: int) -> None:
        """Advance the window to ``bucket``; the buckets leaving it feed the baseline."""
        nb = self._nb
        old = state.bucket
        gap = bucket - old
        if gap <= 0:
            return
        # A bucket feeds the baseline when it leaves the 90 s window, not when it completes:
        # the yardstick never holds the window it judges. Fed at completion, a market's first
        # burst became most of its own yardstick within seconds (a new market's EWMA weighs a
        # bucket 1/120), and a recording or a server that starts inside a cascade called it
        # normal; an old market's yardstick (1/17,280 a bucket) hardly differs either way.
        # The buckets leaving are old+1-nb .. bucket-nb; those after `old` were never seen
        # (empty), the others are still in the ring; those before the prior was set are not
        # the market's (a new market has no quiet past to decay its prior with).
        ring_usd, ring_n = state.ring_usd, state.ring_n
        last = bucket - nb
        held = last if last < old else old
        first = old + 1 - nb
        if first < state.born:  # noqa: PLR1730 (hot path)
            first = state.born
        empty = 0
        for idx in range(first, held + 1):
            slot = idx % nb
            if ring_n[slot]:
                if empty:
                    self._decay(state, empty)
                    empty = 0
                self._feed(state, ring_usd[slot], float(ring_n[slot]))
            else:
                empty += 1
        tail = last - max(held, first - 1)  # never seen: after the ring's, from the prior on
        if tail > 0:
            empty += tail
        if empty:
            self._decay(state, empty)
        self._set_expected(state)
        if gap >= nb:
            for i in range(nb):
                ring_usd[i] = 0.0
                ring_n[i] = 0
            state.win_usd = state.fast_usd = 0.0
            state.win_n = 0
            return
        nf = self._nf
        for b in range(old + 1, bucket + 1):
            leaving_fast = (b - nf) % nb
            state.fast_usd -= ring_usd[leaving_fast]
            slot = b % nb
            state.win_usd -= ring_usd[slot]
            state.win_n -= ring_n[slot]
            ring_usd[slot] = 0.0
            ring_n[slot] = 0
        if state.win_n == 0:  # running sums drift by rounding; an empty window is exactly 0
            state.win_usd = 0.0
            state.fast_usd = 0.0
            return
        state.fast_usd = max(state.fast_usd, 0.0)
        state.ref_stale = True

    def _feed(self, state: _State, x_usd: float, x_n: float) -> None:
        """One bucket's liquidations into the baseline (EWMA) as it leaves the window."""
        # The EWMA's weight grows from the prior's up to the time constant: a new market learns
        # its pace in minutes (a running mean), an old one forgets over hours.
        weight = state.weight + 1.0
        if weight > self._weight_cap:  # noqa: PLR1730 (hot path)
            weight = self._weight_cap
        alpha = 1.0 / weight
        # The count is clipped at `baseline_clip` times the baseline's, never below one event,
        # and the notional in the same proportion (its events' mean size), so a cascade barely
        # moves its own yardstick. Clipping one event of a market that liquidates in fewer
        # than one bucket in `baseline_clip` (most markets, most of the time) made its baseline
        # decay to nothing: the yardstick then stayed three times its first event's size,
        # whatever the market did afterwards.
        cap_n = self.config.baseline_clip * state.base_n
        if cap_n < 1.0:  # noqa: PLR1730
            cap_n = 1.0
        if x_n > cap_n:
            x_usd *= cap_n / x_n
            x_n = cap_n
        state.base_usd += alpha * (x_usd - state.base_usd)
        state.base_n += alpha * (x_n - state.base_n)
        state.weight = weight

    def _decay(self, state: _State, empty: int) -> None:
        """``empty`` buckets without a liquidation into the baseline, in closed form."""
        cap = self._weight_cap
        weight = state.weight
        keep = 1.0
        if weight < cap:
            step = min(float(empty), cap - weight)
            keep = weight / (weight + step)
            weight += step
            empty -= int(step)
        if empty > 0:
            keep *= self._keep**empty
        state.base_usd *= keep
        state.base_n *= keep
        state.weight = weight

    def _find_ref(self, state: _State) -> None:
        """Set ``ref_price`` to the price of the oldest event still in the window."""
        nb = self._nb
        for b in range(state.bucket - nb + 1, state.bucket + 1):
            slot = b % nb
            if state.ring_n[slot]:
                state.ref_price = state.first_price[slot]
                break
        state.ref_stale = False

    def _follow(self, state: _State, size_usd: float, exchange: str, ts: int) -> None:
        """Start, update or exhaust the cascade of ``state`` after an event at ``ts``."""
        cascade = state.cascade
        score = state.score
        if cascade is None:
            # Scores are relative; alerts also need money that matters to someone trading.
            if ts < state.cooldown_until or state.win_usd < self.config.min_alert_usd:
                return
            cascade = self._start(state)
            self._emit(state, "started", ts)
            return
        cascade.total_usd += size_usd
        cascade.events += 1
        cascade.exchanges.add(exchange)
        if cascade.fill_start == 0.0:  # its first fill-priced event, if this is one
            fill = self._fill
            if fill is None or exchange in fill:
                cascade.fill_start = state.last_fill
        cascade.peak_score = max(cascade.peak_score, score)
        cascade.peak_fast = max(cascade.peak_fast, state.fast_usd)
        since = (ts - cascade.last_emit_ts) / 1000.0
        if (score != cascade.last_emit_score and since >= self.config.update_min_s) or (
            since >= self.config.update_every_s
        ):
            self._emit(state, "updated", ts)

    def _start(self, state: _State) -> _Cascade:
        # The cascade began with the oldest event still in the window: its time and price.
        nb = self._nb
        oldest = state.bucket
        for back in range(nb - 1, -1, -1):
            slot = (state.bucket - back) % nb
            if state.ring_n[slot]:
                oldest = state.bucket - back
                break
        slot = oldest % nb
        cascade = _Cascade(state.market, state.side, state.first_ts[slot], state.first_price[slot])
        for bucket in range(oldest, state.bucket + 1):  # the oldest fill-priced event
            slot = bucket % nb
            if state.ring_n[slot] and state.fill_price[slot] > 0.0:
                cascade.fill_start = state.fill_price[slot]
                break
        cascade.total_usd = state.win_usd
        cascade.events = state.win_n
        cascade.peak_score = state.score
        cascade.peak_fast = state.fast_usd
        horizon = state.last_ts - self.config.window_s * 1000
        cascade.exchanges.update(name for name, seen in state.seen.items() if seen >= horizon)
        state.cascade = cascade
        self._active[cascade.id] = state
        return cascade

    def _check_exhausted(self, state: _State, now: int) -> None:
        cascade = state.cascade
        if cascade is None or state.fast_usd > self.config.exhaust_fraction * cascade.peak_fast:
            return
        self._emit(state, "exhausted", now)
        del self._active[cascade.id]
        state.cascade = None
        state.cooldown_until = now + int(self.config.cooldown_s * 1000)

    def _emit(self, state: _State, status: CascadeStatus, ts: int) -> None:
        cascade = state.cascade
        assert cascade is not None
        cascade.last_emit_ts = ts
        cascade.last_emit_score = state.score
        self._pending.append(self._alert(state, status, ts))

    def _alert(self, state: _State, status: CascadeStatus, ts: int) -> CascadeAlert:
        cascade = state.cascade
        assert cascade is not None
        # Fill prices where the cascade has any: another kind (a bankruptcy price) would add
        # its distance from the market to the move.
        if cascade.fill_start > 0.0:
            start, last = cascade.fill_start, state.last_fill
        else:
            start, last = cascade.start_price, state.last_price
        move = (last / start - 1.0) * 100.0 if start else 0.0
        duration = max(0.0, (ts - cascade.started_at) / 1000.0)
        return CascadeAlert(
            id=cascade.id,
            status=status,
            market=state.market,
            side="long" if state.side == "long" else "short",
            score=state.score,
            peak_score=cascade.peak_score,
            window_usd=state.win_usd,
            window_s=self.config.window_s,
            total_usd=cascade.total_usd,
            events=cascade.events,
            started_at=cascade.started_at,
            updated_at=ts,
            duration_s=duration,
            start_price=start,
            last_price=last,
            price_move_pct=move,
            exchanges=tuple(sorted(cascade.exchanges)),
            message=alert_message(
                status,
                state.market,
                state.side,
                score=state.score,
                window_usd=state.win_usd,
                window_s=self.config.window_s,
                total_usd=cascade.total_usd,
                events=cascade.events,
                duration_s=duration,
                price_move_pct=move,
                peak_score=cascade.peak_score,
                start_score=self._start_score,
            ),
        )


_CONFIG_FIELDS = tuple(f.name for f in fields(CascadeConfig))
#: The per-bucket lists of a side's state.
_RING_FIELDS = frozenset({"fill_price", "first_price", "first_ts", "ring_n", "ring_usd"})

#: The fields of a market and side's state, and of its cascade, that a saved state holds.
_SIDE_FIELDS = (
    "base_n",
    "base_usd",
    "born",
    "bucket",
    "chain_start",
    "cooldown_until",
    "expected",
    "fast_usd",
    "fill_price",
    "first_price",
    "first_ts",
    "fuel_term",
    "last_fill",
    "last_price",
    "last_ts",
    "level_cap",
    "level_prices",
    "levels",
    "log_expected",
    "near",
    "oi_log",
    "oi_on",
    "ref_price",
    "ref_stale",
    "ring_n",
    "ring_usd",
    "score",
    "seen",
    "weight",
    "win_n",
    "win_usd",
)
_CASCADE_FIELDS = (
    "events",
    "fill_start",
    "id",
    "last_emit_score",
    "last_emit_ts",
    "peak_fast",
    "peak_score",
    "start_price",
    "started_at",
    "total_usd",
)


def _export_side(state: _State) -> dict[str, object]:
    saved: dict[str, object] = {name: _plain(getattr(state, name)) for name in _SIDE_FIELDS}
    cascade = state.cascade
    if cascade is not None:
        held = {name: getattr(cascade, name) for name in _CASCADE_FIELDS}
        held["exchanges"] = sorted(cascade.exchanges)
        saved["cascade"] = held
    return saved


def _plain(value: object) -> object:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def _import_side(market: str, side: str, saved: dict[str, object], buckets: int) -> _State:
    state = _State(market, side, buckets)
    for name in _SIDE_FIELDS:
        value = saved[name]
        current = getattr(state, name)
        if isinstance(current, list):
            if not isinstance(value, list):
                raise TypeError(f"{market} {side}: {name} is not a list")
            if name in _RING_FIELDS and len(value) != buckets:
                raise ValueError(f"{market} {side}: {name} has {len(value)} buckets")
            kind = int if name in ("ring_n", "first_ts") else float
            setattr(state, name, [kind(x) for x in value])
        elif isinstance(current, dict):
            if not isinstance(value, dict):
                raise TypeError(f"{market} {side}: {name} is not a map")
            state.seen = {str(k): int(v) for k, v in value.items()}
        else:
            setattr(state, name, type(current)(value))
    held = saved.get("cascade")
    if held is not None:
        if not isinstance(held, dict):
            raise TypeError(f"{market} {side}: cascade is not a map")
        cascade = _Cascade(market, side, int(held["started_at"]), float(held["start_price"]))
        for name in _CASCADE_FIELDS:
            current = getattr(cascade, name)
            setattr(cascade, name, type(current)(held[name]))
        cascade.exchanges = {str(name) for name in held["exchanges"]}
        state.cascade = cascade
    return state


def format_duration(seconds: float) -> str:
    """``45 s``, ``4m 12s``, ``1h 03m``."""
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def alert_message(
    status: CascadeStatus,
    market: str,
    side: str,
    *,
    score: int,
    window_usd: float,
    window_s: int,
    total_usd: float,
    events: int,
    duration_s: float,
    price_move_pct: float,
    peak_score: int,
    start_score: int,
) -> str:
    """The one-line human/agent-readable summary of an alert. A cascade stays active until it
    is exhausted while its score may fall far below ``start_score``: then the line says its
    peak and that it is fading, not that the momentum is likely to continue."""
    who = "longs" if side == "long" else "shorts"
    if status == "exhausted":
        return (
            f"{market}: {side} liquidation cascade exhausted after {format_duration(duration_s)}: "
            f"{format_usd(total_usd)} of {who} liquidated in {events:,} liquidations, "
            f"price {price_move_pct:+.2f}%."
        )
    direction = "downside" if side == "long" else "upside"
    if score < start_score:
        return (
            f"{market}: {format_usd(window_usd)} of {who} liquidated in {window_s} s, "
            f"cascade score {score}/10 (peak {peak_score}), {direction} momentum fading."
        )
    return (
        f"{market}: {format_usd(window_usd)} of {who} liquidated in {window_s} s, "
        f"cascade score {score}/10, {direction} momentum likely to continue."
    )
