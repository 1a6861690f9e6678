"""What the busy-frame tests of tests/venues/test_live_variants_*.py read of an event."""

from __future__ import annotations

from typing import Any

from purpleflea.model import Instrument, VenueLiquidation


def rows(events: list[VenueLiquidation]) -> list[tuple[Any, ...]]:
    """What a reader checks of each event: symbol, market, side and sizes (rounded)."""
    return [
        (
            e.symbol,
            e.market,
            e.side,
            None if e.quantity is None else round(e.quantity, 9),
            None if e.size_usd is None else round(e.size_usd, 6),
        )
        for e in events
    ]


def linear(exchange: str, symbol: str, size: float) -> Instrument:
    return Instrument(exchange=exchange, symbol=symbol, kind="linear", contract_size=size)


def inverse(exchange: str, symbol: str, size: float) -> Instrument:
    return Instrument(exchange=exchange, symbol=symbol, kind="inverse", contract_size=size)
