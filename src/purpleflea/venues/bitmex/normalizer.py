"""BitMEX: the public ``liquidation`` table.

Frames: ``{"table":"liquidation","action":"partial"|"insert"|"update"|"delete","data":[{
"orderID","symbol","side","price","leavesQty"},..]}``. The welcome ``{"info":..}``, subscribe
acks ``{"success":true,..}``, errors ``{"status":..,"error":..}``, the bare-text ``pong`` and
frames of other tables (``trade``, ``quote``, ``orderBookL2``) yield nothing.

Semantics (shared/EXCHANGES.md, BitMEX and traps 5, 6, 12):

- The table lists liquidation **orders resting in the book**, not fills. A row appears on
  ``insert``: that is the liquidation. ``delete`` means it left the book (filled or
  cancelled) and yields nothing. An ``update`` mostly shrinks ``leavesQty`` as the order fills
  or moves its price, which is no new liquidation; but BitMEX also adds a further liquidation
  of the same position to the resting order, and then ``leavesQty`` **grows** (recorded
  2024-11-13: 12,900 -> 21,600 and 900 -> 1,400 XBTUSD contracts, each with a new price).
  cryptofeed and tardis emit inserts only and miss those; :class:`LiquidationBook` remembers
  each resting order's ``leavesQty`` and emits what an update adds as its own event.
  ``partial`` is the snapshot sent on subscribe: its rows are orders already in the book,
  possibly seen before a reconnect, so they are emitted with ``replay=True``.
- ``side`` is the liquidation *order* side: a Buy closes a short.
- ``price`` is the resting order's price, not a fill price; ``leavesQty`` its size in
  contracts, sized through the instrument catalog: XBTUSD is inverse (1 USD each), ETHUSD
  quanto (needs the XBT price as ``settle_usd``), ``..USDT`` linear. An instrument not in the
  catalog keeps its raw count and unknown sizes; one not quoted in USD (``ETHZ24`` in XBT)
  keeps its coins but not its dollars.
- BitMEX sends no time: ``ts`` is None (publishing uses the receive time). The id is the
  ``orderID``, so the snapshot and a later insert of the same order share it; what an update
  adds is ``{orderID}:{leavesQty before}-{after}``.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from functools import lru_cache
from typing import NamedTuple

import msgspec

from purpleflea.model import NO_INSTRUMENTS, Catalog, Side, VenueLiquidation
from purpleflea.venues import symbols
from purpleflea.venues._frame import (
    FrameDecoder,
    FrameError,
    all_or_partial,
    is_text_pong,
    non_negative,
    positive,
    rows_events,
)
from purpleflea.venues._units import Sizes, from_contracts, liquidation
from purpleflea.venues.bitmex.constants import EXCHANGE

TABLE = "liquidation"
_ACTIONS = ("partial", "insert", "update", "delete")

_SIDES: dict[str, Side] = {"Sell": "long", "Buy": "short"}
_QUOTES = ("USDT", "USDC", "USD")
_XBT_FUTURE = re.compile(f"XBT[{symbols.MONTH_CODES}]\\d\\d")


class _Row(msgspec.Struct):
    orderID: str  # noqa: N815 - BitMEX's field name
    symbol: str = ""
    side: str = ""
    price: float | str | None = None
    leavesQty: float | str | None = None  # noqa: N815


class _Frame(msgspec.Struct):
    table: str = ""
    action: str = ""
    # Decoded as rows only for the liquidation table: other tables' rows have no orderID.
    data: msgspec.Raw = msgspec.Raw()  # empty when absent


_decode = FrameDecoder(EXCHANGE, _Frame)
_decode_rows = FrameDecoder(EXCHANGE, list[_Row])


@lru_cache(maxsize=4096)
def market(symbol: str) -> tuple[symbols.Market, bool]:
    """Market of a BitMEX symbol and whether it is quoted in USD.

    ``XBTUSD`` -> BTC-PERP; ``SOLUSDT`` -> SOL-PERP; ``XBTZ24`` -> BTC-20241227 (XBT futures
    are quoted in USD; other coins' bare futures such as ``ETHZ24`` are quoted in XBT, and
    ``XBTEUR`` in EUR).
    """
    name, quote = symbols.concatenated(symbol, _QUOTES)
    # XBTEUR is six letters starting with XBT too, but a perpetual quoted in EUR.
    xbt_future = _XBT_FUTURE.fullmatch(symbol) is not None
    return name, bool(quote) or xbt_future


def _event(
    row: _Row,
    where: str,
    instruments: Catalog,
    *,
    replay: bool = False,
    contracts: float | None = None,
    id: str | None = None,
    ts: int | None = None,
) -> VenueLiquidation | None:
    """The event of a new row, or of ``contracts`` added to a resting one (``id`` given);
    ``ts`` only for a recorded row, which carries its recorder's receive time."""
    if row.leavesQty is None or row.price is None:
        raise FrameError(EXCHANGE, f"{where}: a new liquidation row needs leavesQty and price")
    if contracts is None:
        contracts = non_negative(EXCHANGE, f"{where}.leavesQty", row.leavesQty)
    if contracts == 0:
        return None
    side = _SIDES.get(row.side)
    if side is None:
        raise FrameError(EXCHANGE, f"{where}.side is not Buy/Sell: {row.side!r}")
    if not row.symbol:
        raise FrameError(EXCHANGE, f"{where}.symbol is missing")
    price = positive(EXCHANGE, f"{where}.price", row.price)
    name, usd_quoted = market(row.symbol)
    sizes = from_contracts(EXCHANGE, contracts, price, instruments.get(row.symbol))
    if not usd_quoted:
        sizes = Sizes(sizes.quantity, None)
    return liquidation(
        EXCHANGE,
        name,
        id=id or f"{EXCHANGE}:{row.orderID}",
        symbol=row.symbol,
        side=side,
        price=price,
        sizes=sizes,
        ts=ts,
        replay=replay,
        contracts=contracts,
    )


def insert_event(
    order_id: str,
    symbol: str,
    side: str,
    price: float,
    leaves: float,
    instruments: Catalog,
    *,
    ts: int | None = None,
) -> VenueLiquidation | None:
    """The event of one inserted row (``side`` ``Buy``/``Sell``), as :class:`LiquidationBook`
    gives it; a recorded copy of the row passes the ``ts`` it was received at."""
    return _event(_Row(order_id, symbol, side, price, leaves), "row", instruments, ts=ts)


class _Resting(NamedTuple):
    """What the book knows of a resting liquidation order: an update carries only changes."""

    symbol: str
    side: str
    price: float | str
    leaves: float


def _count(value: float) -> str:
    """A contract count as written in ids: ``21600.0`` -> ``21600``."""
    return f"{value:g}" if value != int(value) else str(int(value))


class LiquidationBook:
    """BitMEX's ``liquidation`` table -> events, remembering the orders resting in the book.

    Stateful only so that an ``update`` which grows an order's ``leavesQty`` can be counted
    (module docstring): an insert or partial row is remembered, a delete forgets it, an update
    that adds contracts yields them as an event at the update's price (else the last one
    known). An update of an order never seen (inserted before we connected, with no partial)
    yields nothing: its earlier size is unknown. At most ``limit`` orders are remembered,
    oldest forgotten first, so orders whose delete was missed cannot grow memory.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = limit
        self._orders: OrderedDict[str, _Resting] = OrderedDict()

    def __call__(
        self, frame: bytes | str, instruments: Catalog = NO_INSTRUMENTS
    ) -> list[VenueLiquidation]:
        """BitMEX frame -> the liquidations it inserts (replays for the partial snapshot) and
        the contracts its updates add to resting orders."""
        if is_text_pong(frame):
            return []
        decoded = _decode(frame)
        if decoded.table != TABLE or decoded.action not in _ACTIONS:
            return []  # control frames and other tables
        if len(decoded.data) == 0:
            raise FrameError(EXCHANGE, f"{decoded.action} without 'data'")
        rows = _decode_rows(decoded.data)
        action = decoded.action
        events, skipped = rows_events(
            rows, lambda i, row: self._row(action, row, f"data[{i}]", instruments)
        )
        return all_or_partial(EXCHANGE, events, skipped, len(rows))

    def _row(
        self, action: str, row: _Row, where: str, instruments: Catalog
    ) -> VenueLiquidation | None:
        """One row of a frame of ``action``: a row that raises is neither an event nor
        remembered, and the frame's other rows still count."""
        if action == "delete":
            self._orders.pop(row.orderID, None)
            return None
        if action == "update":
            return self._update(row, where, instruments)
        event = _event(row, where, instruments, replay=action == "partial")
        self._remember(row)
        return event

    def _remember(self, row: _Row) -> None:
        """Remember a row ``_event`` has checked (``leavesQty`` and ``price`` are set)."""
        if row.leavesQty is None or row.price is None:
            return
        leaves = float(row.leavesQty)
        self._orders[row.orderID] = _Resting(row.symbol, row.side, row.price, leaves)
        self._orders.move_to_end(row.orderID)
        while len(self._orders) > self._limit:
            self._orders.popitem(last=False)

    def _update(self, row: _Row, where: str, instruments: Catalog) -> VenueLiquidation | None:
        known = self._orders.get(row.orderID)
        if known is None:
            return None
        # Checked even when no event follows: a shrink carrying price 0, remembered, made
        # every later update of the order (no price: the remembered one) raise.
        price = (
            known.price if row.price is None else positive(EXCHANGE, f"{where}.price", row.price)
        )
        leaves = known.leaves
        if row.leavesQty is not None:
            leaves = non_negative(EXCHANGE, f"{where}.leavesQty", row.leavesQty)
        updated = known._replace(price=price, leaves=leaves)
        if leaves <= known.leaves:
            self._orders[row.orderID] = updated
            return None  # filled or re-priced: no new liquidation
        merged = _Row(row.orderID, known.symbol, known.side, price, leaves)
        event = _event(
            merged,
            where,
            instruments,
            contracts=leaves - known.leaves,
            id=f"{EXCHANGE}:{row.orderID}:{_count(known.leaves)}-{_count(leaves)}",
        )
        # Remembered once its event is made: an update that raises changes nothing.
        self._orders[row.orderID] = updated
        return event


#: The normalizer of the one BitMEX connection (its book of resting liquidation orders).
normalize = LiquidationBook()
