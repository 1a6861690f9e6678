"""A paper broker: one position per market, filled at the stream's price after a latency.

Prices come from the replay (:class:`~purpleflea.backtest.runner.Replay`): the newest price of
a market at a time is a fill-venue liquidation's or a stored mark's. An order decided at ``t``
fills at the market's newest price at ``t + latency_ms``: a liquidation printed inside the
latency moves the fill, one printed after it does not. With no latency an order would fill at
the very print that triggered it, which nobody reacting to that print can get: in a cascade
the next prints run the cascade's way, so such fills flatter a strategy that trades with it.
Liquidation prices are forced fills, often a little worse than the book during a cascade, and a
stored mark is up to a sampling interval old: the backtest's main limitation
(docs/cascade.md, "Prices").
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import msgspec

#: Default order latency: from the event a decision reacts to until the order fills (feed
#: delay, the strategy, the order's round trip to the exchange).
DEFAULT_LATENCY_MS = 500


class BrokerError(ValueError):
    """An order the broker cannot take: a market already open or not open, one the stream has
    not priced yet, a direction other than +1 or -1 (a strategy's mistake, not the data's)."""


class Trade(msgspec.Struct, frozen=True, kw_only=True):
    """One closed round trip. ``direction`` is +1 long, -1 short; money is USD."""

    market: str
    direction: int
    entry_ts: int
    exit_ts: int
    entry_price: float
    exit_price: float
    notional_usd: float
    fees_usd: float
    pnl_usd: float
    reason: str
    #: When the price each fill used was printed (or marked): a fill takes the market's newest
    #: price, which in a recording's gap or a quiet market can be far older than the fill
    #: (``entry_ts - entry_price_ts``; 0: not known).
    entry_price_ts: int = 0
    exit_price_ts: int = 0


@dataclass(slots=True)
class Position:
    """An open position. ``entry_ts`` is when its entry fills (the decision plus the latency);
    until then ``filled`` is False and ``entry_price``, ``quantity`` and ``entry_fee`` are 0."""

    market: str
    direction: int
    entry_ts: int
    entry_price: float  # after slippage
    quantity: float
    notional_usd: float
    entry_fee: float
    tag: str = ""
    filled: bool = False
    #: When the entry's price was printed (see :class:`Trade`).
    entry_price_ts: int = 0


@dataclass(frozen=True, slots=True)
class _Order:
    """An entry (``reason`` None) or exit waiting for its fill time ``due``."""

    due: int
    position: Position
    reason: str | None


@dataclass(frozen=True, slots=True)
class Costs:
    """Trading costs in basis points of notional, paid on entry and on exit."""

    fee_bps: float = 5.0
    slippage_bps: float = 5.0

    def __post_init__(self) -> None:
        # Finite too: NaN passed "< 0" and the backtest reported "PnL $nan" with status 0.
        if not all(math.isfinite(bps) and bps >= 0 for bps in (self.fee_bps, self.slippage_bps)):
            raise ValueError(
                f"Costs: fee_bps and slippage_bps must be finite numbers >= 0, got "
                f"{self.fee_bps}, {self.slippage_bps}"
            )


@dataclass(slots=True)
class Broker:
    """Opens and closes positions at the stream's prices; keeps trades and realized equity.

    Orders fill ``latency_ms`` after the decision, at the market's newest price then (see the
    module docstring): :meth:`open` returns the position at once (unfilled until then) and
    :meth:`close` takes it out of :attr:`positions` at once; its :class:`Trade` joins
    :attr:`trades` when the exit fills. Orders still waiting at the end of the data fill at the
    last prices (:meth:`fill_pending`).
    """

    costs: Costs = field(default_factory=Costs)
    initial_equity: float = 100_000.0
    latency_ms: int = DEFAULT_LATENCY_MS
    now: int = 0
    prices: dict[str, float] = field(default_factory=dict)
    #: When each market's price in :attr:`prices` was printed (or marked).
    price_ts: dict[str, int] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    realized: float = 0.0
    #: Orders waiting for their fill time, oldest first (one latency: due times ascend).
    _orders: deque[_Order] = field(default_factory=deque)

    def __post_init__(self) -> None:
        if self.latency_ms < 0:
            raise ValueError(f"Broker: latency_ms must be >= 0, got {self.latency_ms}")

    def mark(self, market: str, price: float, ts: int) -> None:
        """Record the last price of ``market`` at ``ts`` (the runner calls it on every event
        whose price is the market's and every stored mark, :meth:`advance` on the others)."""
        self.advance(ts)
        self.prices[market] = price
        self.price_ts[market] = ts

    def advance(self, ts: int) -> None:
        """The stream reached ``ts``: orders due before it fill at the prices before it."""
        orders = self._orders
        while orders and orders[0].due < ts:
            self._fill(orders.popleft())
        self.now = max(self.now, ts)

    def fill_pending(self) -> None:
        """Fill every waiting order at the last prices (the data ended before their time)."""
        while self._orders:
            self._fill(self._orders.popleft())

    def position(self, market: str) -> Position | None:
        return self.positions.get(market)

    def open(self, market: str, direction: int, notional_usd: float, tag: str = "") -> Position:
        """Open a position, filled at the market's price after the latency plus slippage;
        one per market (a waiting entry counts)."""
        if direction not in (1, -1):
            raise BrokerError(
                f"Broker.open({market!r}): direction must be +1 or -1, got {direction}"
            )
        if not (math.isfinite(notional_usd) and notional_usd > 0):
            # 0, a negative or NaN size made trades of nothing (or of NaN) and a report of them.
            raise BrokerError(
                f"Broker.open({market!r}): notional_usd must be a positive number of USD, "
                f"got {notional_usd}"
            )
        if market in self.positions:
            raise BrokerError(f"Broker.open({market!r}): a position is already open")
        self._price(market)  # a market the stream has not priced yet fails here, not later
        due = self.now + self.latency_ms
        position = Position(market, direction, due, 0.0, 0.0, notional_usd, 0.0, tag)
        self.positions[market] = position
        self._orders.append(_Order(due, position, None))
        if not self.latency_ms:
            self._fill(self._orders.pop())
        return position

    def close(self, market: str, reason: str) -> None:
        """Close the market's position at its price after the latency minus slippage; the
        :class:`Trade` joins :attr:`trades` when the exit fills."""
        position = self.positions.pop(market, None)
        if position is None:
            raise BrokerError(f"Broker.close({market!r}): no open position")
        self._orders.append(_Order(self.now + self.latency_ms, position, reason))
        if not self.latency_ms:
            self._fill(self._orders.pop())

    def _fill(self, order: _Order) -> None:
        position = order.position
        slippage = position.direction * self.costs.slippage_bps / 1e4
        if order.reason is None:
            price = self._price(position.market) * (1.0 + slippage)
            position.entry_price = price
            position.quantity = position.notional_usd / price
            position.entry_fee = position.notional_usd * self.costs.fee_bps / 1e4
            position.entry_price_ts = self.price_ts.get(position.market, 0)
            position.filled = True
            return
        price = self._price(position.market) * (1.0 - slippage)
        exit_fee = position.quantity * price * self.costs.fee_bps / 1e4
        fees = position.entry_fee + exit_fee
        gross = position.direction * position.quantity * (price - position.entry_price)
        trade = Trade(
            market=position.market,
            direction=position.direction,
            entry_ts=position.entry_ts,
            exit_ts=order.due,
            entry_price=position.entry_price,
            exit_price=price,
            notional_usd=position.notional_usd,
            fees_usd=fees,
            pnl_usd=gross - fees,
            reason=order.reason,
            entry_price_ts=position.entry_price_ts,
            exit_price_ts=self.price_ts.get(position.market, 0),
        )
        self.trades.append(trade)
        self.realized += trade.pnl_usd

    def close_all(self, reason: str) -> None:
        for market in list(self.positions):
            self.close(market, reason)

    @property
    def equity(self) -> float:
        """Initial equity plus realized PnL (open positions and waiting exits are not marked)."""
        return self.initial_equity + self.realized

    def _price(self, market: str) -> float:
        price = self.prices.get(market)
        if price is None or price <= 0:
            raise BrokerError(f"Broker: no price seen yet for {market!r}")
        return price
