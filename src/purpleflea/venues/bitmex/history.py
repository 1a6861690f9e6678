"""Recorded BitMEX liquidations: Tardis.dev ``bitmex`` rows of XBT's inverse contracts.

tardis-node's liquidations mapper (``src/mappers/bitmex.ts``, since commit c9c93c1 of
2020-10-01) writes one row per row of a ``liquidation`` table ``insert`` (not of the ``partial``
snapshot, an ``update`` or a ``delete``): ``symbol``, ``id`` = ``orderID``, ``price``,
``amount`` = ``leavesQty`` (contracts), ``side`` = the order side in lower case, and as
``timestamp`` its own receive time, BitMEX sending none. That is the insert row the live
normalizer reads, so the row is given to the normalizer's own rule and gets the live id
``bitmex:{orderID}``. What a later ``update`` adds to a resting order (the live
``bitmex:{orderID}:{before}-{after}`` events) is in no Tardis row.

Contracts become coins and dollars only through the instrument list (``_units.from_contracts``),
and the importer has none: a row is sized only where the contract's size is fixed by its kind.
XBTUSD and the XBT futures (``XBTZ24``) are inverse, one USD per contract (BitMEX's Inverse
Perpetuals and Inverse Futures guides, bitmex.com/app/inversePerpetualsGuide and
/inverseFuturesGuide: "Multiplier 1 USD", "USD Contract Value 1 USD"; shared/EXCHANGES.md; every
``isInverse`` instrument of the list recorded 2021-07-22, bmoscon/cryptofeed
sample_data/BITMEX.0, has multiplier -100000000, and the catalog sizes them so). A quanto
(``ETHUSD``, whose dollars need XBT's price of that day) or linear (``XBTUSDT``, sized by the
list's ``underlyingToPositionMultiplier``) row is a bad row that says so; a row of a contract
not quoted in USD (``XBTEUR``) is ignored, as the live feed drops its event unsized.
"""

from __future__ import annotations

import re

import msgspec

from purpleflea.model import VenueLiquidation
from purpleflea.venues import symbols
from purpleflea.venues._catalog import inverse
from purpleflea.venues._rows import RowError, tardis_event_id
from purpleflea.venues.bitmex.constants import EXCHANGE
from purpleflea.venues.bitmex.normalizer import insert_event, market
from purpleflea.venues.venue import History, TardisRow

#: XBTUSD and the XBT futures quoted in USD (``XBTZ24``): inverse, one USD per contract.
_XBT_INVERSE = re.compile(f"XBT(USD|[{symbols.MONTH_CODES}]\\d\\d)")
#: USD per contract of every inverse instrument (module docstring).
INVERSE_CONTRACT_USD = 1.0


def read_tardis(row: TardisRow) -> VenueLiquidation | None:
    """Tardis ``bitmex``: the live event of the insert row, for XBT's inverse contracts."""
    if not market(row.symbol)[1]:
        return None  # not quoted in USD: the live feed drops the event unsized
    if _XBT_INVERSE.fullmatch(row.symbol) is None:
        raise RowError(
            f"symbol {row.symbol!r}: only XBTUSD and XBT futures (1 USD a contract) are sized "
            "without BitMEX's instrument list of the day (quanto and linear contracts need it)"
        )
    instruments = {row.symbol: inverse(EXCHANGE, row.symbol, INVERSE_CONTRACT_USD)}
    order_side = "Buy" if row.order_side == "buy" else "Sell"
    event = insert_event(
        row.trade_id,
        row.symbol,
        order_side,
        row.price,
        row.amount,
        instruments,
        ts=row.ts,
    )
    if event is None:
        raise RowError("amount must be > 0")
    if not row.trade_id:  # no orderID: the live id cannot be rebuilt
        event = msgspec.structs.replace(event, id=tardis_event_id(EXCHANGE, row))
    return event


HISTORY = History(tardis={"bitmex": read_tardis})
