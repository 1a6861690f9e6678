"""Deribit: exchange id, display name, coverage class and price kind."""

from __future__ import annotations

from typing import Final

from purpleflea.model import Coverage
from purpleflea.venues.venue import PriceKind, SimListing

EXCHANGE: Final = "deribit"
DISPLAY_NAME: Final = "Deribit"
#: shared/EXCHANGES.md line 21 (Deribit): "complete (every liquidation trade)".
COVERAGE: Coverage = "complete"
#: ``price`` is the trade's price: the liquidation is a trade of the ``trades`` channel
#: flagged ``liquidation`` (shared/EXCHANGES.md, Deribit).
PRICE: PriceKind = "fill"


def sim_symbol(base: str, bundle: str) -> str:
    """The simulator's symbol of ``base``'s perpetual here (``bundle``: ``1000`` for PEPE...)."""
    del bundle
    return f"{base}-PERPETUAL" if base in ("BTC", "ETH") else f"{base}_USDC-PERPETUAL"


#: The market simulator's listing of this exchange (see SimListing).
SIM = SimListing(order=7, share=0.008, listed_up_to=6, symbol=sim_symbol)
