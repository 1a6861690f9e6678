"""Which liquidation prices are the market's price: one rule for the live server and backtests.

A fill price (``registry.fill_priced``: Binance, Deribit, dYdX, Hyperliquid, Kraken) is where
the market traded. A bankruptcy or order price (Bybit, OKX, HTX, BitMEX, Gate) sits 0.4-0.6 %
or more from it (docs/live.md, "What `price` is"): read as the market's, it would mark a
backtest's position where nobody traded and widen a heatmap's swept range past where the market
went. So a market's prices count from its first fill on only if they are fills; before any fill
(a coin only bankruptcy-priced venues list) every price counts, being all there is.

The cascade engine keeps the same rule in its own compiled state (``engine/cascade.py``).
"""

from __future__ import annotations

from collections.abc import Iterable


class MarketPrice:
    """Decides, event by event, whether an event's price is its market's price."""

    __slots__ = ("_fill", "_filled")

    def __init__(self, fill_priced: Iterable[str] | None = None) -> None:
        """``fill_priced``: the exchange ids whose ``price`` is a fill; None: every one's."""
        self._fill: frozenset[str] | None = None if fill_priced is None else frozenset(fill_priced)
        self._filled: set[str] = set()

    def is_fill(self, exchange: str) -> bool:
        """Whether ``exchange``'s prices are fills."""
        return self._fill is None or exchange in self._fill

    def has_fill(self, market: str) -> bool:
        """Whether ``market`` has had a fill-priced event."""
        return market in self._filled

    def counts(self, market: str, exchange: str) -> bool:
        """Whether this event's price is the market's, recording the market's first fill."""
        if self.is_fill(exchange):
            self._filled.add(market)
            return True
        return market not in self._filled

    def forget(self, market: str) -> None:
        """``market`` is gone (retired): its next event is its first."""
        self._filled.discard(market)
