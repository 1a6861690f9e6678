"""Recorded Deribit liquidations: Tardis.dev rows, sized by the normalizer's market rules.

Tardis keeps Deribit's ``trade_id`` in its ``id`` column and maps the ``liquidation`` flag to
the liquidated side (tardis-node ``src/mappers/deribit.ts``: ``T`` the taker's direction, else
the maker's), so a row gets the id the live normalizer gives the same liquidation and a file
overlapping what the tracker recorded live stores each liquidation once.
"""

from __future__ import annotations

from purpleflea.model import VenueLiquidation
from purpleflea.venues._rows import tardis_liquidation
from purpleflea.venues._units import from_coins, from_usd
from purpleflea.venues.deribit.constants import EXCHANGE
from purpleflea.venues.deribit.normalizer import event_id, market
from purpleflea.venues.venue import History, TardisRow


def read_tardis(row: TardisRow) -> VenueLiquidation | None:
    """Tardis ``deribit``: ``amount`` in USD for inverse instruments (``BTC-PERPETUAL``,
    ``BTC-27DEC24``), coins for linear ones (``BTC_USDC-PERPETUAL``); None for an option or
    spot pair, of which the live normalizer gives no event either."""
    found = market(row.symbol)
    if found is None:
        return None
    name, linear = found
    if linear:
        sizes = from_coins(EXCHANGE, row.amount, row.price)
    else:
        sizes = from_usd(EXCHANGE, row.amount, row.price)
    live_id = event_id(row.trade_id, row.side) if row.trade_id else None
    return tardis_liquidation(EXCHANGE, name, row, sizes, id=live_id)


HISTORY = History(tardis={"deribit": read_tardis})
