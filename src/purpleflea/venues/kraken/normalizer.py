"""Kraken Futures: ``type: liquidation`` trades on the ``trade`` feed.

Frames: one trade per message ``{"feed":"trade","product_id":"PI_XBTUSD","uid":..,"side":..,
"type":..,"seq":..,"time":..,"qty":..,"price":..}``, and on subscribe a ``trade_snapshot``
``{"feed":"trade_snapshot","product_id":..,"trades":[<trade>,..]}`` of recent trades. Events
(``info``, ``subscribed``, ``alert``, ``error``), heartbeats and other feeds yield nothing, as do
trades of another type (``fill``, ``termination``, ``block``, ``assignment``).

Semantics (shared/EXCHANGES.md, Kraken Futures):

- ``side`` is the **taker** side, and the liquidation order is the taker: Kraken's "Equity
  Protection Process" support article says the liquidation of Coin-M (``PI_``/``FI_``)
  positions "begins by submitting an Immediate-or-Cancel order to the market", and an IOC order
  never rests in the book. The copies of its multi-collateral (``PF_``/``FF_``) section read
  here were cut short; tardis reads every product the same way. So a sell closes a long.
- ``price`` is the fill price. ``qty`` is in contracts of the instrument: ``PI_``/``FI_``
  inverse contracts of ``contractSize`` USD (1) from the instrument catalog (one missing from
  it is sized by Kraken's documented face value, 1 USD:
  :func:`~purpleflea.venues.kraken.catalog.by_documented_rule`), ``PF_``/``FF_``
  multi-collateral contracts in base coins.
- ``trade_snapshot`` trades are history that may repeat what was seen before a reconnect: they
  are emitted with ``replay=True``. Ids are the trade ``uid``.
- ``termination`` trades are not counted as liquidations. Kraken's trade-feed docs define
  ``liquidation`` as "a result of a user being liquidated from their position" and
  ``termination`` only as "a result of a user being terminated"; the Equity Protection Process
  article (support.kraken.com 360022835671, copies of 2026-03) names its steps Liquidation,
  Assignment and Unwind, none of them termination. tardis reads ``liquidation`` alone. An
  aggregator that counts terminations too has no Kraken text behind it that we found.
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
from purpleflea.venues._units import Sizes, from_coins, from_contracts, liquidation
from purpleflea.venues.kraken.catalog import by_documented_rule
from purpleflea.venues.kraken.constants import EXCHANGE

LIQUIDATION = "liquidation"

_SIDES: dict[str, Side] = {"sell": "long", "buy": "short"}
_COIN_SIZED = ("PF", "FF")  # multi-collateral: qty in base coins
CONTRACT_SIZED = ("PI", "FI")  # inverse: qty in USD contracts
#: Kraken's own codes for coins every other venue names otherwise. ``XBT`` is ``BTC`` for all
#: (:mod:`purpleflea.venues.symbols`); Dogecoin is ``XDG`` on Kraken's API, its perpetual
#: ``PF_XDGUSD`` (public clients map "DOGE/USD" to it; its tickers row says "pair": "XDG:USD"),
#: where its MTF's contract page lists ``PF_DOGEUSD``: both are ``DOGE-PERP``.
_CODES = {"XDG": "DOGE"}


class Trade(msgspec.Struct):
    uid: str
    side: str
    type: str
    time: int
    qty: float
    price: float
    product_id: str = ""


class _Envelope(msgspec.Struct):
    feed: str = ""
    event: str = ""


class _Snapshot(msgspec.Struct):
    trades: list[Trade]
    product_id: str = ""


_decode_envelope = FrameDecoder(EXCHANGE, _Envelope)
_decode_trade = FrameDecoder(EXCHANGE, Trade)
_decode_snapshot = FrameDecoder(EXCHANGE, _Snapshot)


@lru_cache(maxsize=4096)
def market(product_id: str) -> tuple[symbols.Market, str] | None:
    """Market and prefix of a futures product; None if not ``PI_``/``PF_``/``FI_``/``FF_``.

    ``PI_XBTUSD`` -> BTC-PERP; ``PF_ETHUSD`` -> ETH-PERP; ``FI_XBTUSD_200925`` -> BTC-20200925;
    ``PF_XDGUSD`` -> DOGE-PERP.
    """
    parts = product_id.split("_")
    if len(parts) not in (2, 3) or parts[0] not in (*_COIN_SIZED, *CONTRACT_SIZED):
        return None
    split = symbols.strip_quote(parts[1], ("USD",))
    if split is None:
        return None
    base = _CODES.get(split[0], split[0])
    if len(parts) == 2:
        return symbols.perpetual(base), parts[0]
    date = symbols.from_yymmdd(parts[2])
    return (symbols.dated(base, date), parts[0]) if date else None


def _sizes(product: str, prefix: str, qty: float, price: float, instruments: Catalog) -> Sizes:
    instrument = instruments.get(product)
    if instrument is None and prefix in _COIN_SIZED:
        return from_coins(EXCHANGE, qty, price)
    if instrument is None:
        instrument = by_documented_rule(product)
    return from_contracts(EXCHANGE, qty, price, instrument)


def trade_event(
    trade: Trade, product: str, where: str, replay: bool, instruments: Catalog
) -> VenueLiquidation | None:
    """The event of one feed trade (None unless it is a liquidation); ``where`` prefixes the
    trade's fields in errors (``trades[3].``), the REST history's trades use it too."""
    if trade.type != LIQUIDATION:
        return None
    side = _SIDES.get(trade.side)
    if side is None:
        raise FrameError(EXCHANGE, f"{where}side is not buy/sell: {trade.side!r}")
    qty = non_negative(EXCHANGE, f"{where}qty", trade.qty)
    if qty == 0:
        return None
    found = market(product)
    if found is None:
        raise FrameError(EXCHANGE, f"{where}product_id is not a futures product: {product!r}")
    name, prefix = found
    price = positive(EXCHANGE, f"{where}price", trade.price)
    return liquidation(
        EXCHANGE,
        name,
        id=f"{EXCHANGE}:{trade.uid}",
        symbol=product,
        side=side,
        price=price,
        sizes=_sizes(product, prefix, qty, price, instruments),
        ts=timestamp_ms(EXCHANGE, f"{where}time", trade.time),
        replay=replay,
        contracts=qty if prefix in CONTRACT_SIZED else None,
        trade_id=trade.uid,
    )


def normalize(frame: bytes | str, instruments: Catalog = NO_INSTRUMENTS) -> list[VenueLiquidation]:
    """Kraken Futures frame -> its liquidation trades (replays for ``trade_snapshot``)."""
    envelope = _decode_envelope(frame)
    if envelope.event:
        return []  # info, subscribed, alert, error
    if envelope.feed == "trade":
        trade = _decode_trade(frame)
        event = trade_event(trade, trade.product_id, "", False, instruments)
        return [event] if event is not None else []
    if envelope.feed == "trade_snapshot":
        snapshot = _decode_snapshot(frame)
        trades = snapshot.trades
        events, skipped = rows_events(
            trades,
            lambda i, trade: trade_event(
                trade, trade.product_id or snapshot.product_id, f"trades[{i}].", True, instruments
            ),
        )
        return all_or_partial(EXCHANGE, events, skipped, len(trades))
    return []  # heartbeats and other feeds
