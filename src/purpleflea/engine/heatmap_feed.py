"""Feeds the heatmap model from snapshots and events, and its fuel to the cascade engine.

Each :class:`~purpleflea.model.MarketSnapshot` updates the model with the price range the
market traded through since its previous snapshot (seen through liquidation prices and the
marks), so tranches the price swept through are removed. After each update, the notional at
risk within ``fuel_pct`` of the mark on each side, over its own running average, is the
"fuel ahead" ratio handed to the cascade engine. Each snapshot whose open interest the engine
was told also goes to ``on_open_interest`` (the server stores them for backtests: see
:mod:`purpleflea.server.oi_recorder`), and each listing retired to ``on_retired``. Pure apart
from a log line: the live server, the evaluation and backtests
(:mod:`purpleflea.backtest.runner`) drive the same feed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from purpleflea.engine.heatmap import HeatmapModel
from purpleflea.model import HISTORY_EXCHANGE, MarketSnapshot, Side, instrument_of

log = logging.getLogger("purpleflea.heatmap")


@runtime_checkable
class FuelSink(Protocol):
    """The cascade engine's hooks for what the heatmap side knows of a market."""

    def set_fuel(self, market: str, side: Side, ratio: float) -> None: ...

    def set_open_interest(self, market: str, usd: float, instrument: str = "") -> None: ...


class HeatmapFeed:
    """The server's heatmap state: one model for all markets."""

    def __init__(
        self,
        model: HeatmapModel | None = None,
        *,
        fuel: FuelSink | None = None,
        fuel_pct: float = 2.0,
        fuel_memory: float = 0.05,
        on_open_interest: Callable[[MarketSnapshot], None] | None = None,
        on_retired: Callable[[str, str, int], None] | None = None,
    ) -> None:
        self.model = model if model is not None else HeatmapModel()
        self.fuel = fuel
        self.on_open_interest = on_open_interest
        #: ``(market, "<exchange>:<symbol>", ts)`` of each listing the engine was told is gone
        #: at snapshot time ``ts`` (the recorder drops it as ``on_open_interest`` added it).
        self.on_retired = on_retired
        self.fuel_pct = fuel_pct
        self.fuel_memory = fuel_memory
        self._range: dict[str, tuple[float, float]] = {}
        self._usual: dict[tuple[str, Side], float] = {}
        #: Markets whose stored total a restart told the model or the engine
        #: (:meth:`restore`, :meth:`told_history`, :meth:`continued`): dropped at the market's
        #: first live snapshot.
        self._history: set[str] = set()
        #: Listings a continued engine holds, (market, "<exchange>:<symbol>"), that no live
        #: snapshot has reported since (:meth:`continued`); with the first snapshot time after.
        self._unconfirmed: set[tuple[str, str]] = set()
        self._unconfirmed_since: int | None = None

    @property
    def memory_ms(self) -> int:
        """How far back the model's state reaches: the time its turnover takes to replace
        all but 5 % of the positions a market held (10 h at 0.3 an hour); a restart rebuilds
        from the stored open interest of that long."""
        turnover = self.model.config.turnover_per_hour
        return int(math.log(20.0) / turnover * 3_600_000) if turnover > 0 else 7 * 86_400_000

    def restore(self, snapshots: Iterable[MarketSnapshot]) -> int:
        """Rebuild the model from stored snapshots (a restart: the open interest the store
        kept, each row a market's total as one instrument), in time order; returns how many
        were applied. The engine and the recorder are not told: the engine has its own state,
        and the rows are stored already. A market's first live snapshot afterwards drops its
        rebuilt book, which it would otherwise be added to (the same positions twice)."""
        applied = 0
        for snapshot in snapshots:
            if snapshot.mark_price <= 0 or snapshot.open_interest <= 0:
                continue  # a row stored before marks were kept: no prices to place it at
            if self.model.on_snapshot(snapshot):
                # The rows' marks are the path; the prices of events before them are not.
                self._range.pop(snapshot.market, None)
                self._history.add(snapshot.market)
                applied += 1
        return applied

    def continued(self, listings: Iterable[tuple[str, str]]) -> None:
        """The engine was continued from its saved state (a clean restart) holding the open
        interest of ``listings``, (market, ``"<exchange>:<symbol>"``), of which this model
        has no book, so none is ever retired here: each one no snapshot reports within the
        model's ``retire_after_h`` (by snapshot time, from the first one after this) is
        dropped from the engine, as a listing the model retires is (an expired future). A
        stored total a warm told it before the stop (``history:<market>``, no live snapshot of
        the market since) is dropped at the market's first live snapshot, as after a warm."""
        listings = set(listings)
        self._unconfirmed.update(listings)
        self._unconfirmed_since = None
        for market, instrument in listings:
            if instrument == f"{HISTORY_EXCHANGE}:{market}":
                self._history.add(market)

    def _confirm(self, snapshot: MarketSnapshot) -> None:
        """``snapshot``'s listing is alive; past the retire time, the silent ones are not."""
        self._unconfirmed.discard((snapshot.market, instrument_of(snapshot)))
        since = self._unconfirmed_since
        if since is None:
            self._unconfirmed_since = snapshot.ts
            return
        if snapshot.ts - since < self.model.config.retire_after_h * 3_600_000:
            return
        for market, instrument in sorted(self._unconfirmed):
            if self.fuel is not None:
                self.fuel.set_open_interest(market, 0.0, instrument)
        self._unconfirmed.clear()

    def told_history(self, market: str) -> None:
        """The engine was told ``market``'s stored total (a restart's warm, as the instrument
        ``history:<market>``): the market's first live snapshot makes it forget it."""
        self._history.add(market)

    def note_price(self, market: str, price: float) -> None:
        """A trade or liquidation price seen on ``market`` (widens the swept range)."""
        found = self._range.get(market)
        if found is None:
            self._range[market] = (price, price)
        elif price < found[0]:
            self._range[market] = (price, found[1])
        elif price > found[1]:
            self._range[market] = (found[0], price)
        # Within the range (most prices, at crash rates once per event): nothing to build.

    def retire_prices(self, market: str) -> bool:
        """Forget the prices noted of ``market``, whose events stopped (the tracker retires
        it), unless it is listed: False, and nothing forgotten, while a listing of it is
        (its range goes at its next snapshot)."""
        if self.model.lists(market):
            return False
        self._range.pop(market, None)
        return True

    def on_snapshot(self, snapshot: MarketSnapshot) -> None:
        market = snapshot.market
        if self._unconfirmed:
            self._confirm(snapshot)
        if self._history and market in self._history and snapshot.exchange != HISTORY_EXCHANGE:
            self._history.discard(market)
            self._drop_history(market)
        low, high = self._range.pop(market, (snapshot.mark_price, snapshot.mark_price))
        fresh = self.model.on_snapshot(
            snapshot, low=min(low, snapshot.mark_price), high=max(high, snapshot.mark_price)
        )
        for gone, exchange, symbol in self.model.take_retired():
            # An expired or delisted listing no longer counts in its market's size.
            if self.fuel is not None:
                self.fuel.set_open_interest(gone, 0.0, f"{exchange}:{symbol}")
                if self.on_retired is not None:
                    self.on_retired(gone, f"{exchange}:{symbol}", snapshot.ts)
            if gone not in self.model.markets():
                for side in ("long", "short"):
                    self._usual.pop((gone, side), None)
                self._range.pop(gone, None)
        if self.fuel is not None and fresh:  # a stale snapshot changes nothing
            # The engine sizes a cascade against the market's open interest, summed over
            # its listings on every exchange.
            self.fuel.set_open_interest(market, snapshot.open_interest_usd, instrument_of(snapshot))
            if self.on_open_interest is not None:
                self.on_open_interest(snapshot)  # exactly what the engine saw, for backtests
            self._update_fuel(market, snapshot.mark_price)

    def _drop_history(self, market: str) -> None:
        """Forget the stored total a restart told the model and the engine: the market's live
        listings replace it (added to it, the market counted twice: after a warm the engine
        sized cascades against the stored total plus every listing)."""
        self.model.forget(market, HISTORY_EXCHANGE, market)
        if self.fuel is not None:
            self.fuel.set_open_interest(market, 0.0, f"{HISTORY_EXCHANGE}:{market}")

    def _update_fuel(self, market: str, mark: float) -> None:
        assert self.fuel is not None
        sides: tuple[Side, Side] = ("long", "short")
        for side in sides:
            ahead = self.model.fuel(market, side, mark, self.fuel_pct)
            key = (market, side)
            usual = self._usual.get(key)
            usual = ahead if usual is None else usual + self.fuel_memory * (ahead - usual)
            self._usual[key] = usual
            self.fuel.set_fuel(market, side, ahead / usual if usual > 0 else 1.0)
