"""HTX: exchange id, display name and coverage class."""

from __future__ import annotations

from typing import Final

from purpleflea.model import Coverage
from purpleflea.venues.venue import SimListing

EXCHANGE: Final = "htx"
DISPLAY_NAME: Final = "HTX"
#: shared/EXCHANGES.md line 27 (HTX linear swap): "not documented as throttled"; trap 4
#: (lines 47-49): HTX "(apparently)" gives every event.
COVERAGE: Coverage = "complete"


def sim_symbol(base: str, bundle: str) -> str:
    """The simulator's symbol of ``base``'s perpetual here (``bundle``: ``1000`` for PEPE...)."""
    del bundle
    return f"{base}-USDT"


#: The market simulator's listing of this exchange (see SimListing).
SIM = SimListing(order=5, share=0.025, listed_up_to=150, symbol=sim_symbol)
