"""OKX v5: the public ``liquidation-orders`` channel.

Frames: ``{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"instId":..,
"instType":..,"details":[{side,posSide,bkPx,sz,ts,..},..]},..]}``. Every element of every
``details`` array is one liquidation (ccxt reads only ``details[0]`` and drops the rest).
Subscribe acks and errors (``{"event":..}``), the bare-text ``pong`` and other channels' pushes
(trades, books: a socket or a recording may carry them) yield nothing.

Semantics (shared/EXCHANGES.md, OKX and traps 1, 5, 6, 8, 10):

- ``posSide`` is the position side in hedge mode (``long``/``short``) and is used when given;
  in net mode (``net``) the liquidated side is inferred from the *order* side ``side``: a sell
  closes a long.
- ``bkPx`` is the **bankruptcy** price, the only price OKX gives; it is used as the price.
- ``sz`` is in contracts for SWAP and FUTURES: ``ctVal`` coins (linear, ``BTC-USDT-SWAP``
  0.01 BTC) or USD (inverse, ``BTC-USD-SWAP`` 100 USD) each, from the instrument catalog. An
  inverse contract missing from it is sized by OKX's documented face value (BTC 100 USD,
  others 10 USD: :func:`~purpleflea.venues.okx.catalog.by_documented_rule`); any other keeps
  its raw count and unknown sizes (counted ``unsized`` by the connection, never published).
- Only SWAP and FUTURES are read: MARGIN and OPTION liquidations are not perpetual or dated
  futures markets, which is all the tracker covers.
- The first push after subscribing may repeat liquidations already seen (tardis drops it), but
  nothing in the frame tells it apart, so it is not marked; ids are content-based so a repeat
  gets the same id and is deduplicated downstream (a detail repeated within one push is
  numbered: :func:`~purpleflea.venues._ids.told_apart`). Pushes are not in time order.
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
from purpleflea.venues._units import from_contracts, liquidation
from purpleflea.venues.okx.catalog import by_documented_rule
from purpleflea.venues.okx.constants import EXCHANGE

CHANNEL = "liquidation-orders"

_POSITION_SIDES: dict[str, Side] = {"long": "long", "short": "short"}
_ORDER_SIDES: dict[str, Side] = {"sell": "long", "buy": "short"}


class Detail(msgspec.Struct):
    side: str
    sz: str | float
    bkPx: str | float  # noqa: N815 - OKX's field name
    ts: str | int
    posSide: str = ""  # noqa: N815


class Item(msgspec.Struct):
    instId: str  # noqa: N815
    details: list[Detail]
    instType: str = ""  # noqa: N815


class _Arg(msgspec.Struct):
    channel: str = ""
    instType: str = ""  # noqa: N815


class _Frame(msgspec.Struct):
    event: str = ""
    arg: _Arg | None = None


class _Push(msgspec.Struct):
    """A ``liquidation-orders`` push's rows, read once :class:`_Frame` named the channel:
    another channel's rows (trades, books) are no liquidation's and must not fail the frame."""

    data: list[Item] | None = None


_decode = FrameDecoder(EXCHANGE, _Frame)
_decode_push = FrameDecoder(EXCHANGE, _Push)


@lru_cache(maxsize=4096)
def market(inst_id: str) -> symbols.Market | None:
    """``BTC-USDT-SWAP`` -> ``BTC-PERP``; ``XRP-USD-230929`` -> ``XRP-20230929``; else None."""
    parts = inst_id.split("-")
    if len(parts) != 3 or not parts[0]:
        return None
    if parts[2] == "SWAP":
        return symbols.perpetual(parts[0])
    date = symbols.from_yymmdd(parts[2])
    return symbols.dated(parts[0], date) if date else None


def _side(detail: Detail, where: str) -> Side:
    side = _POSITION_SIDES.get(detail.posSide) or _ORDER_SIDES.get(detail.side)
    if side is None:
        raise FrameError(
            EXCHANGE, f"{where}: no side in posSide={detail.posSide!r} / side={detail.side!r}"
        )
    return side


def _event(item: Item, detail: Detail, where: str, instruments: Catalog) -> VenueLiquidation | None:
    contracts = non_negative(EXCHANGE, f"{where}.sz", detail.sz)
    if contracts == 0:
        return None
    name = market(item.instId)
    if name is None:
        raise FrameError(EXCHANGE, f"{where}: instId is not a swap or future: {item.instId!r}")
    side = _side(detail, where)
    price = positive(EXCHANGE, f"{where}.bkPx", detail.bkPx)
    ts = timestamp_ms(EXCHANGE, f"{where}.ts", detail.ts)
    instrument = instruments.get(item.instId) or by_documented_rule(item.instId)
    sizes = from_contracts(EXCHANGE, contracts, price, instrument)
    return liquidation(
        EXCHANGE,
        name,
        id=f"{EXCHANGE}:{item.instId}:{ts}:{detail.posSide}:{detail.side}:{detail.sz}:{detail.bkPx}",
        symbol=item.instId,
        side=side,
        price=price,
        sizes=sizes,
        ts=ts,
        contracts=contracts,
    )


def normalize(frame: bytes | str, instruments: Catalog = NO_INSTRUMENTS) -> list[VenueLiquidation]:
    """OKX frame -> every liquidation in every ``details`` array (none for control frames)."""
    if is_text_pong(frame):
        return []
    decoded = _decode(frame)
    if decoded.event or decoded.arg is None or decoded.arg.channel != CHANNEL:
        return []  # subscribe ack, error reply, another channel's push
    items = _decode_push(frame).data
    if items is None:
        raise FrameError(EXCHANGE, f"{CHANNEL} push without 'data'")
    return items_events(items, decoded.arg.instType, instruments)


def items_events(items: list[Item], inst_type: str, instruments: Catalog) -> list[VenueLiquidation]:
    """The events of ``data`` items (the channel's and the REST history's, which list the same
    objects); ``inst_type`` is the frame's when an item does not say its own. A detail that
    cannot be read is skipped and named (:class:`~purpleflea.venues._frame.PartialFrame`)."""
    rows = [
        (item, detail, f"data[{i}].details[{j}]")
        for i, item in enumerate(items)
        if (item.instType or inst_type) in ("SWAP", "FUTURES")
        for j, detail in enumerate(item.details)
    ]
    events, skipped = rows_events(rows, lambda _, row: _event(*row, instruments))
    return all_or_partial(EXCHANGE, told_apart(events), skipped, len(rows))
