"""Recorded Deribit liquidations: Tardis.dev rows, sized by the normalizer's market rules."""

from __future__ import annotations

from purpleflea.model import VenueLiquidation
from purpleflea.venues._rows import RowError, tardis_liquidation
from purpleflea.venues._units import from_coins, from_usd
from purpleflea.venues.deribit.constants import EXCHANGE
from purpleflea.venues.deribit.normalizer import market
from purpleflea.venues.venue import History, TardisRow


def read_tardis(row: TardisRow) -> VenueLiquidation:
    """Tardis ``deribit``: ``amount`` in USD for inverse instruments (``BTC-PERPETUAL``,
    ``BTC-27DEC24``), coins for linear ones (``BTC_USDC-PERPETUAL``)."""
    found = market(row.symbol)
    if found is None:
        raise RowError(f"symbol {row.symbol!r} is not a Deribit future or perpetual")
    name, linear = found
    if linear:
        sizes = from_coins(EXCHANGE, row.amount, row.price)
    else:
        sizes = from_usd(EXCHANGE, row.amount, row.price)
    return tardis_liquidation(EXCHANGE, name, row, sizes)


HISTORY = History(tardis={"deribit": read_tardis})
