"""Sans-I/O exchange normalizers: raw frame bytes in, liquidation events out.

Each module reads one exchange's public liquidation feed. Every normalizer has the shape
``normalize(frame, instruments) -> list[VenueLiquidation]``: pure, no I/O, no clock; control
frames (acks, pongs, heartbeats) yield nothing; a frame it cannot read raises
:class:`FrameError` naming the exchange and the problem.

:mod:`~purpleflea.venues.hyperliquid` is not in :data:`NORMALIZERS`: Hyperliquid has no
public liquidation feed, only per-address fills and node output, read by its own functions.
"""

from __future__ import annotations

from collections.abc import Callable

from purpleflea.model import Catalog, VenueLiquidation
from purpleflea.venues import (
    binance,
    bitget,
    bitmex,
    bybit,
    deribit,
    dydx,
    gate,
    htx,
    hyperliquid,
    kraken,
    okx,
)
from purpleflea.venues._frame import FrameError

Normalizer = Callable[[bytes | str, Catalog], list[VenueLiquidation]]

#: The normalizer of every exchange with a public liquidation stream, by exchange id.
NORMALIZERS: dict[str, Normalizer] = {
    binance.USDM: binance.normalize_usdm,
    binance.COINM: binance.normalize_coinm,
    bybit.EXCHANGE: bybit.normalize,
    okx.EXCHANGE: okx.normalize,
    bitmex.EXCHANGE: bitmex.normalize,
    deribit.EXCHANGE: deribit.normalize,
    dydx.EXCHANGE: dydx.normalize,
    kraken.EXCHANGE: kraken.normalize,
    bitget.EXCHANGE: bitget.normalize,
    gate.EXCHANGE: gate.normalize,
    htx.EXCHANGE: htx.normalize,
}

__all__ = ["NORMALIZERS", "FrameError", "Normalizer", "hyperliquid"]
