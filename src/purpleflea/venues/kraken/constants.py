"""Kraken Futures: exchange id, display name, coverage class and price kind."""

from __future__ import annotations

from typing import Final

from purpleflea.model import Coverage
from purpleflea.venues.venue import PriceKind, SimListing

EXCHANGE: Final = "kraken_futures"
DISPLAY_NAME: Final = "Kraken Futures"
#: shared/EXCHANGES.md line 24 (Kraken Futures): "complete trades".
COVERAGE: Coverage = "complete"
#: ``price`` is the trade's price: a ``trade`` of ``type: liquidation`` (shared/EXCHANGES.md,
#: Kraken Futures).
PRICE: PriceKind = "fill"


def sim_symbol(base: str, bundle: str) -> str:
    """The simulator's symbol of ``base``'s perpetual here (``bundle``: ``1000`` for PEPE...)."""
    del bundle
    xbt = "XBT" if base == "BTC" else base
    return f"PF_{xbt}USD"


#: The market simulator's listing of this exchange (see SimListing).
SIM = SimListing(order=9, share=0.01, listed_up_to=80, symbol=sim_symbol)
