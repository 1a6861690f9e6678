"""Gate: exchange id, display name, coverage class and price kind."""

from __future__ import annotations

from typing import Final

from purpleflea.model import Coverage
from purpleflea.venues.venue import PriceKind, SimListing

EXCHANGE: Final = "gate"
DISPLAY_NAME: Final = "Gate"
#: Every liquidation. Gate's futures WebSocket changelog of 2026-08-20 (docs zh_CN, quoted in a
#: public changelog diff of 2026-08-21): ``futures.public_liquidates`` now pushes a contract's
#: liquidations of each aggregation period (1 s; 20 buffered push early) as one array,
#: "不再丢弃周期内的其他强平订单" (no longer dropping the period's other liquidation orders), and
#: the docs' "at most one per contract per second" line (shared/EXCHANGES.md's source) is gone.
COVERAGE: Coverage = "complete"
#: ``price`` is the liquidation **order**'s price, not its fill: Gate's futures WebSocket v4
#: docs, ``futures.public_liquidates`` push params, "price | Float | order price" (English),
#: "订单价格" (zh_CN, as changed on 2026-08-20, quoted in a public changelog diff of
#: 2026-08-21). Gate's REST ``liq_orders`` gives the two apart (``order_price`` 3405 against
#: ``fill_price`` 3424 in its example); the channel sends only the first.
PRICE: PriceKind = "order"


def sim_symbol(base: str, bundle: str) -> str:
    """The simulator's symbol of ``base``'s perpetual here (``bundle``: ``1000`` for PEPE...)."""
    del bundle
    return f"{base}_USDT"


#: The market simulator's listing of this exchange (see SimListing).
SIM = SimListing(order=4, share=0.035, listed_up_to=None, symbol=sim_symbol)
