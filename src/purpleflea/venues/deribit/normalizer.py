"""Deribit: trades flagged ``liquidation`` on the ``trades.*`` channels (we subscribe the kind
channel ``trades.future.any.100ms``; per-instrument ``trades.{instrument}.{interval}`` pushes
have the same shape).

Frames: JSON-RPC notifications ``{"jsonrpc":"2.0","method":"subscription","params":{"channel":
"trades.BTC-PERPETUAL.100ms","data":[{trade_id,instrument_name,direction,price,amount,
timestamp,liquidation?},..]}}``. Subscribe results (``{"id":..,"result":..}``), heartbeats
(``{"method":"heartbeat",..}``) and other channels yield nothing; so do trades without the flag.

Semantics (shared/EXCHANGES.md, Deribit and trap 9):

- ``direction`` is the **taker's** direction. ``liquidation`` says who was liquidated: ``T``
  the taker (a taker sell closes a long), ``M`` the maker (who traded the other way: a taker
  buy means the maker sold, closing a long), ``MT`` both: **two** events, the taker's side
  first, each with its own id (``deribit:<trade_id>:<side>``).
- ``price`` is the trade price; ``amount`` is USD for inverse perpetuals and futures
  (``BTC-PERPETUAL``, ``BTC-27DEC24``) and base coins for linear ones (``BTC_USDC-PERPETUAL``),
  so no instrument catalog is needed. The API reference's "for perpetual ... the amount is in
  USD" reads as if it covered linear perpetuals too; Deribit's "Linear Perpetual" help article
  says coins, and live ``BTC_USDC-PERPETUAL`` books of 2026-09-23 quote amounts like 0.0009.
- Options and spot are not perpetual or dated futures markets and are skipped.
- DVOL futures (``BTCDVOL_USDC-30APR25``) arrive on the same kind channel and are kept, as a
  market of their own (``BTCDVOL-20250430``, never a ``BTC-`` market): a ``get_instruments``
  answer recorded about 2025-04-28 (printed in a public client's docstring) lists them as
  kind future, instrument_type linear, base_currency BTCDVOL, quote and settlement USDC,
  contract_size 0.1 = min_trade_amount, max_leverage 10 and max_liquidation_commission
  0.0075, so they are liquidated and sized like every linear future: ``amount`` index units,
  each worth its price (vol points) in USDC. No recorded DVOL liquidation trade was found to
  confirm the sizing.
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
    non_negative,
    positive,
    rows_events,
    timestamp_ms,
)
from purpleflea.venues._units import from_coins, from_usd, liquidation
from purpleflea.venues.deribit.constants import EXCHANGE

_OPPOSITE: dict[Side, Side] = {"long": "short", "short": "long"}
# The position a taker of each direction closes when it is the liquidated party.
_TAKER_LIQUIDATED: dict[str, Side] = {"sell": "long", "buy": "short"}


class _Trade(msgspec.Struct):
    trade_id: str
    instrument_name: str
    direction: str
    price: float
    amount: float
    timestamp: int
    liquidation: str | None = None


class _Params(msgspec.Struct):
    channel: str = ""
    data: msgspec.Raw = msgspec.Raw()  # empty when absent


class _Frame(msgspec.Struct):
    method: str = ""
    params: _Params | None = None


_decode = FrameDecoder(EXCHANGE, _Frame)
_decode_trades = FrameDecoder(EXCHANGE, list[_Trade])
#: Decodes a JSON list of trades (the channel's ``data``, the REST history's ``trades``).
trades_decoder = _decode_trades


@lru_cache(maxsize=4096)
def market(instrument: str) -> tuple[symbols.Market, bool] | None:
    """Market of a future or perpetual and whether it is linear; None for options and spot.

    ``BTC-PERPETUAL`` -> (BTC-PERP, inverse); ``BTC_USDC-PERPETUAL`` -> (BTC-PERP, linear);
    ``ETH-27DEC24`` -> (ETH-20241227, inverse).
    """
    parts = instrument.split("-")
    if len(parts) != 2 or not parts[0]:
        return None
    base, _, quote = parts[0].partition("_")
    linear = bool(quote)
    if parts[1] == "PERPETUAL":
        return symbols.perpetual(base), linear
    date = symbols.from_ddmonyy(parts[1])
    return (symbols.dated(base, date), linear) if date else None


def liquidated_sides(flag: str, direction: str) -> tuple[Side, ...]:
    """The liquidated positions of a trade flagged ``T``/``M``/``MT`` with a taker ``direction``."""
    taker = _TAKER_LIQUIDATED.get(direction)
    if taker is None:
        raise FrameError(EXCHANGE, f"direction is not buy/sell: {direction!r}")
    if flag == "T":
        return (taker,)
    if flag == "M":
        return (_OPPOSITE[taker],)
    if flag == "MT":
        return (taker, _OPPOSITE[taker])
    raise FrameError(EXCHANGE, f"liquidation is not T/M/MT: {flag!r}")


def event_id(trade_id: str, side: Side) -> str:
    """The id of the liquidation of ``side`` in trade ``trade_id``: a trade with ``MT`` has
    two, one per side; a recorded copy (Tardis keeps ``trade_id``) gets the same."""
    return f"{EXCHANGE}:{trade_id}:{side}"


def events_of(trade: _Trade, where: str) -> list[VenueLiquidation]:
    """The events of one trade (none without the ``liquidation`` flag); ``where`` names it
    in errors."""
    if trade.liquidation is None:
        return []
    sides = liquidated_sides(trade.liquidation, trade.direction)
    found = market(trade.instrument_name)
    if found is None:
        return []
    name, linear = found
    amount = non_negative(EXCHANGE, f"{where}.amount", trade.amount)
    if amount == 0:
        return []
    price = positive(EXCHANGE, f"{where}.price", trade.price)
    ts = timestamp_ms(EXCHANGE, f"{where}.timestamp", trade.timestamp)
    sizes = from_coins(EXCHANGE, amount, price) if linear else from_usd(EXCHANGE, amount, price)
    return [
        liquidation(
            EXCHANGE,
            name,
            id=event_id(trade.trade_id, side),
            symbol=trade.instrument_name,
            side=side,
            price=price,
            sizes=sizes,
            ts=ts,
            trade_id=trade.trade_id,
        )
        for side in sides
    ]


def normalize(frame: bytes | str, instruments: Catalog = NO_INSTRUMENTS) -> list[VenueLiquidation]:
    """Deribit frame -> one event per liquidated side of each flagged trade.

    ``instruments`` is unused (amounts are USD or coins) and accepted for a uniform signature.
    """
    decoded = _decode(frame)
    params = decoded.params
    if (
        decoded.method != "subscription"
        or params is None
        or not params.channel.startswith("trades.")
    ):
        return []  # subscribe results, heartbeats, other channels
    if len(params.data) == 0:
        raise FrameError(EXCHANGE, "trades notification without 'data'")
    trades = trades_decoder(params.data)
    events, skipped = rows_events(trades, lambda i, trade: events_of(trade, f"data[{i}]"))
    return all_or_partial(EXCHANGE, events, skipped, len(trades))
