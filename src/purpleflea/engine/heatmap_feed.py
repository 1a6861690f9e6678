"""Feeds the heatmap model from snapshots and events, and its fuel to the cascade engine.

Each :class:`~purpleflea.model.MarketSnapshot` updates the model with the price range the
market traded through since its previous snapshot (seen through liquidation prices and the
marks), so tranches the price swept through are removed. After each update, the notional at
risk within ``fuel_pct`` of the mark on each side, over its own running average, is the
"fuel ahead" ratio handed to the cascade engine. Each snapshot whose open interest the engine
was told also goes to ``on_open_interest`` (the server stores them for backtests: see
:mod:`purpleflea.server.oi_recorder`). Pure apart from a log line: the live server, the
evaluation and backtests (:mod:`purpleflea.backtest.runner`) drive the same feed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from purpleflea.engine.heatmap import HeatmapModel
from purpleflea.model import MarketSnapshot, Side, instrument_of

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
    ) -> None:
        self.model = model if model is not None else HeatmapModel()
        self.fuel = fuel
        self.on_open_interest = on_open_interest
        self.fuel_pct = fuel_pct
        self.fuel_memory = fuel_memory
        self._range: dict[str, tuple[float, float]] = {}
        self._usual: dict[tuple[str, Side], float] = {}

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

    def on_snapshot(self, snapshot: MarketSnapshot) -> None:
        market = snapshot.market
        low, high = self._range.pop(market, (snapshot.mark_price, snapshot.mark_price))
        fresh = self.model.on_snapshot(
            snapshot, low=min(low, snapshot.mark_price), high=max(high, snapshot.mark_price)
        )
        for gone, exchange, symbol in self.model.take_retired():
            # An expired or delisted listing no longer counts in its market's size.
            if self.fuel is not None:
                self.fuel.set_open_interest(gone, 0.0, f"{exchange}:{symbol}")
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
