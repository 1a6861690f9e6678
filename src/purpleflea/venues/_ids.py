"""Ids for the rows of one push when the exchange gives its liquidations none of their own.

Bybit, OKX, Bitget, Gate and HTX send no liquidation id, so ours is built from a row's content
(symbol, time, side, size, price). Two liquidations can share all of it: Gate batches every
liquidation of a contract in its 1 s aggregation period into one push (its changelog of
2026-08-20), Bybit every liquidation of a symbol in 500 ms, and two positions of the same size
closed at the same price in the same millisecond make two identical rows. Read as one id, the
second would be dropped as a duplicate of the first.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec

from purpleflea.model import Liquidation, VenueLiquidation

# A normalizer's events, or recorded events of one message (purpleflea.history_io).
_Event = TypeVar("_Event", VenueLiquidation, Liquidation)


def told_apart(events: list[_Event]) -> list[_Event]:
    """``events`` of one push, an id repeated within it numbered from its second occurrence
    (``<id>#2``, ``<id>#3``, ...).

    The first occurrence keeps the plain id, so a later push that repeats a row (a reconnect's
    replay) is still recognised as a duplicate; the same push always gets the same ids.
    """
    if len(events) < 2:
        return events
    seen: dict[str, int] = {}
    numbered = []
    for event in events:
        count = seen.get(event.id, 0) + 1
        seen[event.id] = count
        numbered.append(
            event if count == 1 else msgspec.structs.replace(event, id=f"{event.id}#{count}")
        )
    return numbered
