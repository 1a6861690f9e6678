"""BitMEX: the public ``liquidation`` table.

Frames: ``{"table":"liquidation","action":"partial"|"insert"|"update"|"delete","data":[{
"orderID","symbol","side","price","leavesQty"},..]}``. The welcome ``{"info":..}``, subscribe
acks ``{"success":true,..}``, errors ``{"status":..,"error":..}`` and the bare-text ``pong``
yield nothing.

Semantics (shared/EXCHANGES.md, BitMEX and traps 5, 6, 12):

- The table lists liquidation **orders resting in the book**, not fills. A row appears once,
  on ``insert``: that is the liquidation and the only action that yields an event. ``update``
  only shrinks ``leavesQty`` as the order fills and ``delete`` means it left the book (filled
  or cancelled): neither is a new liquidation, so both yield nothing (cryptofeed and tardis do
  the same). ``partial`` is the snapshot sent on subscribe: its rows are orders already in the
  book, possibly seen before a reconnect, so they are emitted with ``replay=True``.
- ``side`` is the liquidation *order* side: a Buy closes a short.
- ``price`` is the resting order's price, not a fill price; ``leavesQty`` its size in
  contracts, sized through the instrument catalog: XBTUSD is inverse (1 USD each), ETHUSD
  quanto (needs the XBT price as ``settle_usd``), ``..USDT`` linear. An instrument not in the
  catalog keeps its raw count and unknown sizes; one not quoted in USD (``ETHZ24`` in XBT)
  keeps its coins but not its dollars.
- BitMEX sends no time: ``ts`` is None (publishing uses the receive time). The id is the
  ``orderID``, so the snapshot and a later insert of the same order share it.
"""

from __future__ import annotations

import re
from functools import lru_cache

import msgspec

from purpleflea.model import NO_INSTRUMENTS, Catalog, Side, VenueLiquidation
from purpleflea.venues import symbols
from purpleflea.venues._frame import (
    FrameDecoder,
    FrameError,
    is_text_pong,
    non_negative,
    positive,
)
from purpleflea.venues._units import Sizes, from_contracts, liquidation
from purpleflea.venues.bitmex.constants import EXCHANGE

TABLE = "liquidation"

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
    data: list[_Row] | None = None


_decode = FrameDecoder(EXCHANGE, _Frame)


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


def _event(row: _Row, where: str, replay: bool, instruments: Catalog) -> VenueLiquidation | None:
    if row.leavesQty is None or row.price is None:
        raise FrameError(EXCHANGE, f"{where}: a new liquidation row needs leavesQty and price")
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
        id=f"{EXCHANGE}:{row.orderID}",
        symbol=row.symbol,
        side=side,
        price=price,
        sizes=sizes,
        ts=None,
        replay=replay,
        contracts=contracts,
    )


def normalize(frame: bytes | str, instruments: Catalog = NO_INSTRUMENTS) -> list[VenueLiquidation]:
    """BitMEX frame -> the liquidation orders it inserts (replays for the partial snapshot)."""
    if is_text_pong(frame):
        return []
    decoded = _decode(frame)
    if decoded.table != TABLE or decoded.action not in ("insert", "partial"):
        return []  # control frames, other tables, and update/delete of known orders
    if decoded.data is None:
        raise FrameError(EXCHANGE, f"{decoded.action} without 'data'")
    events = []
    for i, row in enumerate(decoded.data):
        event = _event(row, f"data[{i}]", decoded.action == "partial", instruments)
        if event is not None:
            events.append(event)
    return events
