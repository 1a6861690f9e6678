"""dYdX v4: exchange id, display name, coverage class and price kind."""

from __future__ import annotations

from typing import Final

from purpleflea.model import Coverage
from purpleflea.venues.venue import PriceKind, SimListing

EXCHANGE: Final = "dydx_v4"
DISPLAY_NAME: Final = "dYdX v4"
#: shared/EXCHANGES.md line 23 (dYdX v4): "complete for ``LIQUIDATED``".
COVERAGE: Coverage = "complete"
#: ``price`` is the trade's price: a ``LIQUIDATED`` trade of ``v4_trades``, the protocol's
#: liquidation order's taker fill (shared/EXCHANGES.md, dYdX v4).
PRICE: PriceKind = "fill"


def sim_symbol(base: str, bundle: str) -> str:
    """The simulator's symbol of ``base``'s perpetual here (``bundle``: ``1000`` for PEPE...)."""
    del bundle
    return f"{base}-USD"


#: The market simulator's listing of this exchange (see SimListing).
SIM = SimListing(order=8, share=0.015, listed_up_to=120, symbol=sim_symbol)
