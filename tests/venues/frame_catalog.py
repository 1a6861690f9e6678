"""Routes our own test frames (tests/venues/frames/) to their normalizer.

A frame file is named ``<route>__<what>.json`` and may have a ``<same>.expected.json`` in the
shared fixture format. ``<route>`` is an exchange id of ``purpleflea.venues.NORMALIZERS`` or one
of the extra routes below. The instruments a route's normalizer sees come from
``frames/instruments/<exchange>.json``: ``{"SYMBOL": {"kind": .., "contract_size": ..}}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

from purpleflea.model import Catalog, Instrument, VenueLiquidation
from purpleflea.venues import NORMALIZERS, hyperliquid

FRAMES_DIR = Path(__file__).parent / "frames"

Normalize = Callable[[bytes], list[VenueLiquidation]]

# The address our userFills test frames were "subscribed" for.
WATCHED_ADDRESS = "0x1111111111111111111111111111111111111111"


@cache
def instruments(exchange: str) -> Catalog:
    path = FRAMES_DIR / "instruments" / f"{exchange}.json"
    if not path.exists():
        return {}
    rows = json.loads(path.read_text())
    return {
        symbol: Instrument(exchange=exchange, symbol=symbol, **row) for symbol, row in rows.items()
    }


def normalizer_for_frame_file(stem: str) -> Normalize:
    route = stem.split("__", 1)[0]
    if route == "hyperliquid_node_fills":
        return hyperliquid.normalize_node_fills
    if route == "hyperliquid_fill":
        return lambda frame: hyperliquid.normalize_fill(frame, owner=WATCHED_ADDRESS)
    if route not in NORMALIZERS:
        raise KeyError(f"test frame {stem!r}: no normalizer route {route!r}")
    normalize = NORMALIZERS[route]
    catalog = instruments(route)
    return lambda frame: normalize(frame, catalog)


def frame_files() -> list[Path]:
    return sorted(p for p in FRAMES_DIR.glob("*.json") if not p.name.endswith(".expected.json"))
