"""Bybit v5: ``allLiquidation.{symbol}`` and the legacy ``liquidation.{symbol}`` topic.

Frames: ``{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":..,"data":[{T,s,S,v,p}]}``
(``data`` an array) and the legacy ``{"topic":"liquidation.BTCUSDT",..,"data":{updatedTime,
symbol,side,size,price}}`` (``data`` an object; deprecated 2025-02-20, at most one event per
symbol per second). Before v5 (tardis-node dates the switch 2023-04-05) the legacy topic's
object was ``{symbol,side,price,qty,time}`` (bybit-exchange/docs-legacy, futuresV2 inverse and
linear websocket pages: side "Liquidated position's side", qty "Order quantity in USD" on
inverse contracts, time in ms); recordings of that era are read too. Acks
``{"success":true,"op":"subscribe",..}``, pongs and other topics' pushes (an orderbook, tickers:
a socket or a recording may carry them) yield nothing.

Semantics (shared/EXCHANGES.md, Bybit and traps 1-2):

- ``S``/``side`` is the *position* side: ``Buy`` means a long was liquidated (Bybit docs since
  2023-08-31, confirmed by Bybit support as quoted by tardis).
- ``p``/``price`` is the bankruptcy price: the only price Bybit gives.
- Bybit gives no liquidation id; the id is built from the row (a row repeated within one push
  is numbered: :func:`~purpleflea.venues._ids.told_apart`).
- Linear contracts (USDT, USDC, ``BTCPERP``, dated ``BTC-27DEC24``) size in the base coin:
  ``size_usd = v * p``. Inverse contracts (``BTCUSD``, dated ``BTCUSDZ24``) size in USD:
  ``size_usd = v``. A catalog entry's kind wins over the symbol's shape.
"""

from __future__ import annotations

import re
from functools import lru_cache

import msgspec

from purpleflea.model import NO_INSTRUMENTS, Catalog, ContractKind, Side, VenueLiquidation
from purpleflea.venues import symbols
from purpleflea.venues._frame import (
    FrameDecoder,
    FrameError,
    all_or_partial,
    non_negative,
    positive,
    rows_events,
    timestamp_ms,
)
from purpleflea.venues._ids import told_apart
from purpleflea.venues._units import from_coins, from_usd, liquidation
from purpleflea.venues.bybit.constants import EXCHANGE

_SIDES: dict[str, Side] = {"Buy": "long", "Sell": "short"}
_LINEAR_DATED = re.compile(r"^([A-Z0-9]+?)(?:USDT|USDC)?-(\d{1,2}[A-Z]{3}\d{2})$")
# Bybit writes one bundle behind the coin, where Binance and Bybit's own 1000PEPEUSDT put it in
# front: SHIB1000USDT is 1,000 SHIB per unit, priced per 1,000 SHIB.
_TRAILING_BUNDLE = re.compile(r"^([A-Z]+)1000(USDT|USDC|PERP)$")


class _Item(msgspec.Struct):
    # A number on the wire (docs and every recorded push); a numeric string reads the same.
    T: int | str
    s: str
    S: str
    v: str | float
    p: str | float


class _Legacy(msgspec.Struct):
    symbol: str
    side: str
    price: str | float
    # v5 names (2023-04 to 2025): updatedTime and size; v2 names (until 2023-04): time and qty.
    updatedTime: int | str | None = None  # noqa: N815 - Bybit's field name
    size: str | float | None = None
    time: int | str | None = None
    qty: str | float | None = None


class _Frame(msgspec.Struct):
    topic: str = ""


class _Push(msgspec.Struct):
    """A liquidation topic's data, read once :class:`_Frame` named the topic: another topic's
    data (an orderbook's, a ticker's) is no liquidation's and must not fail the frame."""

    data: list[_Item] | _Legacy | None = None


_decode = FrameDecoder(EXCHANGE, _Frame)
_decode_push = FrameDecoder(EXCHANGE, _Push)


@lru_cache(maxsize=4096)
def market(symbol: str) -> tuple[symbols.Market, ContractKind]:
    """Normalized market and contract kind of a Bybit symbol (by its shape).

    ``BTCUSDT``, ``BTCPERP`` (USDC) and ``BTC-27DEC24`` are linear; ``BTCUSD`` and the
    month-coded ``BTCUSDZ24`` (expiring the last Friday of the month) are inverse.
    ``SHIB1000USDT`` is ``SHIB-PERP`` in units of 1,000 SHIB, as ``1000PEPEUSDT`` is ``PEPE-PERP``.
    """
    bundled = _TRAILING_BUNDLE.match(symbol)
    if bundled:
        coin = symbols.perpetual(bundled.group(1))
        return symbols.Market(coin.name, coin.multiplier * 1000), "linear"
    linear_dated = _LINEAR_DATED.match(symbol)
    if linear_dated:
        date = symbols.from_ddmonyy(linear_dated.group(2))
        if date:
            return symbols.dated(linear_dated.group(1), date), "linear"
    name, quote = symbols.concatenated(symbol)
    return name, "inverse" if quote == "USD" else "linear"


def event_id(symbol: str, ts: int, side_text: str, size: str | float, price: str | float) -> str:
    """``bybit:{s}:{T}:{S}:{v}:{p}``, ``v`` and ``p`` as the frame wrote them (``82396.90``):
    Bybit gives its liquidations no id. Events already stored carry this spelling, so it stays;
    recorded history matches it by value (:mod:`purpleflea.venues.bybit.history`)."""
    return f"{EXCHANGE}:{symbol}:{ts}:{side_text}:{size}:{price}"


def _event(
    symbol: str,
    side_text: str,
    size: str | float,
    price_text: str | float,
    ts_value: int | str,
    instruments: Catalog,
) -> VenueLiquidation | None:
    side = _SIDES.get(side_text)
    if side is None:
        raise FrameError(EXCHANGE, f"side is not Buy/Sell: {side_text!r}")
    quantity = non_negative(EXCHANGE, "size", size)
    if quantity == 0:
        return None
    if not symbol:
        raise FrameError(EXCHANGE, "symbol is empty")
    price = positive(EXCHANGE, "price", price_text)
    ts = timestamp_ms(EXCHANGE, "time", ts_value)
    name, kind = market(symbol)
    instrument = instruments.get(symbol)
    if instrument is not None:
        kind = instrument.kind
    # Inverse sizes are USD (one USD per contract); linear sizes are coins.
    if kind == "inverse":
        sizes = from_usd(EXCHANGE, quantity, price)
    else:
        sizes = from_coins(EXCHANGE, quantity, price)
    return liquidation(
        EXCHANGE,
        name,
        id=event_id(symbol, ts, side_text, size, price_text),
        symbol=symbol,
        side=side,
        price=price,
        sizes=sizes,
        ts=ts,
    )


def normalize(frame: bytes | str, instruments: Catalog = NO_INSTRUMENTS) -> list[VenueLiquidation]:
    """Bybit frame -> the liquidations it carries (none for acks and pongs)."""
    decoded = _decode(frame)
    if not decoded.topic.startswith(("allLiquidation.", "liquidation.")):
        return []  # acks, pongs and other topics' pushes
    data = _decode_push(frame).data
    if data is None:
        return []
    if isinstance(data, _Legacy):
        item = data
        size = item.size if item.size is not None else item.qty
        ts = item.updatedTime if item.updatedTime is not None else item.time
        if size is None or ts is None:
            raise FrameError(EXCHANGE, "liquidation data has no size/qty or updatedTime/time")
        event = _event(item.symbol, item.side, size, item.price, ts, instruments)
        return [event] if event else []
    rows = data
    events, skipped = rows_events(
        rows, lambda _, row: _event(row.s, row.S, row.v, row.p, row.T, instruments)
    )
    return all_or_partial(EXCHANGE, told_apart(events), skipped, len(rows))
