"""dYdX v4: ``LIQUIDATED`` trades on the indexer's ``v4_trades`` channel.

Frames: ``{"type":"channel_data","channel":"v4_trades","id":"BTC-USD","contents":{"trades":[
{id,size,price,side,createdAt,type},..]}}``; ``channel_batch_data`` carries a list of such
``contents``; the ``subscribed`` reply carries the market's recent trades. ``connected``,
``unsubscribed``, ``error`` and other channels yield nothing.

Semantics (shared/EXCHANGES.md, dYdX v4):

- Only ``type: LIQUIDATED`` trades are liquidations: the liquidation order's fill in the book.
  ``LIMIT`` (and ``MARKET``) trades are ordinary ones. ``DELEVERAGED`` trades yield nothing
  either, though they are the liquidated side's: the indexer writes a deleveraging as a
  ``DELEVERAGED`` TAKER fill of the *liquidated* subaccount (its side from the event's
  ``isBuy``) and an ``OFFSETTING`` MAKER fill of the counterparty, and publishes the trade from
  the liquidated fill (dydxprotocol/v4-chain, indexer/services/ender/src/scripts/handlers/
  dydx_deleveraging_handler.sql and handlers/order-fills/deleveraging-handler.ts; the web
  front end labels the fill "Liquidated", v4-abacus PR #568). It is the bankrupt position
  closed against an offsetting one at the bankruptcy price, outside the book: auto-deleveraging
  as shared/EXCHANGES.md counts it, which no venue's feed carries (Binance's ``forceOrder`` has
  no ADL), and the same event closes every position of a delisted market in final settlement
  (``isFinalSettlement``, not carried into the trade), which is no liquidation at all.
- ``side`` is the **taker** side, and the liquidation order is the protocol's IOC taker order:
  a SELL closes a long.
- ``size`` is in base coins, ``price`` the fill price in USDC (counted as USD).
- The trades of the ``subscribed`` reply are history the client may have seen before a
  reconnect: they are emitted with ``replay=True``. Ids are the trade ids.
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
    iso_ms,
    non_negative,
    positive,
    rows_events,
)
from purpleflea.venues._units import from_coins, liquidation
from purpleflea.venues.dydx.constants import EXCHANGE

CHANNEL = "v4_trades"
LIQUIDATED = "LIQUIDATED"

_SIDES: dict[str, Side] = {"SELL": "long", "BUY": "short"}


class Trade(msgspec.Struct):
    id: str
    size: str | float
    price: str | float
    side: str
    createdAt: str  # noqa: N815 - dYdX's field name
    type: str = ""


class _Contents(msgspec.Struct):
    trades: list[Trade] = []


class _Frame(msgspec.Struct):
    type: str = ""
    channel: str = ""
    id: str = ""
    contents: msgspec.Raw = msgspec.Raw()  # empty when absent


_decode = FrameDecoder(EXCHANGE, _Frame)
_decode_contents = FrameDecoder(EXCHANGE, _Contents)
_decode_batch = FrameDecoder(EXCHANGE, list[_Contents])


@lru_cache(maxsize=4096)
def market(ticker: str) -> symbols.Market | None:
    """``BTC-USD`` -> ``BTC-PERP`` (every dYdX v4 market is a USD perpetual)."""
    base, dash, quote = ticker.partition("-")
    return symbols.perpetual(base) if base and dash and quote else None


def event_id(trade_id: str) -> str:
    """``dydx_v4:{trade id}``: the indexer's trade id (the taker fill's) names the event."""
    return f"{EXCHANGE}:{trade_id}"


def _event(ticker: str, trade: Trade, where: str, replay: bool) -> VenueLiquidation | None:
    if trade.type != LIQUIDATED:
        return None
    side = _SIDES.get(trade.side)
    if side is None:
        raise FrameError(EXCHANGE, f"{where}.side is not BUY/SELL: {trade.side!r}")
    size = non_negative(EXCHANGE, f"{where}.size", trade.size)
    if size == 0:
        return None
    name = market(ticker)
    if name is None:
        raise FrameError(EXCHANGE, f"id is not a market ticker: {ticker!r}")
    price = positive(EXCHANGE, f"{where}.price", trade.price)
    return liquidation(
        EXCHANGE,
        name,
        id=event_id(trade.id),
        symbol=ticker,
        side=side,
        price=price,
        sizes=from_coins(EXCHANGE, size, price),
        ts=iso_ms(EXCHANGE, f"{where}.createdAt", trade.createdAt),
        replay=replay,
        trade_id=trade.id,
    )


def normalize(frame: bytes | str, instruments: Catalog = NO_INSTRUMENTS) -> list[VenueLiquidation]:
    """dYdX frame -> its LIQUIDATED trades (replays for the ``subscribed`` history).

    ``instruments`` is unused (sizes are in coins) and accepted for a uniform signature.
    """
    decoded = _decode(frame)
    if decoded.channel != CHANNEL or decoded.type not in (
        "channel_data",
        "channel_batch_data",
        "subscribed",
    ):
        return []
    if len(decoded.contents) == 0:
        raise FrameError(EXCHANGE, f"{decoded.type} without 'contents'")
    batched = decoded.type == "channel_batch_data"
    batches = _decode_batch(decoded.contents) if batched else [_decode_contents(decoded.contents)]
    replay = decoded.type == "subscribed"
    rows = [
        (trade, f"{f'contents[{b}]' if batched else 'contents'}.trades[{i}]")
        for b, contents in enumerate(batches)
        for i, trade in enumerate(contents.trades)
    ]
    events, skipped = rows_events(rows, lambda _, row: _event(decoded.id, *row, replay))
    return all_or_partial(EXCHANGE, events, skipped, len(rows))


def trades_events(
    ticker: str, trades: list[Trade], where: str, *, replay: bool
) -> list[VenueLiquidation]:
    """The LIQUIDATED trades of ``ticker`` among ``trades`` (the channel's objects, which the
    indexer's REST trade list also gives); ``where`` names the list in errors. A trade that
    cannot be read is skipped and named (:class:`~purpleflea.venues._frame.PartialFrame`)."""
    events, skipped = rows_events(
        trades, lambda i, trade: _event(ticker, trade, f"{where}.trades[{i}]", replay)
    )
    return all_or_partial(EXCHANGE, events, skipped, len(trades))
