"""Gate: exchange id, display name and coverage class."""

from __future__ import annotations

from typing import Final

from purpleflea.model import Coverage
from purpleflea.venues.venue import SimListing

EXCHANGE: Final = "gate"
DISPLAY_NAME: Final = "Gate"
#: Every liquidation. Gate's futures WebSocket changelog of 2026-08-20 (docs zh_CN, quoted in a
#: public changelog diff of 2026-08-21): ``futures.public_liquidates`` now pushes a contract's
#: liquidations of each aggregation period (1 s; 20 buffered push early) as one array,
#: "不再丢弃周期内的其他强平订单" (no longer dropping the period's other liquidation orders), and
#: the docs' "at most one per contract per second" line (shared/EXCHANGES.md's source) is gone.
COVERAGE: Coverage = "complete"


def sim_symbol(base: str, bundle: str) -> str:
    """The simulator's symbol of ``base``'s perpetual here (``bundle``: ``1000`` for PEPE...)."""
    del bundle
    return f"{base}_USDT"


#: The market simulator's listing of this exchange (see SimListing).
SIM = SimListing(order=4, share=0.035, listed_up_to=None, symbol=sim_symbol)
