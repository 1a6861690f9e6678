"""Bitget: exchange id, display name, coverage class and price kind."""

from __future__ import annotations

from typing import Final

from purpleflea.model import Coverage
from purpleflea.venues.venue import PriceKind, SimListing

EXCHANGE: Final = "bitget"
DISPLAY_NAME: Final = "Bitget"
#: shared/EXCHANGES.md line 25 (Bitget UTA v3): "aggregated"; trap 4 (lines 47-48) lists Bitget
#: among the snapshots. Three copies of the channel page say three things (no cadence; every
#: liquidation every 20 s; the largest per pair and side each second), only the first dated;
#: see the normalizer's docstring. Not settled, so it stays a snapshot.
COVERAGE: Coverage = "snapshot"
#: ``price`` is what Bitget calls the "Liquidation price" (bitget.com/api-doc/uta/websocket/
#: public/Liquidation-Channel; shared/EXCHANGES.md, Bitget) and no more, in every copy of the
#: page: not said to be a fill, the bankruptcy price or the trigger, so it is not taken for a
#: fill. Nor is it an order's limit: the recorded push of 2026-04-28 (tardis-node test) has
#: IPUSDT at ``0.500280739469``, twelve decimals off any tick grid, with ``amount``
#: 143.330431857868 = 286.5 coins at exactly that price: a computed price (an average fill, a
#: bankruptcy or a trigger price would all look so).
PRICE: PriceKind = "liquidation"


def sim_symbol(base: str, bundle: str) -> str:
    """The simulator's symbol of ``base``'s perpetual here (``bundle``: ``1000`` for PEPE...)."""
    del bundle
    return f"{base}USDT"


#: The market simulator's listing of this exchange (see SimListing).
SIM = SimListing(order=3, share=0.08, listed_up_to=None, symbol=sim_symbol)
