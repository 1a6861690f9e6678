"""Bybit: exchange id, display name, coverage class and price kind."""

from __future__ import annotations

from typing import Final

from purpleflea.model import Coverage
from purpleflea.venues.venue import PriceKind, SimListing

EXCHANGE: Final = "bybit"
DISPLAY_NAME: Final = "Bybit"
#: shared/EXCHANGES.md line 17 (Bybit v5 ``allLiquidation``): "500 ms push, documented as
#: "all liquidations""; trap 4 (lines 47-49) counts it among the feeds that give every event.
COVERAGE: Coverage = "complete"
#: ``p`` (legacy ``price``) is the **bankruptcy** price, the only price Bybit sends:
#: bybit-exchange/docs ``docs/v5/websocket/public/all-liquidation.mdx`` (HEAD 072c197d,
#: 2026-07-24) "p: Bankruptcy price"; shared/EXCHANGES.md trap 5.
PRICE: PriceKind = "bankruptcy"


def sim_symbol(base: str, bundle: str) -> str:
    """The simulator's symbol of ``base``'s perpetual here (``bundle``: ``1000`` for PEPE...)."""
    return f"{base}1000USDT" if base == "SHIB" else f"{bundle}{base}USDT"


#: The market simulator's listing of this exchange (see SimListing).
SIM = SimListing(order=1, share=0.25, listed_up_to=None, symbol=sim_symbol)
