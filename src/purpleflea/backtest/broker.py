"""A paper broker: one position per market, filled at the stream's last price with costs.

Prices come from the replay (:class:`~purpleflea.backtest.runner.Replay`): a fill uses the
newest price of that market at the decision time, a fill-venue liquidation's or a stored
mark's. Liquidation prices are forced fills, often a little worse than the book during a
cascade, and a stored mark is up to a sampling interval old: the backtest's main limitation
(docs/cascade.md, "Prices").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec


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


@dataclass(slots=True)
class Position:
    market: str
    direction: int
    entry_ts: int
    entry_price: float  # after slippage
    quantity: float
    notional_usd: float
    entry_fee: float
    tag: str = ""


@dataclass(frozen=True, slots=True)
class Costs:
    """Trading costs in basis points of notional, paid on entry and on exit."""

    fee_bps: float = 5.0
    slippage_bps: float = 5.0

    def __post_init__(self) -> None:
        if self.fee_bps < 0 or self.slippage_bps < 0:
            raise ValueError(
                f"Costs: fee_bps and slippage_bps must be >= 0, got {self.fee_bps}, "
                f"{self.slippage_bps}"
            )


@dataclass(slots=True)
class Broker:
    """Opens and closes positions at the stream's prices; keeps trades and realized equity."""

    costs: Costs = field(default_factory=Costs)
    initial_equity: float = 100_000.0
    now: int = 0
    prices: dict[str, float] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    realized: float = 0.0

    def mark(self, market: str, price: float, ts: int) -> None:
        """Record the last price of ``market`` at ``ts`` (the runner calls it on every event
        whose price is the market's and every stored mark, :meth:`advance` on the others)."""
        self.prices[market] = price
        self.now = max(self.now, ts)

    def advance(self, ts: int) -> None:
        """The stream reached ``ts`` with no market price (a bankruptcy-priced event)."""
        self.now = max(self.now, ts)

    def position(self, market: str) -> Position | None:
        return self.positions.get(market)

    def open(self, market: str, direction: int, notional_usd: float, tag: str = "") -> Position:
        """Open a position at the market's last price plus slippage; one per market."""
        if direction not in (1, -1):
            raise ValueError(
                f"Broker.open({market!r}): direction must be +1 or -1, got {direction}"
            )
        if market in self.positions:
            raise ValueError(f"Broker.open({market!r}): a position is already open")
        price = self._price(market) * (1.0 + direction * self.costs.slippage_bps / 1e4)
        fee = notional_usd * self.costs.fee_bps / 1e4
        position = Position(
            market, direction, self.now, price, notional_usd / price, notional_usd, fee, tag
        )
        self.positions[market] = position
        return position

    def close(self, market: str, reason: str) -> Trade:
        """Close the market's position at its last price minus slippage."""
        position = self.positions.pop(market, None)
        if position is None:
            raise ValueError(f"Broker.close({market!r}): no open position")
        price = self._price(market) * (1.0 - position.direction * self.costs.slippage_bps / 1e4)
        exit_fee = position.quantity * price * self.costs.fee_bps / 1e4
        fees = position.entry_fee + exit_fee
        gross = position.direction * position.quantity * (price - position.entry_price)
        trade = Trade(
            market=market,
            direction=position.direction,
            entry_ts=position.entry_ts,
            exit_ts=self.now,
            entry_price=position.entry_price,
            exit_price=price,
            notional_usd=position.notional_usd,
            fees_usd=fees,
            pnl_usd=gross - fees,
            reason=reason,
        )
        self.trades.append(trade)
        self.realized += trade.pnl_usd
        return trade

    def close_all(self, reason: str) -> None:
        for market in list(self.positions):
            self.close(market, reason)

    @property
    def equity(self) -> float:
        """Initial equity plus realized PnL (open positions are not marked)."""
        return self.initial_equity + self.realized

    def _price(self, market: str) -> float:
        price = self.prices.get(market)
        if price is None or price <= 0:
            raise ValueError(f"Broker: no price seen yet for {market!r}")
        return price
