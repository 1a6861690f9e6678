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
"""

from __future__ import annotations

from functools import lru_cache

import msgspec

from purpleflea.model import NO_INSTRUMENTS, Catalog, Side, VenueLiquidation
from purpleflea.venues import symbols
from purpleflea.venues._frame import (
    FrameDecoder,
    FrameError,
    finite_product,
    non_negative,
    positive,
    timestamp_ms,
)
from purpleflea.venues._units import Sizes, from_coins, from_usd, liquidation

USDM = "binance_usdm"
COINM = "binance_coinm"

_SIDES: dict[str, Side] = {"SELL": "long", "BUY": "short"}
# Quotes we count as USD (USDT/USDC at par, as everywhere in the tracker).
_USD_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD")


class _Order(msgspec.Struct):
    s: str
    S: str
    ap: str | float
    z: str | float
    T: int


class _Payload(msgspec.Struct):
    e: str = ""
    o: _Order | None = None


class _Frame(msgspec.Struct):
    e: str = ""
    o: _Order | None = None
    data: _Payload | None = None


_decode_usdm = FrameDecoder(USDM, _Frame)
_decode_coinm = FrameDecoder(COINM, _Frame)


def _order(exchange: str, frame: _Frame) -> _Order | None:
    payload: _Frame | _Payload = frame.data if frame.data is not None else frame
    if payload.e != "forceOrder":
        return None  # subscribe ack, error reply or another stream's event
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


def normalize_usdm(
    frame: bytes | str, instruments: Catalog = NO_INSTRUMENTS
) -> list[VenueLiquidation]:
    """Binance USD-M frame -> the liquidation it carries (none for control frames).

    ``instruments`` is unused (quantities are in coins) and accepted for a uniform signature.
    """
    order = _order(USDM, _decode_usdm(frame))
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
            id=f"{USDM}:{order.s}:{ts}:{order.S}:{order.z}",
            symbol=order.s,
            side=side,
            price=price,
            sizes=sizes if usd_quote else Sizes(filled, None),
            ts=ts,
        )
    ]


def coinm_contract_usd(symbol: str, instruments: Catalog) -> float:
    """USD value of one COIN-M contract: the catalog's, else Binance's fixed rule."""
    instrument = instruments.get(symbol)
    if instrument is not None:
        return instrument.contract_size
    return 100.0 if symbol.startswith("BTCUSD_") else 10.0


def normalize_coinm(
    frame: bytes | str, instruments: Catalog = NO_INSTRUMENTS
) -> list[VenueLiquidation]:
    """Binance COIN-M frame -> the liquidation it carries, contracts converted to USD/coins."""
    order = _order(COINM, _decode_coinm(frame))
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
            id=f"{COINM}:{order.s}:{ts}:{order.S}:{order.z}",
            symbol=order.s,
            side=side,
            price=price,
            sizes=from_usd(COINM, usd, price),
            ts=ts,
            contracts=contracts,
        )
    ]
