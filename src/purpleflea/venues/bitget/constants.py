"""Bitget: exchange id, display name and coverage class."""

from __future__ import annotations

from typing import Final

from purpleflea.model import Coverage
from purpleflea.venues.venue import SimListing

EXCHANGE: Final = "bitget"
DISPLAY_NAME: Final = "Bitget"
#: shared/EXCHANGES.md line 25 (Bitget UTA v3): "aggregated"; trap 4 (lines 47-48) lists Bitget
#: among the snapshots. Bitget's two copies of the channel doc disagree (every liquidation
#: every 20 s, or the largest per pair and side each second); see the normalizer's docstring.
COVERAGE: Coverage = "snapshot"


def sim_symbol(base: str, bundle: str) -> str:
    """The simulator's symbol of ``base``'s perpetual here (``bundle``: ``1000`` for PEPE...)."""
    del bundle
    return f"{base}USDT"


#: The market simulator's listing of this exchange (see SimListing).
SIM = SimListing(order=3, share=0.08, listed_up_to=None, symbol=sim_symbol)
