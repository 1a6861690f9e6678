"""Bitget: exchange id, display name, coverage class and price kind."""

from __future__ import annotations

from typing import Final

from purpleflea.model import Coverage
from purpleflea.venues.venue import PriceKind, SimListing

EXCHANGE: Final = "bitget"
DISPLAY_NAME: Final = "Bitget"
#: shared/EXCHANGES.md line 25 (Bitget UTA v3): "aggregated"; trap 4 (lines 47-48) lists Bitget
#: among the snapshots. Bitget's two copies of the channel doc disagree (every liquidation
#: every 20 s, or the largest per pair and side each second); see the normalizer's docstring.
COVERAGE: Coverage = "snapshot"
#: ``price`` is what Bitget calls the "Liquidation price" (bitget.com/api-doc/uta/websocket/
#: public/Liquidation-Channel; shared/EXCHANGES.md, Bitget) and no more: not said to be a fill,
#: the bankruptcy price or the trigger, so it is not taken for a fill.
PRICE: PriceKind = "liquidation"


def sim_symbol(base: str, bundle: str) -> str:
    """The simulator's symbol of ``base``'s perpetual here (``bundle``: ``1000`` for PEPE...)."""
    del bundle
    return f"{base}USDT"


#: The market simulator's listing of this exchange (see SimListing).
SIM = SimListing(order=3, share=0.08, listed_up_to=None, symbol=sim_symbol)
