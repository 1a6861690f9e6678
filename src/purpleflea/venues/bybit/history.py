"""Recorded Bybit liquidations: Tardis.dev rows, sized by the normalizer's market rules.

A row gets the live event's id, ``bybit:{s}:{T}:{S}:{v}:{p}`` (see
:func:`~purpleflea.venues.bybit.normalizer.event_id`), from its own fields: tardis-node's
``allLiquidation`` mapper (``src/mappers/bybit.ts``) writes ``T`` as the timestamp, the position
side ``S`` turned into the order side (``Buy`` -> ``sell``), ``Number(v)`` as the amount and
``Number(p)`` as the price. What the row cannot give back is the frame's spelling of the two
numbers: Bybit pads a price to its tick (BTCUSDT ``"p":"82396.90"``, recorded 2026-10-09), the
row has ``82396.9``. The recorded id spells them canonically (no trailing zeros, no exponent),
which is the live id whenever Bybit wrote no padding (``"v":"2846","p":"0.02456"``, recorded
2025-02-25); otherwise the importer finds the live copy by :data:`LIVE_ID_MATCH`: same symbol,
time and side, equal size and price.

A row with an id in Tardis's ``id`` column is one of Bybit's REST liquidation records, which
Tardis polled before 2023-04-05: it keeps the generic id of that id, as no live copy exists.
Rows of the legacy ``liquidation.{symbol}`` topic (2023-04-05 to 2025-02-25) are timed by the
message's ``ts``, ours by its ``data.updatedTime``; the recorded frames have them equal.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from purpleflea.model import VenueLiquidation
from purpleflea.venues._rows import canonical_quantity, tardis_liquidation
from purpleflea.venues._units import from_coins, from_usd
from purpleflea.venues.bybit.constants import EXCHANGE
from purpleflea.venues.bybit.normalizer import event_id, market
from purpleflea.venues.venue import History, LiveIdMatch, TardisRow

# The position side Bybit writes in S, by the side we store.
_POSITION_SIDES = {"long": "Buy", "short": "Sell"}


def read_tardis(row: TardisRow) -> VenueLiquidation:
    """Tardis ``bybit``: ``amount`` in USD for inverse symbols (BTCUSD), coins for linear."""
    name, kind = market(row.symbol)
    if kind == "inverse":
        sizes = from_usd(EXCHANGE, row.amount, row.price)
    else:
        sizes = from_coins(EXCHANGE, row.amount, row.price)
    if row.trade_id:
        # Before 2023-04-05 Tardis polled Bybit's REST liquidation records, which have ids;
        # the live feed has none, and no live copy can exist.
        return tardis_liquidation(EXCHANGE, name, row, sizes)
    live_id = event_id(
        row.symbol,
        row.ts,
        _POSITION_SIDES[row.side],
        canonical_quantity(row.amount_text),
        canonical_quantity(row.price_text),
    )
    return tardis_liquidation(EXCHANGE, name, row, sizes, id=live_id)


def _numbers(event_id: str) -> tuple[str, tuple[Decimal, Decimal, str]] | None:
    """(prefix, (size, price, ``#n`` suffix)) of a live-shaped id, None for another shape."""
    head, colon, tail = event_id.rpartition(":")
    head, colon2, size = head.rpartition(":")
    if not colon or not colon2 or head.count(":") != 3:
        return None
    price, _, number = tail.partition("#")
    try:
        return f"{head}:", (Decimal(size), Decimal(price), number)
    except InvalidOperation:
        return None


def live_id_prefix(event_id: str) -> str:
    """``bybit:{s}:{T}:{S}:``, the part of an id no spelling of the numbers changes."""
    parsed = _numbers(event_id)
    return event_id if parsed is None else parsed[0]


def same_event(one: str, other: str) -> bool:
    """Whether two ids name one event: same prefix, equal size and price, same ``#n``."""
    first, second = _numbers(one), _numbers(other)
    return first is not None and first == second


LIVE_ID_MATCH = LiveIdMatch(EXCHANGE, live_id_prefix, same_event)

HISTORY = History(tardis={"bybit": read_tardis}, live_id_matches=(LIVE_ID_MATCH,))
