"""OKX: exchange id, display name and coverage class."""

from __future__ import annotations

from typing import Final

from purpleflea.model import Coverage
from purpleflea.venues.venue import SimListing

EXCHANGE: Final = "okx"
DISPLAY_NAME: Final = "OKX"
#: shared/EXCHANGES.md line 19 (OKX v5): "doesn't represent the total"; older docs: max 1
#: order per contract per second; trap 4 lists OKX among the snapshots.
COVERAGE: Coverage = "snapshot"


def sim_symbol(base: str, bundle: str) -> str:
    """The simulator's symbol of ``base``'s perpetual here (``bundle``: ``1000`` for PEPE...)."""
    del bundle
    return f"{base}-USDT-SWAP"


#: The market simulator's listing of this exchange (see SimListing).
SIM = SimListing(order=2, share=0.15, listed_up_to=200, symbol=sim_symbol)
