"""Hyperliquid: exchange id, display name, coverage class and price kind."""

from __future__ import annotations

from typing import Final

from purpleflea.model import Coverage
from purpleflea.venues.venue import PriceKind

EXCHANGE: Final = "hyperliquid"
DISPLAY_NAME: Final = "Hyperliquid"
#: shared/EXCHANGES.md line 22 (Hyperliquid): "not a feed; sampling only" (no public
#: liquidation feed, trap 13: only the fills of the addresses we watch).
COVERAGE: Coverage = "sampled"
#: ``px`` is the liquidation fill's price (``liquidation.markPx`` is the mark at the time):
#: shared/EXCHANGES.md trap 5.
PRICE: PriceKind = "fill"
