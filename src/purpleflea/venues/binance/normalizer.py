"""Binance USD-M and COIN-M futures: the ``forceOrder`` stream.

Frames: a raw event ``{"e":"forceOrder","E":..,"o":{..}}`` (``/ws/<stream>``), or the same
wrapped as ``{"stream":..,"data":{..}}`` (``/stream?streams=..``); subscribe acks are
``{"result":null,"id":N}``.

Semantics (shared/EXCHANGES.md, Binance):

- ``o.S`` is the side of the forced *order*: SELL closes a long, so ``S=SELL`` is a long
  liquidated.
- ``o.ap`` is the average fill price (``o.p`` is the IOC limit price, worse than the fill);
  ``o.z`` the accumulated filled quantity. An order that filled nothing is not a liquidation
  print and yields nothing; a partially filled or expired order with ``z > 0`` still is.
- USD-M quantities are in the base coin; COIN-M quantities are contracts of a fixed USD value
  (BTC 100 USD, every other coin 10 USD, per exchangeInfo ``contractSize``).
- The stream is a snapshot: at most one liquidation per symbol per second is pushed.

USD-M is the busiest stream we read, so :func:`normalize_usdm` has a hot path that lets msgspec
parse and bound every number while decoding; any frame it is not sure of goes through the
checked path, which gives the same result or a :class:`FrameError` naming the field.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from purpleflea.model import NO_INSTRUMENTS, Catalog, Side, VenueLiquidation
from purpleflea.venues import symbols
from purpleflea.venues._frame import (
    FrameDecoder,
    FrameError,
    TimestampMs,
    finite_product,
    non_negative,
    positive,
    timestamp_ms,
)
from purpleflea.venues._units import Sizes, from_coins, from_usd, liquidation
from purpleflea.venues.binance.constants import COINM, USDM
from purpleflea.venues.binance.constants import USD_QUOTES as _USD_QUOTES

_SIDES: dict[str, Side] = {"SELL": "long", "BUY": "short"}


class _Order(msgspec.Struct):
    s: str
    S: str
    ap: str | float
    z: str | float
    # An integer; a numeric string or whole float is read as one, as the fast path does.
    T: int | float | str


class _Payload(msgspec.Struct):
    e: str = ""
    o: _Order | None = None


class _Frame(msgspec.Struct):
    e: str = ""
    o: _Order | None = None
    data: _Payload | None = None


class _Named(msgspec.Struct):
    e: str = ""


class _Head(msgspec.Struct):
    """What names a frame's event, read before its order: another stream's event is no
    forced order's shape (a ticker's ``o`` is its open price, ``!miniTicker@arr`` sends an
    array as ``data``) and must not fail the frame."""

    e: str = ""
    data: _Named | list[msgspec.Raw] | None = None


_decode_usdm = FrameDecoder(USDM, _Frame)
_decode_coinm = FrameDecoder(COINM, _Frame)
_DECODE = {USDM: _decode_usdm, COINM: _decode_coinm}
_HEADS = {USDM: FrameDecoder(USDM, _Head), COINM: FrameDecoder(COINM, _Head)}


def _order(exchange: str, raw: bytes | str) -> _Order | None:
    """The forced order of ``exchange``'s frame ``raw``; None for any other frame."""
    head = _HEADS[exchange](raw)
    named = head.data if head.data is not None else head
    if not isinstance(named, _Named | _Head) or named.e != "forceOrder":
        return None  # subscribe ack, error reply or another stream's event
    frame = _DECODE[exchange](raw)
    payload: _Frame | _Payload = frame.data if frame.data is not None else frame
    if payload.o is None:
        raise FrameError(exchange, "forceOrder event without 'o'")
    return payload.o


@lru_cache(maxsize=4096)
def _usdm_market(symbol: str) -> tuple[symbols.Market, bool]:
    """Market of a USD-M symbol and whether its quote counts as USD."""
    pair, _, expiry = symbol.partition("_")
    for quote in _USD_QUOTES:
        if pair.endswith(quote) and len(pair) > len(quote):
            base = pair[: -len(quote)]
            date = symbols.from_yymmdd(expiry) if expiry else None
            market = symbols.dated(base, date) if date else symbols.perpetual(base)
            return market, True
    # A non-USD quote (the old ETHBTC perpetual): coins are known, dollars are not.
    return symbols.perpetual(pair), False


@lru_cache(maxsize=4096)
def _coinm_market(symbol: str) -> symbols.Market:
    pair, _, expiry = symbol.partition("_")
    base = pair[:-3] if pair.endswith("USD") else pair
    date = symbols.from_yymmdd(expiry)
    return symbols.dated(base, date) if date else symbols.perpetual(base)


def _id_prefix(symbol: str) -> str:
    """Start of a USD-M event id, which is ``{prefix}{T}:{S}``.

    For example ``binance_usdm:BTCUSDT:1700000000123:SELL``. The stream pushes at most the
    latest forced order per symbol per 1000 ms, so two events of one symbol never share a trade
    time ``T``, and a later fill of the same order moves ``T``: symbol and ``T`` are unique, and
    the side is kept as a guard. The filled quantity ``z`` (in ids before 2026-11) is left out:
    it made no id more unique, and the hot path would have to keep it as text and parse it in
    Python instead of in msgspec.
    """
    return f"{USDM}:{symbol}:"


def _normalize_usdm_checked(frame: bytes | str) -> list[VenueLiquidation]:
    """:func:`normalize_usdm` one check at a time, each failure a FrameError naming the field."""
    order = _order(USDM, frame)
    if order is None:
        return []
    filled = non_negative(USDM, "o.z", order.z)
    if filled == 0:
        return []
    side = _SIDES.get(order.S)
    if side is None:
        raise FrameError(USDM, f"o.S is not BUY/SELL: {order.S!r}")
    price = positive(USDM, "o.ap", order.ap)
    ts = timestamp_ms(USDM, "o.T", order.T)
    market, usd_quote = _usdm_market(order.s)
    sizes = from_coins(USDM, filled, price)
    return [
        liquidation(
            USDM,
            market,
            id=f"{_id_prefix(order.s)}{ts}:{order.S}",
            symbol=order.s,
            side=side,
            price=price,
            sizes=sizes if usd_quote else Sizes(filled, None),
            ts=ts,
        )
    ]


# --- USD-M hot path --------------------------------------------------------------------------
#
# One msgspec decode in lax mode (strict=False: it parses Binance's numeric strings in C)
# checks the frame's shape and bounds every number, so a valid frame needs no check in Python.
# A frame outside those bounds, or of any other shape, fails that decode and goes to
# _normalize_usdm_checked, which returns the same events or raises the FrameError naming the
# field. So the hot path only ever handles frames the checked path accepts, and builds the same
# event from them. The one exception: lax mode also reads a T sent as a numeric string or an
# integral float (Binance sends an integer), still within the timestamp bounds.
#
# ap and z are bounded to [1e-150, 1e150] and unit multipliers are at most 1e6, so z * ap,
# z * multiplier and ap / multiplier are normal finite floats and need no overflow or
# underflow check. z = 0 (an order that filled nothing) is out of bounds too: the checked path
# returns [] for it.
_Bounded = Annotated[float, Meta(ge=1e-150, le=1e150)]


class _FastOrder(msgspec.Struct, gc=False):
    s: str
    S: Literal["BUY", "SELL"]
    ap: _Bounded
    z: _Bounded
    T: TimestampMs


class _FastPayload(msgspec.Struct, gc=False):
    """A combined-stream ``data``: anything but a forceOrder with its order goes the checked way."""

    e: Literal["forceOrder"]
    o: _FastOrder


class _FastFrame(msgspec.Struct, gc=False):
    # UNSET, not None: lax mode would read the string "null" as None.
    e: str = ""
    o: _FastOrder | UnsetType = UNSET
    data: _FastPayload | UnsetType = UNSET


_decode_fast = msgspec.json.Decoder(_FastFrame, strict=False).decode

# Per symbol: market name, unit multiplier, whether the quote counts as USD, id prefix.
_SymbolFacts = tuple[str, float, bool, str]
_SYMBOL_FACTS: dict[str, _SymbolFacts] = {}
_MAX_SYMBOLS = 4096  # bounds the memory: garbage symbols cannot grow the table forever


def _symbol_facts(symbol: str) -> _SymbolFacts:
    market, usd_quote = _usdm_market(symbol)
    facts = (market.name, market.multiplier, usd_quote, _id_prefix(symbol))
    if len(_SYMBOL_FACTS) < _MAX_SYMBOLS:
        _SYMBOL_FACTS[symbol] = facts
    return facts


def normalize_usdm(
    frame: bytes | str, instruments: Catalog = NO_INSTRUMENTS
) -> list[VenueLiquidation]:
    """Binance USD-M frame -> the liquidation it carries (none for control frames).

    ``instruments`` is unused (quantities are in coins) and accepted for a uniform signature.
    """
    try:
        decoded = _decode_fast(frame)
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return _normalize_usdm_checked(frame)  # which names what is wrong
    payload = decoded.data
    if payload is UNSET:  # a raw event from /ws/<stream>
        if decoded.e != "forceOrder":
            return []  # subscribe ack, error reply or another stream's event
        order = decoded.o
        if order is UNSET:
            return _normalize_usdm_checked(frame)
    else:
        order = payload.o
    symbol = order.s
    try:
        market, multiplier, usd_quote, id_prefix = _SYMBOL_FACTS[symbol]
    except KeyError:
        market, multiplier, usd_quote, id_prefix = _symbol_facts(symbol)
    # One attribute per statement: a tuple assignment would build and unpack a tuple.
    ts = order.T
    order_side = order.S
    price = order.ap
    quantity = order.z  # in symbol units until scaled below
    # The checked path's arithmetic (from_coins, then liquidation), so the same floats.
    size_usd = quantity * price if usd_quote else None
    if multiplier != 1.0:  # 1000PEPEUSDT -> PEPE (skipped at 1: x / 1.0 is x, and costs)
        price /= multiplier
        quantity *= multiplier
    # Positional: id, exchange, symbol, market, side, price, quantity, size_usd, ts (keywords
    # cost ~0.1 us of the ~1.1 us this path takes per frame).
    return [
        VenueLiquidation(
            f"{id_prefix}{ts}:{order_side}",  # as the checked path's, see _id_prefix
            USDM,
            symbol,
            market,
            _SIDES[order_side],
            price,
            quantity,
            size_usd,
            ts,
        )
    ]


def coinm_contract_usd(symbol: str, instruments: Catalog) -> float:
    """USD value of one COIN-M contract: the catalog's, else Binance's fixed rule."""
    instrument = instruments.get(symbol)
    if instrument is not None:
        return instrument.contract_size
    return 100.0 if symbol.startswith("BTCUSD_") else 10.0


def coinm_event_id(symbol: str, ts: int, order_side: str, filled: str | float) -> str:
    """``binance_coinm:{s}:{T}:{S}:{z}``, ``z`` (a whole number of contracts) as the frame wrote
    it (``"3"``)."""
    return f"{COINM}:{symbol}:{ts}:{order_side}:{filled}"


def normalize_coinm(
    frame: bytes | str, instruments: Catalog = NO_INSTRUMENTS
) -> list[VenueLiquidation]:
    """Binance COIN-M frame -> the liquidation it carries, contracts converted to USD/coins."""
    order = _order(COINM, frame)
    if order is None:
        return []
    contracts = non_negative(COINM, "o.z", order.z)
    if contracts == 0:
        return []
    side = _SIDES.get(order.S)
    if side is None:
        raise FrameError(COINM, f"o.S is not BUY/SELL: {order.S!r}")
    price = positive(COINM, "o.ap", order.ap)
    ts = timestamp_ms(COINM, "o.T", order.T)
    usd = finite_product(
        COINM, "o.z * contractSize", contracts * coinm_contract_usd(order.s, instruments)
    )
    return [
        liquidation(
            COINM,
            _coinm_market(order.s),
            id=coinm_event_id(order.s, ts, order.S, order.z),
            symbol=order.s,
            side=side,
            price=price,
            sizes=from_usd(COINM, usd, price),
            ts=ts,
            contracts=contracts,
        )
    ]
