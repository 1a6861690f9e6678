"""Bitget (UTA v3): the public ``liquidation`` topic.

Frames: ``{"arg":{"instType":"usdt-futures","topic":"liquidation"},"action":"update","data":[
{symbol,side,price,amount,ts},..],"ts":..}``. Subscribe acks and errors (``{"event":..}``), the
bare-text ``pong`` and other topics' pushes on the same socket (``ticker``, ``books1``) yield
nothing.

Semantics (shared/EXCHANGES.md, Bitget and traps 1, 4, 7):

- ``side`` is the **position** side: ``buy`` is a long liquidated, ``sell`` a short.
- ``price`` is what Bitget calls the "liquidation price"; ``amount`` is in the **quote** coin
  (USDT/USDC, or USD for coin-futures), so it is the USD notional and ``amount / price`` the
  coins. No instrument catalog is needed. The copy of 2025-12-05 names no unit, a later one
  "Unit: quote coin"; the recorded push agrees with the later one: its ``amount`` 13.70319
  (APEUSDT at 0.1649) and 143.330431857868 (IPUSDT) are no plausible order sizes in coins,
  while ``amount / price`` is 83.1 and 286.5 coins exactly.
- Pushes are aggregated, not a full tape, and Bitget's docs disagree on how. Bitget's UTA
  changelog dates the channel: "[November 26, 2025] Websocket Added a new platform
  liquidation push channel"; a copy of the page taken 2025-12-05 (sebastianganser/Bitget_API
  @ c21262e, uta/websocket/public/Liquidation-Channel.md) gives no cadence at all and
  ``amount`` no unit. Two later, undated copies add a cadence and disagree. One (code index id
  55299421045, with ``amount`` "Unit: quote coin"): "pushed once every 20 seconds or every
  10,000 records ... each push contains all forced-liquidation data on the platform"; the
  other (bitget.live mirror): "once per second ... the aggregated liquidation data for the
  previous second: only the record with the highest liquidation quantity for long and short
  positions respectively per trading pair", at most 2 rows per pair a second. The one
  recorded push (tardis-node test, 2026-04-28) contradicts the second as it reads: push
  ``ts`` 1777358897167 carries rows at 1777358886549 and 1777358876983, 10.6 s and 20.2 s
  older, not the previous second's. It fits the first, but one push cannot show that every
  liquidation is in some push, nor which copy is the newer (Bitget may have moved to the
  per-second rule since). The latest dated word leans that way: a data vendor's public note,
  updated 2026-09-30 after it began reading the v3 channel (code index id 71148224139), calls
  it "throttled: the largest order per side per contract per second", whether measured or
  read from the per-second copy it does not say. So the coverage stays ``snapshot``.
- Each row's own ``ts`` (when the liquidation happened), not the push's, is the event's time:
  rows arrive up to ~20 s after it.
- ``action: snapshot`` is treated as the initial push after subscribing, which may repeat what
  was seen before a reconnect: its rows are emitted with ``replay=True``.
- Bitget gives no liquidation id; the id is built from symbol, time, side, amount and price
  (a row repeated within one push is numbered: :func:`~purpleflea.venues._ids.told_apart`).
"""

from __future__ import annotations

from functools import lru_cache

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
    timestamp_ms,
)
from purpleflea.venues._ids import told_apart
from purpleflea.venues._units import from_usd, liquidation
from purpleflea.venues.bitget.constants import EXCHANGE

TOPIC = "liquidation"

_SIDES: dict[str, Side] = {"buy": "long", "sell": "short"}


class _Item(msgspec.Struct):
    symbol: str
    side: str
    price: str | float
    amount: str | float
    ts: str | int


class _Arg(msgspec.Struct):
    instType: str = ""  # noqa: N815 - Bitget's field name
    topic: str = ""


class _Frame(msgspec.Struct):
    event: str = ""
    action: str = ""
    arg: _Arg | None = None


class _Push(msgspec.Struct):
    """A ``liquidation`` push's rows, read once :class:`_Frame` named the topic: another
    topic's rows (ticker, books1) are no liquidation's and must not fail the frame."""

    data: list[_Item] | None = None


_decode = FrameDecoder(EXCHANGE, _Frame)
_decode_push = FrameDecoder(EXCHANGE, _Push)


@lru_cache(maxsize=4096)
def market(symbol: str) -> symbols.Market:
    """``BTCUSDT``/``BTCPERP``/``BTCUSD`` -> ``BTC-PERP``; delivery contracts are dated:
    ``ETHUSD_231229`` -> ``ETH-20231229`` and the classic ``BTCUSDZ24`` -> ``BTC-20241227``.

    ``PAIR_YYMMDD`` is how Bitget's futures API writes a delivery contract (its v2 ticker
    docs' example: ``ETHUSD_231229``, deliveryTime 2023-12-29); the classic API wrote the
    month code (``ETHUSDH23``).
    """
    pair, _, expiry = symbol.partition("_")
    date = symbols.from_yymmdd(expiry)
    split = symbols.strip_quote(pair, symbols.QUOTES) if date else None
    if date and split:
        return symbols.dated(split[0], date)
    return symbols.concatenated(symbol)[0]


def _event(item: _Item, where: str, replay: bool) -> VenueLiquidation | None:
    side = _SIDES.get(item.side)
    if side is None:
        raise FrameError(EXCHANGE, f"{where}.side is not buy/sell: {item.side!r}")
    amount = non_negative(EXCHANGE, f"{where}.amount", item.amount)
    if amount == 0:
        return None
    if not item.symbol:
        raise FrameError(EXCHANGE, f"{where}.symbol is empty")
    price = positive(EXCHANGE, f"{where}.price", item.price)
    ts = timestamp_ms(EXCHANGE, f"{where}.ts", item.ts)
    return liquidation(
        EXCHANGE,
        market(item.symbol),
        id=f"{EXCHANGE}:{item.symbol}:{ts}:{item.side}:{item.amount}:{item.price}",
        symbol=item.symbol,
        side=side,
        price=price,
        sizes=from_usd(EXCHANGE, amount, price),
        ts=ts,
        replay=replay,
    )


def normalize(frame: bytes | str, instruments: Catalog = NO_INSTRUMENTS) -> list[VenueLiquidation]:
    """Bitget frame -> the liquidations it carries (none for control frames).

    ``instruments`` is unused (amounts are in the quote coin) and accepted for a uniform
    signature.
    """
    if is_text_pong(frame):
        return []
    decoded = _decode(frame)
    if decoded.event or decoded.arg is None or decoded.arg.topic != TOPIC:
        return []  # subscribe ack, error reply, another topic's push
    items = _decode_push(frame).data
    if items is None:
        raise FrameError(EXCHANGE, f"{TOPIC} push without 'data'")
    replay = decoded.action == "snapshot"
    events, skipped = rows_events(items, lambda i, item: _event(item, f"data[{i}]", replay))
    return all_or_partial(EXCHANGE, told_apart(events), skipped, len(items))
