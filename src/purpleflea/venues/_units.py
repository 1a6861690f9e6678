"""Sizes in coins and USD, and the event built from them, shared by every normalizer.

Exchanges size a liquidation in one of three ways: in base coins (Binance USD-M, dYdX), in USD
(Deribit inverse, Bybit inverse) or in contracts whose size only the instrument list knows (OKX,
Gate, HTX, BitMEX, Kraken ``PI_``). :func:`from_contracts` is the one place contracts become
coins and dollars, for linear, inverse and quanto contracts alike; an instrument missing from
the catalog leaves both unknown rather than guessed.
"""

from __future__ import annotations

from typing import NamedTuple

from purpleflea.model import Instrument, Side, VenueLiquidation
from purpleflea.venues._frame import finite_product
from purpleflea.venues.symbols import Market


class Sizes(NamedTuple):
    """A liquidation's size in base coins and in USD (None: contract size unknown)."""

    quantity: float | None
    size_usd: float | None


UNKNOWN = Sizes(None, None)


def from_coins(exchange: str, coins: float, price: float) -> Sizes:
    """Linear: the size is in coins, its notional ``coins * price``."""
    return Sizes(coins, finite_product(exchange, "quantity * price", coins * price))


def from_usd(exchange: str, usd: float, price: float) -> Sizes:
    """Inverse: the size is in USD, its coins ``usd / price``."""
    return Sizes(finite_product(exchange, "size_usd / price", usd / price), usd)


def from_contracts(
    exchange: str, contracts: float, price: float, instrument: Instrument | None
) -> Sizes:
    """``contracts`` (a count >= 0) of ``instrument`` at ``price`` in coins and USD.

    - linear: ``contract_size`` coins per contract;
    - inverse: ``contract_size`` USD per contract;
    - quanto: ``contracts * contract_size * price`` in the settlement currency, times its
      USD price ``settle_usd`` (unknown without it).
    """
    if instrument is None:
        return UNKNOWN
    where = "contracts * contract_size"
    if instrument.kind == "linear":
        coins = finite_product(exchange, where, contracts * instrument.contract_size)
        return from_coins(exchange, coins, price)
    if instrument.kind == "inverse":
        usd = finite_product(exchange, where, contracts * instrument.contract_size)
        return from_usd(exchange, usd, price)
    if instrument.settle_usd is None:
        return UNKNOWN
    usd = contracts * instrument.contract_size * price * instrument.settle_usd
    return from_usd(exchange, finite_product(exchange, f"{where} * price * settle_usd", usd), price)


def liquidation(
    exchange: str,
    market: Market,
    *,
    id: str,
    symbol: str,
    side: Side,
    price: float,
    sizes: Sizes,
    ts: int | None,
    replay: bool = False,
    contracts: float | None = None,
    trade_id: str | None = None,
    liquidated_user: str | None = None,
) -> VenueLiquidation:
    """The event, with price and quantity scaled from symbol units to real coins.

    ``1000PEPEUSDT`` at 0.0123 for 10 units is ``PEPE-PERP`` at 0.0000123 for 10,000 PEPE
    (see :mod:`purpleflea.venues.symbols`); the USD notional does not change.
    """
    quantity = sizes.quantity
    if quantity is not None:
        quantity = finite_product(
            exchange, "quantity * unit multiplier", quantity * market.multiplier
        )
    return VenueLiquidation(
        id=id,
        exchange=exchange,
        symbol=symbol,
        market=market.name,
        side=side,
        price=price / market.multiplier,
        quantity=quantity,
        size_usd=sizes.size_usd,
        ts=ts,
        replay=replay,
        contracts=contracts,
        trade_id=trade_id,
        liquidated_user=liquidated_user,
    )
