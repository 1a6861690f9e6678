"""What every recorded-history reader shares: its error type and value checks on text fields.

Recorded rows are text; a row that cannot become an event raises :class:`RowError` naming the
field, and the importer reports it as a bad row and carries on.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation

from purpleflea.model import VenueLiquidation
from purpleflea.venues._units import Sizes, liquidation
from purpleflea.venues.symbols import Market
from purpleflea.venues.venue import TardisRow

# Exchange timestamps outside 2009-01-01 .. 2100-01-01 (ms) are corrupt, not data.
_MIN_TS_MS = 1_230_768_000_000
_MAX_TS_MS = 4_102_444_800_000


class RowError(ValueError):
    """One row cannot become an event; the message says which field and why."""


def number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RowError(f"{name} is not a number: {text!r}") from None
    if not math.isfinite(value):
        raise RowError(f"{name} is not finite: {text!r}")
    return value


def positive(name: str, text: str) -> float:
    value = number(name, text)
    if value <= 0:
        raise RowError(f"{name} must be > 0, got {text!r}")
    return value


def integer(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise RowError(f"{name} is not an integer: {text!r}") from None


def timestamp_ms(name: str, value: int) -> int:
    if not _MIN_TS_MS <= value <= _MAX_TS_MS:
        raise RowError(f"{name} is not a time between 2009 and 2100 in ms: {value}")
    return value


def canonical_quantity(text: str) -> str:
    """``4500.0`` -> ``4500``, ``0.0140`` -> ``0.014``: one spelling per quantity.

    Recorders write quantities through a float (``4500.0``); ids must not depend on that.
    """
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise RowError(f"quantity is not a number: {text!r}") from None
    if not value.is_finite():
        raise RowError(f"quantity is not finite: {text!r}")
    return format(value.normalize(), "f")


def tardis_event_id(exchange: str, row: TardisRow) -> str:
    """``{exchange}:{symbol}:{id or timestamp}:{order side}:{amount}``, ``amount`` in its
    shortest form (``4500.0`` -> ``4500``): the id of a Tardis row whose live event id cannot
    be rebuilt from the row."""
    return (
        f"{exchange}:{row.symbol}:{row.ref}:{row.order_side}:{canonical_quantity(row.amount_text)}"
    )


def tardis_liquidation(
    exchange: str, market: Market, row: TardisRow, sizes: Sizes, id: str | None = None
) -> VenueLiquidation:
    """The event of a Tardis row: its symbol, side, price and time as recorded, ``sizes`` as
    the venue's unit rule reads ``amount``, and ``id`` (the live normalizer's where the row
    allows rebuilding it, else :func:`tardis_event_id`)."""
    return liquidation(
        exchange,
        market,
        id=tardis_event_id(exchange, row) if id is None else id,
        symbol=row.symbol,
        side=row.side,
        price=row.price,
        sizes=sizes,
        ts=row.ts,
    )
