"""What every open-interest and mark-price parser shares: its error type and value checks.

A parser turns one bulk REST body into :class:`~purpleflea.venues.venue.Reading` rows (mark
price, one side's open interest in coins). A body it cannot read raises :class:`PollError`
naming the exchange; a row without a usable mark or open interest is dropped.
"""

from __future__ import annotations

import json
import math
from typing import Any

from purpleflea.venues.venue import Reading


class PollError(ValueError):
    """A REST body could not be read."""


def json_body(exchange: str, body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise PollError(f"{exchange} open interest: not JSON: {exc}") from None


def as_list(exchange: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise PollError(f"{exchange} open interest: expected a list, got {type(value).__name__}")
    return [row for row in value if isinstance(row, dict)]


def num(value: Any) -> float | None:
    """A finite number >= 0, or None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def reading(symbol: Any, mark: Any, open_interest: Any) -> Reading | None:
    price, oi = num(mark), num(open_interest)
    if not isinstance(symbol, str) or price is None or price <= 0 or oi is None:
        return None
    return Reading(symbol, price, oi)


def keep(rows: list[Reading | None]) -> list[Reading]:
    return [row for row in rows if row is not None]


def in_real_coins(found: Reading, multiplier: float) -> Reading:
    """``found`` for a bundled symbol (``1000PEPEUSDT``, Hyperliquid's ``kPEPE``: a mark per
    bundle of ``multiplier`` coins, open interest in bundles) in real coins, the unit of its
    market (``PEPE-PERP``) everywhere else; its USD value does not change."""
    if multiplier == 1.0:
        return found
    return found._replace(
        mark_price=found.mark_price / multiplier,
        open_interest=found.open_interest * multiplier,
    )
