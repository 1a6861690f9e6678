"""Recorded BitMEX liquidations: Tardis.dev ``bitmex`` rows of XBT's inverse contracts and of
XBTUSDT.

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
sample_data/BITMEX.0, has multiplier -100000000, and the catalog sizes them so). XBTUSDT, the
linear perpetual listed 2021-11-10, is 0.000001 XBT a contract: BitMEX's support article "How
Do I Calculate Contract Size ... Using the instrument Endpoint" gives a linear contract's size
as 1/underlyingToPositionMultiplier, and the XBTUSDT answer recorded 2026-05-21 (ccxt/ccxt
ts/src/test/static/markets/bitmex.json, "listing": "2021-11-10") has
underlyingToPositionMultiplier 1000000, multiplier 1, and volume24h 158,973,200 contracts
against homeNotional24h 158.9732 XBT. Another quanto (``ETHUSD``, whose dollars need XBT's
price of that day) or linear (``SOLUSDT``, sized by the day's list) row is a bad row that says
so; a row of a contract not quoted in USD (``XBTEUR``) is ignored, as the live feed drops its
event unsized.
"""

from __future__ import annotations

import re

import msgspec

from purpleflea.model import VenueLiquidation
from purpleflea.venues import symbols
from purpleflea.venues._catalog import inverse, linear
from purpleflea.venues._rows import RowError, tardis_event_id
from purpleflea.venues.bitmex.constants import EXCHANGE
from purpleflea.venues.bitmex.normalizer import insert_event, market
from purpleflea.venues.venue import History, TardisRow

#: XBTUSD and the XBT futures quoted in USD (``XBTZ24``): inverse, one USD per contract.
_XBT_INVERSE = re.compile(f"XBT(USD|[{symbols.MONTH_CODES}]\\d\\d)")
#: USD per contract of every inverse instrument (module docstring).
INVERSE_CONTRACT_USD = 1.0
#: XBT per contract of XBTUSDT (1 / its underlyingToPositionMultiplier; module docstring).
XBTUSDT_CONTRACT_XBT = 1e-6


def read_tardis(row: TardisRow) -> VenueLiquidation | None:
    """Tardis ``bitmex``: the live event of the insert row, for XBT's inverse contracts and
    XBTUSDT."""
    if not market(row.symbol)[1]:
        return None  # not quoted in USD: the live feed drops the event unsized
    if row.symbol == "XBTUSDT":
        instruments = {row.symbol: linear(EXCHANGE, row.symbol, XBTUSDT_CONTRACT_XBT)}
    elif _XBT_INVERSE.fullmatch(row.symbol) is not None:
        instruments = {row.symbol: inverse(EXCHANGE, row.symbol, INVERSE_CONTRACT_USD)}
    else:
        raise RowError(
            f"symbol {row.symbol!r}: only XBTUSD, XBT futures (1 USD a contract) and XBTUSDT "
            "(0.000001 XBT) are sized without BitMEX's instrument list of the day (other quanto "
            "and linear contracts need it)"
        )
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
