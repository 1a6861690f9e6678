"""Gate: exchange id, display name and coverage class."""

from __future__ import annotations

from typing import Final

from purpleflea.model import Coverage
from purpleflea.venues.venue import SimListing

EXCHANGE: Final = "gate"
DISPLAY_NAME: Final = "Gate"
#: shared/EXCHANGES.md line 26 (Gate.io futures): "max 1 liquidation per contract per second";
#: trap 4 (lines 47-48) lists Gate among the snapshots.
COVERAGE: Coverage = "snapshot"


def sim_symbol(base: str, bundle: str) -> str:
    """The simulator's symbol of ``base``'s perpetual here (``bundle``: ``1000`` for PEPE...)."""
    del bundle
    return f"{base}_USDT"


#: The market simulator's listing of this exchange (see SimListing).
SIM = SimListing(order=4, share=0.035, listed_up_to=None, symbol=sim_symbol)
