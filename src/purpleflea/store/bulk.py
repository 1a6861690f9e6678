"""Events as columns for a bulk load: what the simulator's history hands a store in one batch.

A batch of millions of :class:`~purpleflea.model.Liquidation` structs costs Python work per
event twice, once to build each struct and once to take it apart into a row and a rollup
cell. :class:`EventColumns` carries the same batch as arrays (the simulator's own), and the
functions here turn it into the SQL parameters with numpy: the event rows as one flat list,
and the minute and hour rollup rows summed exactly as
:meth:`~purpleflea.store.sqlite.SQLiteStore.append_now` sums them (same cells, floats added
in the same order), so a bulk-loaded store holds the same bytes as one appended batch by
batch, but for the rollups' ``seconds``: counted per batch here, where an append leaves out
the seconds stored events of the cell already carried (a second split between two batches
counts twice here: a few rows in a day of simulated history).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from purpleflea.engine.coverage import SHARE_WINDOW_MS
from purpleflea.model import Coverage, Liquidation

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_MINUTE_MS = 60_000
_HOUR_MS = 3_600_000
#: Sides by ``long`` (False, True), as stored.
_SIDES = np.array(["short", "long"], dtype=object)


@dataclass(frozen=True, slots=True)
class Venue:
    """Where an event was published: the stored strings its venue code stands for."""

    exchange: str
    symbol: str
    market: str
    coverage: Coverage


@dataclass(frozen=True, slots=True)
class EventColumns:
    """A batch of events as columns, in seq order (``cascade_score`` is 0 for all of them).

    ``venue`` indexes ``venues``; ``long`` is True where a long position was liquidated.
    ``size_usd`` is ``price * quantity``, as :func:`purpleflea.model` events compute it.
    """

    seq: IntArray
    ids: list[str]
    venue: IntArray
    venues: Sequence[Venue]
    long: BoolArray
    price: FloatArray
    quantity: FloatArray
    ts: IntArray
    received_at: IntArray

    def __len__(self) -> int:
        return len(self.ids)

    def events(self) -> list[Liquidation]:
        """The same batch as published structs (for stores without a bulk path, and tests)."""
        size = (self.price * self.quantity).tolist()
        rows = zip(
            self.seq.tolist(),
            self.ids,
            self.venue.tolist(),
            _SIDES[self.long.astype(np.intp)].tolist(),
            self.price.tolist(),
            self.quantity.tolist(),
            size,
            self.ts.tolist(),
            self.received_at.tolist(),
            strict=True,
        )
        venues = self.venues
        return [
            Liquidation(
                id=event_id,
                seq=seq,
                exchange=venues[v].exchange,
                symbol=venues[v].symbol,
                market=venues[v].market,
                side=side,
                price=price,
                quantity=quantity,
                size_usd=usd,
                ts=ts,
                received_at=received,
                coverage=venues[v].coverage,
            )
            for seq, event_id, v, side, price, quantity, usd, ts, received in rows
        ]


def event_params(columns: EventColumns) -> list[Any]:
    """Every event's row in :data:`~purpleflea.store.base.COLUMNS` order, one flat list.

    Built column by column in an object array, so the per-event work is numpy's C loops
    (Python ints, floats and shared strings), not a Python loop.
    """
    strings = np.array(
        [(v.exchange, v.symbol, v.market, v.coverage) for v in columns.venues], dtype=object
    ).reshape(-1, 4)
    by_event = strings[columns.venue]
    table = np.empty((len(columns), 13), dtype=object)
    table[:, 0] = columns.seq
    table[:, 1] = columns.ids
    table[:, 2:5] = by_event[:, :3]
    table[:, 5] = _SIDES[columns.long.astype(np.intp)]
    table[:, 6] = columns.price
    table[:, 7] = columns.quantity
    table[:, 8] = columns.price * columns.quantity
    table[:, 9] = columns.ts
    table[:, 10] = columns.received_at
    table[:, 11] = 0
    table[:, 12] = by_event[:, 3]
    params: list[Any] = table.ravel().tolist()
    return params


@dataclass(frozen=True, slots=True)
class Rollups:
    """One batch's rollup rows (the upserts' parameters, flat) and the coverage factor
    ranges its hours invalidate."""

    minute: list[Any]  # (minute, market, exchange, side, count, size_usd, seconds) per row
    hour: list[Any]  # (hour, market, exchange, side, count, size_usd, seconds) per row
    invalidate: set[tuple[str, int, int]]  # (market, first hour, end) per market and hour


def rollups(columns: EventColumns) -> Rollups:
    """The batch's minute and hour rollup cells, as ``append_now`` builds them.

    A minute cell sums its events' notional in event order; an hour cell sums its minute
    cells in the order each minute cell first appeared; ``seconds`` counts the distinct
    seconds within this batch. ``np.bincount`` adds its weights one by one in input order,
    so each float is the same sum, bit for bit, as the loop's.
    """
    # Cells are (minute, market, exchange, side); venues of one market on one exchange share
    # a cell, so the key is built from the (market, exchange) pair, not the venue.
    pair_names = sorted({(v.market, v.exchange) for v in columns.venues})
    pair_code = {pair: code for code, pair in enumerate(pair_names)}
    venue_pair = np.array(
        [pair_code[(v.market, v.exchange)] for v in columns.venues], dtype=np.int64
    )
    pair = venue_pair[columns.venue]
    minute = columns.ts // _MINUTE_MS * _MINUTE_MS
    key = (minute // _MINUTE_MS * len(pair_names) + pair) * 2 + columns.long
    at, cell = _cells_in_first_order(key)
    cells = at.size
    count = np.bincount(cell, minlength=cells)
    usd = np.bincount(cell, weights=columns.price * columns.quantity, minlength=cells)
    second_key = np.unique(cell * (1 << 40) + columns.ts // 1000)
    seconds = np.bincount(second_key >> 40, minlength=cells)
    cell_minute = minute[at]
    cell_pair = pair[at]
    cell_long = columns.long[at]

    hour = cell_minute // _HOUR_MS * _HOUR_MS
    hour_key = (hour // _HOUR_MS * len(pair_names) + cell_pair) * 2 + cell_long
    hour_at, hour_cell = _cells_in_first_order(hour_key)
    hours = hour_at.size
    # Minute cells are already in first-appearance order: the weights go in that order.
    hour_count = np.bincount(hour_cell, weights=count, minlength=hours).astype(np.int64)
    hour_usd = np.bincount(hour_cell, weights=usd, minlength=hours)
    hour_seconds = np.bincount(hour_cell, weights=seconds, minlength=hours).astype(np.int64)

    names = np.array(pair_names, dtype=object).reshape(-1, 2)
    minute_rows = _flat(
        cell_minute, names[cell_pair], _SIDES[cell_long.astype(np.intp)], count, usd, seconds
    )
    hour_pair = cell_pair[hour_at]
    hour_rows = _flat(
        hour[hour_at],
        names[hour_pair],
        _SIDES[cell_long[hour_at].astype(np.intp)],
        hour_count,
        hour_usd,
        hour_seconds,
    )
    invalidate = {
        (market, start, start + SHARE_WINDOW_MS)
        for market, start in zip(names[hour_pair, 0].tolist(), hour[hour_at].tolist(), strict=True)
    }
    return Rollups(minute_rows, hour_rows, invalidate)


def _cells_in_first_order(key: npt.NDArray[np.int64]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """The distinct keys numbered in the order they first appear (the row loop's dict order):
    each cell's first index in ``key``, and each element's cell number."""
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return first[order], rank[inverse.ravel()]


def _flat(
    start: IntArray,
    market_exchange: npt.NDArray[np.object_],
    side: npt.NDArray[np.object_],
    count: npt.NDArray[Any],
    usd: npt.NDArray[Any],  # np.bincount's sums (typed as its counts)
    seconds: npt.NDArray[Any],
) -> list[Any]:
    """Rollup rows (start, market, exchange, side, count, size_usd, seconds), one flat list."""
    table = np.empty((start.size, 7), dtype=object)
    table[:, 0] = start
    table[:, 1:3] = market_exchange
    table[:, 3] = side
    table[:, 4] = count
    table[:, 5] = usd
    table[:, 6] = seconds
    rows: list[Any] = table.ravel().tolist()
    return rows
