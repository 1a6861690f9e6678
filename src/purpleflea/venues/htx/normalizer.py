"""HTX (Huobi) futures: the ``public.{contract}.liquidation_orders`` topic.

Frames arrive **gzip-compressed** (binary websocket messages); plain JSON is read too. A push
is ``{"op":"notify","topic":"public.BTC-USDT.liquidation_orders","ts":..,"data":[{symbol,
contract_code,direction,offset,volume,price,created_at,amount,trade_turnover},..]}``. Pings
``{"op":"ping",..}`` (answered by the connection), subscribe replies, errors and other topics'
pushes on the same endpoint (``public.BTC.contract_info``) yield nothing.

Semantics (shared/EXCHANGES.md, HTX and traps 1, 6):

- ``direction`` is the liquidation **order** side: a sell closes a long. The topic's page
  describes it only as "Long or short", which reads either way, but HTX's REST twin settles
  it: "[General] Query Liquidation Orders(New)" takes ``trade_type`` "5: Liquidate long
  positions; 6: Liquidate short positions" and its documented answer to
  ``trade_type=5&contract=BTC-USDT`` is ``"direction":"sell","offset":"close"`` (the page as
  mirrored in rosssaunders/coincise docs/htx @ 5c2103f8; tests/venues/htx). HTX's order pages
  pair the two fields the same way (``trade_type`` "4: sell long", "5: sell liquidation").
- ``price`` is what HTX documents as the "bankruptcy price" (its "[General] Subscribe
  Liquidation Orders" page; no fill price is sent, and ``trade_turnover`` is ``amount`` times
  this price in every push we have seen); ``volume`` is in contracts, sized through the instrument
  catalog (``swap_contract_info``): linear ``BTC-USDT`` 0.001 BTC each, coin-margined
  ``ETH-USD`` 10 USD each. Without a catalog entry the exchange's own conversions are used
  when present (``amount`` in coins and, on linear swaps, ``trade_turnover`` in USDT);
  otherwise sizes are unknown.
- HTX gives no liquidation id; the id is built from contract, time, direction, volume and
  price (a row repeated within one push is numbered: :func:`~purpleflea.venues._ids.told_apart`,
  as on the other venues without ids: ``public.*`` pushes a list of every contract's orders).
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
    gunzip,
    non_negative,
    positive,
    rows_events,
    timestamp_ms,
)
from purpleflea.venues._ids import told_apart
from purpleflea.venues._units import UNKNOWN, Sizes, from_coins, from_contracts, liquidation
from purpleflea.venues.htx.constants import EXCHANGE

TOPIC_SUFFIX = ".liquidation_orders"

_SIDES: dict[str, Side] = {"sell": "long", "buy": "short"}


class Item(msgspec.Struct):
    contract_code: str
    direction: str
    volume: float | str
    price: float | str
    created_at: int
    amount: float | str | None = None
    trade_turnover: float | str | None = None


class _Frame(msgspec.Struct):
    op: str = ""
    topic: str = ""


class _Push(msgspec.Struct):
    """A ``liquidation_orders`` push's rows, read once :class:`_Frame` named the topic: another
    topic's rows (``contract_info``) are no liquidation's and must not fail the frame."""

    data: list[Item] | None = None


_decode = FrameDecoder(EXCHANGE, _Frame)
_decode_push = FrameDecoder(EXCHANGE, _Push)


@lru_cache(maxsize=4096)
def market(contract_code: str) -> symbols.Market | None:
    """Market of a contract code; None if it is not one.

    ``BTC-USDT``/``ETH-USD`` -> perpetuals; ``BTC-USDT-211231`` and the coin-margined delivery
    code ``BTC210326`` -> dated futures.
    """
    parts = contract_code.split("-")
    if len(parts) == 1:
        code = parts[0]
        date = symbols.from_yymmdd(code[-6:])
        return symbols.dated(code[:-6], date) if date and len(code) > 6 else None
    if len(parts) == 2 and parts[0] and parts[1]:
        return symbols.perpetual(parts[0])
    if len(parts) == 3 and parts[0]:
        date = symbols.from_yymmdd(parts[2])
        return symbols.dated(parts[0], date) if date else None
    return None


def _exchange_sizes(item: Item, where: str, price: float) -> Sizes:
    """Sizes from HTX's own ``amount``/``trade_turnover``, for contracts not in the catalog."""
    if item.amount is None:
        return UNKNOWN
    coins = non_negative(EXCHANGE, f"{where}.amount", item.amount)
    if item.trade_turnover is None:
        return from_coins(EXCHANGE, coins, price)
    return Sizes(coins, non_negative(EXCHANGE, f"{where}.trade_turnover", item.trade_turnover))


def _event(item: Item, where: str, instruments: Catalog) -> VenueLiquidation | None:
    side = _SIDES.get(item.direction)
    if side is None:
        raise FrameError(EXCHANGE, f"{where}.direction is not buy/sell: {item.direction!r}")
    contracts = non_negative(EXCHANGE, f"{where}.volume", item.volume)
    if contracts == 0:
        return None
    name = market(item.contract_code)
    if name is None:
        raise FrameError(
            EXCHANGE, f"{where}.contract_code is not a contract: {item.contract_code!r}"
        )
    price = positive(EXCHANGE, f"{where}.price", item.price)
    ts = timestamp_ms(EXCHANGE, f"{where}.created_at", item.created_at)
    instrument = instruments.get(item.contract_code)
    if instrument is not None:
        sizes = from_contracts(EXCHANGE, contracts, price, instrument)
    else:
        sizes = _exchange_sizes(item, where, price)
    return liquidation(
        EXCHANGE,
        name,
        id=f"{EXCHANGE}:{item.contract_code}:{ts}:{item.direction}:{item.volume}:{item.price}",
        symbol=item.contract_code,
        side=side,
        price=price,
        sizes=sizes,
        ts=ts,
        contracts=contracts,
    )


def normalize(frame: bytes | str, instruments: Catalog = NO_INSTRUMENTS) -> list[VenueLiquidation]:
    """HTX frame (gzip or plain) -> the liquidation orders it carries."""
    plain = gunzip(EXCHANGE, frame) if isinstance(frame, bytes) else frame
    decoded = _decode(plain)
    if decoded.op != "notify" or not decoded.topic.endswith(TOPIC_SUFFIX):
        return []  # pings, subscribe replies, other topics' pushes
    items = _decode_push(plain).data
    if items is None:
        raise FrameError(EXCHANGE, "liquidation_orders push without 'data'")
    return items_events(items, "data", instruments)


def items_events(items: list[Item], where: str, instruments: Catalog) -> list[VenueLiquidation]:
    """The events of liquidation-order ``items`` (the topic's, and the REST history's, which
    lists the same fields); ``where`` names the list in errors. An item that cannot be read
    is skipped and named (:class:`~purpleflea.venues._frame.PartialFrame`); identical items
    are numbered apart, the same way in a push and in a REST page listing both."""
    events, skipped = rows_events(items, lambda i, item: _event(item, f"{where}[{i}]", instruments))
    return all_or_partial(EXCHANGE, told_apart(events), skipped, len(items))
