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
- **Who goes first.** Of the accounts due, the one with the smallest *virtual deadline*:
  the virtual time of its last poll plus the interval its distance to liquidation earns at
  the marks of now (stride scheduling; virtual time is the deadline of the last account
  picked). Within the budget this is the real schedule above; when the budget cannot poll
  everyone as often as their distance asks, every account's interval stretches by the same
  factor, so an account near liquidation is still polled that many times more often than a
  safe one, and none starves. (Ranking by distance alone let the few nearest accounts take
  every poll; real-time deadlines spread polls almost evenly once everyone was late:
  bench/position_sampler.py measured both.)
- **Newcomers.** Never-polled accounts wait in their own queue (first seen, first polled)
  and get ``new_share`` of the polls while both queues are busy (all of them while no known
  account is due): without that share, accounts near liquidation can take the whole budget
  and discovery never turns into coverage (measured: coverage stuck at 15 %).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
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
    new_share: float = 0.25
    #: Accounts kept at most (a memory bound); beyond it newly seen accounts are not added.
    max_accounts: int = 100_000
    #: A poll's positions stop counting in the measured map this long after it (None:
    #: ``max_interval_ms``). Within the budget the schedule re-polls every account at least
    #: every ``max_interval_ms``; an older sample means the budget fell behind, and its
    #: positions may have closed unseen (bench/sampler_staleness.py: 13-23 % of the notional
    #: counted at 20 min was stale when every last poll counted).
    max_age_ms: int | None = None

    @property
    def age_limit_ms(self) -> int:
        """How long a poll's positions count (``max_age_ms``, by default ``max_interval_ms``)."""
        return self.max_interval_ms if self.max_age_ms is None else self.max_age_ms

    def __post_init__(self) -> None:
        if self.budget_per_minute < 1:
            raise ValueError(f"sampler budget_per_minute must be >= 1: {self.budget_per_minute}")
        if not 0 < self.min_interval_ms <= self.max_interval_ms:
            raise ValueError(
                f"sampler intervals: need 0 < min_interval_ms <= max_interval_ms, got "
                f"{self.min_interval_ms} and {self.max_interval_ms}"
            )
        if not 0 < self.new_share < 1:
            raise ValueError(f"sampler new_share must be in (0, 1): {self.new_share}")
        if not self.far_distance > 0:
            raise ValueError(f"sampler far_distance must be > 0: {self.far_distance}")
        if self.max_age_ms is not None and self.max_age_ms < self.min_interval_ms:
            raise ValueError(
                f"sampler max_age_ms must be >= min_interval_ms ({self.min_interval_ms}): "
                f"{self.max_age_ms}"
            )


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
    liquidated; 0 for a position the mark has passed, most likely liquidated, so the next poll
    confirms it soon). A market without a known mark uses the position's own (notional /
    size)."""
    nearest = math.inf
    for position in positions:
        liquidation = position.liquidation_price
        if liquidation is None:
            continue
        mark = marks.get(position.market) or position.notional_usd / position.size
        if mark > 0:
            if (mark <= liquidation) if position.side == "long" else (mark >= liquidation):
                return 0.0
            nearest = min(nearest, abs(mark - liquidation) / mark)
    return nearest


class Schedule:
    """The accounts known, their last positions, and the order and times to poll them."""

    def __init__(self, config: SamplerConfig) -> None:
        self.config = config
        self.spacing_ms = math.ceil(_MINUTE_MS / config.budget_per_minute)
        self.marks: dict[str, float] = {}
        self.positions: dict[str, list[Position]] = {}
        #: account -> when its positions were polled (ms)
        self.polled_ms: dict[str, int] = {}
        self._last_poll_ms: int | None = None
        self._token: dict[str, int] = {}  # account -> its live heap entry's token
        self._due: list[tuple[int, int, str]] = []  # (due ms, token, account)
        self._ready: list[tuple[int, int, str]] = []  # (virtual deadline, token, account)
        self._base: dict[str, int] = {}  # account -> virtual time of its last poll
        self._virtual = 0  # the virtual deadline of the last known account picked
        self._next_token = 0
        self._in_flight: set[str] = set()
        self._fresh: deque[tuple[int, str]] = deque()  # (token, never-polled account)
        self._credit = 1.0  # fresh polls owed: +share per known poll, -1 per fresh poll

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
        self._push_fresh(account)
        return True

    def _push_fresh(self, account: str) -> None:
        self._next_token += 1
        self._token[account] = self._next_token
        self._fresh.append((self._next_token, account))

    def _promote(self, now_ms: int) -> None:
        while self._due and self._due[0][0] <= now_ms:
            _, token, account = heapq.heappop(self._due)
            if self._token.get(account) != token:
                continue
            held = self.positions.get(account)
            if held is None:  # a first poll that failed: back in the newcomers' queue
                self._fresh.append((token, account))
            else:
                distance = distance_to_liquidation(held, self.marks)
                deadline = self._base.get(account, 0) + self.interval_ms(distance)
                heapq.heappush(self._ready, (deadline, token, account))

    def _live_head(self) -> None:
        while self._ready and self._token.get(self._ready[0][2]) != self._ready[0][1]:
            heapq.heappop(self._ready)
        while self._fresh and self._token.get(self._fresh[0][1]) != self._fresh[0][0]:
            self._fresh.popleft()

    def _take(self, account: str, now_ms: int) -> str:
        del self._token[account]  # in flight: polled() or failed() reschedules it
        self._in_flight.add(account)
        self._last_poll_ms = now_ms
        return account

    def next(self, now_ms: int) -> str | None:
        """The account to poll now, or None (budget spent for now, or nobody due). A returned
        account counts against the budget whether its poll then succeeds or not."""
        if self._last_poll_ms is not None and now_ms < self._last_poll_ms + self.spacing_ms:
            return None
        self._promote(now_ms)
        self._live_head()
        if self._fresh and (self._credit >= 1 or not self._ready):
            self._credit = max(self._credit - 1, 0.0)
            return self._take(self._fresh.popleft()[1], now_ms)
        if self._ready:
            share = self.config.new_share
            self._credit = min(self._credit + share / (1 - share), 1.0)
            deadline, _, account = heapq.heappop(self._ready)
            self._virtual = max(self._virtual, deadline)
            return self._take(account, now_ms)
        return None

    def wait_ms(self, now_ms: int) -> int:
        """Milliseconds until :meth:`next` may return an account (a driver's sleep)."""
        budget = 0 if self._last_poll_ms is None else self._last_poll_ms + self.spacing_ms - now_ms
        self._promote(now_ms)
        self._live_head()
        if self._ready or self._fresh:
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
        self.polled_ms[account] = now_ms
        self._base[account] = self._virtual
        distance = distance_to_liquidation(positions, self.marks)
        self._push_due(account, now_ms + self.interval_ms(distance))

    def failed(self, account: str, now_ms: int) -> None:
        """A poll that got no answer: try the account again after ``min_interval``."""
        account = account.lower()
        self._in_flight.discard(account)
        self._push_due(account, now_ms + self.config.min_interval_ms)

    def sampled(self) -> list[Position]:
        """Every position of every polled account, as last seen."""
        return [position for held in self.positions.values() for position in held]
