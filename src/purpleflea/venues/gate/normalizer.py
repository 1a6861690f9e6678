"""Gate futures: the ``futures.public_liquidates`` channel.

Frames: ``{"time":..,"time_ms":..,"channel":"futures.public_liquidates","event":"update",
"result":..}``. Recorded live before 2026-08-20, ``result`` was one object
``{contract,price,time,size}`` with ``time`` in ms and ``price`` a string, where the docs then
showed an array with ``time_ms`` and a float price (gateio/WebSocket-API issue #132). Since
Gate's changelog of 2026-08-20 the channel batches every liquidation of a contract in its 1 s
aggregation period into one **array** (``time`` in ms; ``size`` a decimal string under the
``X-Gate-Size-Decimal: 1`` header). Every shape is read. Subscribe acks (``event:
subscribe``), pongs (``futures.pong``) and other channels yield nothing.

Semantics (shared/EXCHANGES.md, Gate and traps 6, 11):

- ``size`` is the liquidation order's signed size in contracts. Its sign is undocumented; the
  best evidence (falling prices with negative sizes, Gate's negative sizes for sell orders,
  the REST ``order_size`` sign) says **negative = sell order = long liquidated**. LOW
  confidence: verify against a live capture. ``contracts`` keeps the raw signed count.
- ``price`` is the liquidation order's price, not its fill (``constants.PRICE``). Sizes come
  from the instrument catalog (:mod:`~purpleflea.venues.gate.catalog`): coins are ``|size| *
  quanto_multiplier`` on the USDT- and USD1-settled lists; on the BTC-settled one ``BTC_USD``
  contracts are 1 USD each and the others quantos, ``|size| * quanto_multiplier * price`` BTC
  at BTC's USD price; unknown without an entry.
- Gate gives no liquidation id; the id is built from contract, time, size and price (a row
  repeated within one push is numbered: :func:`~purpleflea.venues._ids.told_apart`).
"""

from __future__ import annotations

from functools import lru_cache

import msgspec

from purpleflea.model import NO_INSTRUMENTS, Catalog, VenueLiquidation
from purpleflea.venues import symbols
from purpleflea.venues._frame import (
    FrameDecoder,
    FrameError,
    all_or_partial,
    number,
    positive,
    rows_events,
    timestamp_ms,
)
from purpleflea.venues._ids import told_apart
from purpleflea.venues._units import from_contracts, liquidation
from purpleflea.venues.gate.constants import EXCHANGE

CHANNEL = "futures.public_liquidates"


class _Item(msgspec.Struct):
    contract: str
    price: str | float
    size: int | float | str
    time: int | None = None
    time_ms: int | None = None


class _Frame(msgspec.Struct):
    channel: str = ""
    event: str = ""
    result: msgspec.Raw = msgspec.Raw()  # empty when absent


_decode = FrameDecoder(EXCHANGE, _Frame)
_decode_item = FrameDecoder(EXCHANGE, _Item)
_decode_items = FrameDecoder(EXCHANGE, list[_Item])


@lru_cache(maxsize=4096)
def market(contract: str) -> symbols.Market | None:
    """``BTC_USDT`` -> ``BTC-PERP``; ``BTC_USDT_20241227`` -> ``BTC-20241227``; else None."""
    parts = contract.split("_")
    if not parts[0] or len(parts) not in (2, 3):
        return None
    if len(parts) == 2:
        return symbols.perpetual(parts[0])
    date = parts[2]
    return symbols.dated(parts[0], date) if len(date) == 8 and date.isdigit() else None


def _event(item: _Item, where: str, instruments: Catalog) -> VenueLiquidation | None:
    contracts = number(EXCHANGE, f"{where}.size", item.size)
    if contracts == 0:
        return None
    name = market(item.contract)
    if name is None:
        raise FrameError(EXCHANGE, f"{where}.contract is not a futures contract: {item.contract!r}")
    price = positive(EXCHANGE, f"{where}.price", item.price)
    raw_ts = item.time_ms if item.time_ms is not None else item.time
    if raw_ts is None:
        raise FrameError(EXCHANGE, f"{where} has neither time nor time_ms")
    ts = timestamp_ms(EXCHANGE, f"{where}.time", raw_ts)
    return liquidation(
        EXCHANGE,
        name,
        id=f"{EXCHANGE}:{item.contract}:{ts}:{item.size}:{item.price}",
        symbol=item.contract,
        side="long" if contracts < 0 else "short",
        price=price,
        sizes=from_contracts(EXCHANGE, abs(contracts), price, instruments.get(item.contract)),
        ts=ts,
        contracts=contracts,
    )


def normalize(frame: bytes | str, instruments: Catalog = NO_INSTRUMENTS) -> list[VenueLiquidation]:
    """Gate frame -> the liquidations it carries, in either result shape."""
    decoded = _decode(frame)
    if decoded.channel != CHANNEL or decoded.event != "update":
        return []
    if len(decoded.result) == 0:
        raise FrameError(EXCHANGE, "update without 'result'")
    raw = bytes(decoded.result)
    is_array = raw.lstrip().startswith(b"[")  # the documented shape; live frames send an object
    items = _decode_items(raw) if is_array else [_decode_item(raw)]
    events, skipped = rows_events(
        items, lambda i, item: _event(item, f"result[{i}]" if is_array else "result", instruments)
    )
    return all_or_partial(EXCHANGE, told_apart(events), skipped, len(items))
