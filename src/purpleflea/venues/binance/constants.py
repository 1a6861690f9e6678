"""Binance USD-M and COIN-M futures: exchange ids, display names, coverage class and price kind."""

from __future__ import annotations

from typing import Final

from purpleflea.model import Coverage
from purpleflea.venues.venue import PriceKind, SimListing

USDM: Final = "binance_usdm"
COINM: Final = "binance_coinm"
DISPLAY_NAME: Final = "Binance"
USDM_DISPLAY_NAME: Final = "Binance USD-M"
COINM_DISPLAY_NAME: Final = "Binance COIN-M"
#: shared/EXCHANGES.md lines 15-16: "Snapshot: max 1 (the latest) liquidation per symbol per
#: 1000 ms. Undercounts." (COIN-M: "same 1000 ms snapshot").
COVERAGE: Coverage = "snapshot"
#: ``o.ap``, the order's average fill price, is the price (``o.p`` is the IOC order's limit):
#: Binance's Liquidation-Order-Streams docs ("ap": "Average Price"), shared/EXCHANGES.md
#: trap 5 ("``ap`` = average fill price (use ``ap``)"). USD-M and COIN-M alike.
PRICE: PriceKind = "fill"
#: Quotes we count as USD (USDT/USDC at par, as everywhere in the tracker).
USD_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD")


def usdm_sim_symbol(base: str, bundle: str) -> str:
    """The simulator's symbol of ``base``'s perpetual here (``bundle``: ``1000`` for PEPE...)."""
    return f"{bundle}{base}USDT"


#: The market simulator's listing of this exchange (see SimListing).
USDM_SIM = SimListing(order=0, share=0.40, listed_up_to=None, symbol=usdm_sim_symbol)


def coinm_sim_symbol(base: str, bundle: str) -> str:
    """The simulator's symbol of ``base``'s perpetual here (``bundle``: ``1000`` for PEPE...)."""
    del bundle
    return f"{base}USD_PERP"


#: The market simulator's listing of this exchange (see SimListing).
COINM_SIM = SimListing(order=10, share=0.015, listed_up_to=25, symbol=coinm_sim_symbol)
