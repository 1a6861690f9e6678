"""HTX: exchange id, display name, coverage class and price kind."""

from __future__ import annotations

from typing import Final

from purpleflea.model import Coverage
from purpleflea.venues.venue import PriceKind, SimListing

EXCHANGE: Final = "htx"
DISPLAY_NAME: Final = "HTX"
#: shared/EXCHANGES.md line 27 (HTX linear swap): "not documented as throttled"; trap 4
#: (lines 47-49): HTX "(apparently)" gives every event.
COVERAGE: Coverage = "complete"
#: ``price`` is the **bankruptcy** price: HTX's "[General] Subscribe Liquidation Orders"
#: page (htx.com/en-us/opend/newApiPages/?id=8cb7e25d-77b5-11ed-9966-0242ac110003, copied in
#: rosssaunders/coincise docs/htx @ 5c2103f8): "price | decimal | bankruptcy price". No fill
#: price is sent.
PRICE: PriceKind = "bankruptcy"


def sim_symbol(base: str, bundle: str) -> str:
    """The simulator's symbol of ``base``'s perpetual here (``bundle``: ``1000`` for PEPE...)."""
    del bundle
    return f"{base}-USDT"


#: The market simulator's listing of this exchange (see SimListing).
SIM = SimListing(order=5, share=0.025, listed_up_to=150, symbol=sim_symbol)
