"""OKX: exchange id, display name, coverage class and price kind."""

from __future__ import annotations

from typing import Final

from purpleflea.model import Coverage
from purpleflea.venues.venue import PriceKind, SimListing

EXCHANGE: Final = "okx"
DISPLAY_NAME: Final = "OKX"
#: shared/EXCHANGES.md line 19 (OKX v5): "doesn't represent the total"; older docs: max 1
#: order per contract per second; trap 4 lists OKX among the snapshots.
COVERAGE: Coverage = "snapshot"
#: ``bkPx`` is the **bankruptcy** price, the only price OKX sends (okx.com/docs-v5,
#: liquidation-orders channel; newest wording "Liquidation mark price. The price of the
#: transaction with the system's liquidation account"); shared/EXCHANGES.md trap 5. Measured
#: on real OKX data 0.4-0.6 % from the market, in tracks (docs/cascade.md).
PRICE: PriceKind = "bankruptcy"


def sim_symbol(base: str, bundle: str) -> str:
    """The simulator's symbol of ``base``'s perpetual here (``bundle``: ``1000`` for PEPE...)."""
    del bundle
    return f"{base}-USDT-SWAP"


#: The market simulator's listing of this exchange (see SimListing).
SIM = SimListing(order=2, share=0.15, listed_up_to=200, symbol=sim_symbol)
