"""Recorded dYdX v4 liquidations: Tardis.dev ``dydx-v4`` rows, with the live ids.

tardis-node's dYdX v4 mapper (``src/mappers/dydxv4.ts``) writes a row for each ``LIQUIDATED``
trade of a ``v4_trades`` message: the message's market ``id`` as the symbol, the trade ``id``
in its ``id`` column, ``Number(size)`` (base coins) as the amount, ``Number(price)``, the taker
side (the liquidation order's) and ``createdAt`` as the timestamp: every field the live
normalizer reads, so a row is its live event, id included (``dydx_v4:{trade id}``).
"""

from __future__ import annotations

from purpleflea.model import VenueLiquidation
from purpleflea.venues._rows import RowError, tardis_liquidation
from purpleflea.venues._units import from_coins
from purpleflea.venues.dydx.constants import EXCHANGE
from purpleflea.venues.dydx.normalizer import event_id, market
from purpleflea.venues.venue import History, TardisRow


def read_tardis(row: TardisRow) -> VenueLiquidation:
    """Tardis ``dydx-v4``: ``amount`` in base coins; the trade id gives the live id."""
    name = market(row.symbol)
    if name is None:
        raise RowError(f"symbol {row.symbol!r} is not a dYdX market ticker (BTC-USD)")
    live_id = event_id(row.trade_id) if row.trade_id else None
    return tardis_liquidation(
        EXCHANGE, name, row, from_coins(EXCHANGE, row.amount, row.price), id=live_id
    )


HISTORY = History(tardis={"dydx-v4": read_tardis})
