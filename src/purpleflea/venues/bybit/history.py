"""Recorded Bybit liquidations: Tardis.dev rows, sized by the normalizer's market rules."""

from __future__ import annotations

from purpleflea.model import VenueLiquidation
from purpleflea.venues._rows import tardis_liquidation
from purpleflea.venues._units import from_coins, from_usd
from purpleflea.venues.bybit.constants import EXCHANGE
from purpleflea.venues.bybit.normalizer import market
from purpleflea.venues.venue import History, TardisRow


def read_tardis(row: TardisRow) -> VenueLiquidation:
    """Tardis ``bybit``: ``amount`` in USD for inverse symbols (BTCUSD), coins for linear."""
    name, kind = market(row.symbol)
    if kind == "inverse":
        sizes = from_usd(EXCHANGE, row.amount, row.price)
    else:
        sizes = from_coins(EXCHANGE, row.amount, row.price)
    return tardis_liquidation(EXCHANGE, name, row, sizes)


HISTORY = History(tardis={"bybit": read_tardis})
