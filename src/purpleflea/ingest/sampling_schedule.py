"""Which account to poll next, and when: the position sampler's pure core (no I/O, no clock).

A venue that publishes every account's positions caps how often one IP may ask (a REST weight
per minute); the sampler spends a configurable part of it, ``budget_per_minute`` requests,
where a poll tells the most: on accounts whose liquidation price is near the mark.

- **Budget.** Polls are spaced at least ``60 s / budget`` apart, so no 60-second window ever
  holds more than ``budget`` polls (a steady rate, never a burst against the venue's limit).
- **When an account is due.** After a poll, an account is due again after an interval that
  grows with its *distance to liquidation* ``|mark - liquidation price| / mark`` (the nearest
  of its positions): ``min_interval`` at the mark, ``max_interval`` from ``far_distance`` on
  and for accounts with nothing to liquidate. A newly discovered account is due at once.
- **Who goes first.** Of the accounts due, the nearest to liquidation (marks as of now) is
  polled first; a never-polled account ranks as if ``new_distance`` away, so discovery gets
  its first look before safe accounts are refreshed but after accounts in danger.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping

import msgspec

from purpleflea.positions import Position

_MINUTE_MS = 60_000


class SamplerConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The sampler's knobs; the defaults spend half of the documented allowance of one IP on
    account polls (the rest stays for marks, open interest and other pollers)."""

    budget_per_minute: int = 300
    min_interval_ms: int = 10_000
    max_interval_ms: int = 600_000
    far_distance: float = 0.2
    new_distance: float = 0.05
    #: Accounts kept at most (a memory bound); beyond it newly seen accounts are not added.
    max_accounts: int = 100_000

    def __post_init__(self) -> None:
        if self.budget_per_minute < 1:
            raise ValueError(f"sampler budget_per_minute must be >= 1: {self.budget_per_minute}")
        if not 0 < self.min_interval_ms <= self.max_interval_ms:
            raise ValueError(
                f"sampler intervals: need 0 < min_interval_ms <= max_interval_ms, got "
                f"{self.min_interval_ms} and {self.max_interval_ms}"
            )
        if not self.far_distance > 0:
            raise ValueError(f"sampler far_distance must be > 0: {self.far_distance}")


def check_budget(
    config: SamplerConfig, weight_per_minute: int, request_weight: int, reserved: float = 0.0
) -> None:
    """Refuse a budget the venue's documented allowance cannot pay for (``reserved``: weight a
    minute the sampler's other requests, marks and open interest, spend)."""
    spent = config.budget_per_minute * request_weight + reserved
    if spent > weight_per_minute:
        raise ValueError(
            f"sampler budget_per_minute={config.budget_per_minute}: {spent:g} weight a minute "
            f"is more than the venue allows one IP ({weight_per_minute}, {request_weight} a "
            f"poll, {reserved:g} reserved)"
        )


def distance_to_liquidation(positions: Iterable[Position], marks: Mapping[str, float]) -> float:
    """The smallest ``|mark - liquidation price| / mark`` of ``positions`` (inf: none can be
    liquidated). A market without a known mark uses the position's own (notional / size)."""
    nearest = math.inf
    for position in positions:
        if position.liquidation_price is None:
            continue
        mark = marks.get(position.market) or position.notional_usd / position.size
        if mark > 0:
            nearest = min(nearest, abs(mark - position.liquidation_price) / mark)
    return nearest


class Schedule:
    """The accounts known, their last positions, and the order and times to poll them."""

    def __init__(self, config: SamplerConfig) -> None:
        self.config = config
        self.spacing_ms = math.ceil(_MINUTE_MS / config.budget_per_minute)
        self.marks: dict[str, float] = {}
        self.positions: dict[str, list[Position]] = {}
        self._last_poll_ms: int | None = None
        self._token: dict[str, int] = {}  # account -> its live heap entry's token
        self._due: list[tuple[int, int, str]] = []  # (due ms, token, account)
        self._ready: list[tuple[float, int, str]] = []  # (distance, token, account)
        self._next_token = 0
        self._in_flight: set[str] = set()

    def __len__(self) -> int:
        return len(self._token) + len(self._in_flight)

    def _push_due(self, account: str, due_ms: int) -> None:
        self._next_token += 1
        self._token[account] = self._next_token
        heapq.heappush(self._due, (due_ms, self._next_token, account))

    def discover(self, account: str, now_ms: int) -> bool:
        """An account seen trading; True when it is new (then due at once)."""
        account = account.lower()
        if account in self._token or account in self._in_flight:
            return False
        if len(self) >= self.config.max_accounts:
            return False
        self._push_due(account, now_ms)
        return True

    def _distance(self, account: str) -> float:
        held = self.positions.get(account)
        if held is None:
            return self.config.new_distance
        return distance_to_liquidation(held, self.marks)

    def _promote(self, now_ms: int) -> None:
        while self._due and self._due[0][0] <= now_ms:
            _, token, account = heapq.heappop(self._due)
            if self._token.get(account) == token:
                heapq.heappush(self._ready, (self._distance(account), token, account))

    def next(self, now_ms: int) -> str | None:
        """The account to poll now, or None (budget spent for now, or nobody due). A returned
        account counts against the budget whether its poll then succeeds or not."""
        if self._last_poll_ms is not None and now_ms < self._last_poll_ms + self.spacing_ms:
            return None
        self._promote(now_ms)
        while self._ready:
            _, token, account = heapq.heappop(self._ready)
            if self._token.get(account) == token:
                del self._token[account]  # in flight: polled() or failed() reschedules it
                self._in_flight.add(account)
                self._last_poll_ms = now_ms
                return account
        return None

    def wait_ms(self, now_ms: int) -> int:
        """Milliseconds until :meth:`next` may return an account (a driver's sleep)."""
        budget = 0 if self._last_poll_ms is None else self._last_poll_ms + self.spacing_ms - now_ms
        self._promote(now_ms)
        if self._ready:
            due = 0
        else:
            while self._due and self._token.get(self._due[0][2]) != self._due[0][1]:
                heapq.heappop(self._due)
            due = self._due[0][0] - now_ms if self._due else self.config.max_interval_ms
        return max(budget, due, 0)

    def interval_ms(self, distance: float) -> int:
        """How long an account at ``distance`` from liquidation waits for its next poll."""
        config = self.config
        share = min(1.0, distance / config.far_distance)
        return round(
            config.min_interval_ms + (config.max_interval_ms - config.min_interval_ms) * share
        )

    def polled(self, account: str, positions: list[Position], now_ms: int) -> None:
        """Record a poll's positions and schedule the account's next poll."""
        account = account.lower()
        self._in_flight.discard(account)
        self.positions[account] = positions
        self._push_due(account, now_ms + self.interval_ms(self._distance(account)))

    def failed(self, account: str, now_ms: int) -> None:
        """A poll that got no answer: try the account again after ``min_interval``."""
        account = account.lower()
        self._in_flight.discard(account)
        self._push_due(account, now_ms + self.config.min_interval_ms)

    def sampled(self) -> list[Position]:
        """Every position of every polled account, as last seen."""
        return [position for held in self.positions.values() for position in held]
