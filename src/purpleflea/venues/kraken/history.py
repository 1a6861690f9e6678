"""Recorded Kraken Futures liquidations: Tardis.dev ``cryptofacilities`` rows, with the live ids.

Tardis names Kraken Futures by its former name, Crypto Facilities. tardis-node's liquidations
mapper (``src/mappers/cryptofacilities.ts``, since commit 2e069ef of 2020-10-05) writes one row
for each ``trade`` feed message of ``type: liquidation`` (not for ``trade_snapshot`` trades):
``symbol`` = ``product_id``, ``id`` = ``uid``, ``price``, ``amount`` = ``qty``, ``side`` = the
trade's ``side`` (the taker's: the liquidation order's) and ``timestamp`` = ``time``. That is
every field the live normalizer reads, so a row is read back into the feed's trade and given to
the feed's own rule (:func:`~purpleflea.venues.kraken.normalizer.trade_event`): the id is the
live ``kraken_futures:{uid}`` and a file overlapping what the tracker recorded live stores each
liquidation once.

``amount`` is the feed's ``qty``: base coins for ``PF_``/``FF_`` products, contracts for
``PI_``/``FI_`` ones, which the importer sizes at 1 USD each without an instrument list: every
inverse product of the list recorded 2021-07-22 (bmoscon/cryptofeed sample_data/KRAKEN_FUTURES.0:
5 ``pi_``, 12 ``fi_``) has ``contractSize`` 1, and Kraken's inverse contract specifications
(support.cryptofacilities.com, "Inverse Crypto-Collateral Perpetual Contract Specifications")
give each a minimum lot of "1 USD".
"""

from __future__ import annotations

import msgspec

from purpleflea.model import NO_INSTRUMENTS, VenueLiquidation
from purpleflea.venues._catalog import inverse
from purpleflea.venues._rows import RowError, tardis_event_id
from purpleflea.venues.kraken.constants import EXCHANGE
from purpleflea.venues.kraken.normalizer import (
    CONTRACT_SIZED,
    LIQUIDATION,
    Trade,
    market,
    trade_event,
)
from purpleflea.venues.venue import History, TardisRow

#: USD per contract of every inverse (``PI_``/``FI_``) product (module docstring).
INVERSE_CONTRACT_USD = 1.0


#: Prefixes of Crypto Facilities' "vanilla" products (``PV_XRPXBT``, ``FV_XRPXBT_...``), XRP
#: quoted in XBT: public clients list them beside ``PI_``/``FI_`` (a Java client's contract
#: size map ``"PV_XRPXBT*"``, ``"FV_XRPXBT*"``; NautilusTrader's Kraken guide: "PV_ - Perpetual
#: Vanilla contracts (e.g., PV_XRPXBT)"). Their price is no USD price.
VANILLA = ("PV_", "FV_")


def read_tardis(row: TardisRow) -> VenueLiquidation | None:
    """Tardis ``cryptofacilities``: the feed's liquidation trade the row was written from; None
    for a vanilla product's, whose dollars are unknown (the live feed follows none of them)."""
    if row.symbol.startswith(VANILLA):
        return None
    found = market(row.symbol)
    if found is None:
        raise RowError(
            f"symbol {row.symbol!r} is not a Kraken Futures product (PI_XBTUSD, PF_XBTUSD, "
            "FI_XBTUSD_200925, FF_XBTUSD_241227)"
        )
    catalog = NO_INSTRUMENTS
    if found[1] in CONTRACT_SIZED:
        catalog = {row.symbol: inverse(EXCHANGE, row.symbol, INVERSE_CONTRACT_USD)}
    trade = Trade(
        row.trade_id, row.order_side, LIQUIDATION, row.ts, row.amount, row.price, row.symbol
    )
    event = trade_event(trade, row.symbol, "", False, catalog)
    if event is None:  # trade_event gives None only for a zero qty, which the importer refuses
        raise RowError("amount must be > 0")
    if not row.trade_id:  # no uid: the live id cannot be rebuilt
        event = msgspec.structs.replace(event, id=tardis_event_id(EXCHANGE, row), trade_id=None)
    return event


HISTORY = History(tardis={"cryptofacilities": read_tardis})
