"""BitMEX: exchange id, display name, coverage class and price kind."""

from __future__ import annotations

from typing import Final

from purpleflea.model import Coverage
from purpleflea.venues.venue import PriceKind, SimListing

EXCHANGE: Final = "bitmex"
DISPLAY_NAME: Final = "BitMEX"
#: shared/EXCHANGES.md line 20 (BitMEX): the feed shows liquidation orders resting in the book
#: and "many liquidations never appear": a partial sample of the tape, not every liquidation
#: and not a set of watched accounts, so the nearest class is snapshot.
COVERAGE: Coverage = "snapshot"
#: ``price`` is the liquidation **order**'s price as it rests in the book, not a fill: the
#: ``liquidation`` table lists "Liquidation orders as they're entered into the book"
#: (shared/EXCHANGES.md, BitMEX, and trap 5).
PRICE: PriceKind = "order"


def sim_symbol(base: str, bundle: str) -> str:
    """The simulator's symbol of ``base``'s perpetual here (``bundle``: ``1000`` for PEPE...)."""
    del bundle
    xbt = "XBT" if base == "BTC" else base
    return f"{xbt}USD" if base in ("BTC", "ETH") else f"{base}USDT"


#: The market simulator's listing of this exchange (see SimListing).
SIM = SimListing(order=6, share=0.012, listed_up_to=30, symbol=sim_symbol)
