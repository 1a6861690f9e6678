"""The position sampler's schedule: it never exceeds its budget, and it polls the accounts
nearest to liquidation most often (a fake clock: plain milliseconds)."""

from __future__ import annotations

from collections import Counter

import pytest

from purpleflea.ingest.sampling_schedule import (
    SamplerConfig,
    Schedule,
    check_budget,
    distance_to_liquidation,
)
from purpleflea.positions import Position

MARK = 100_000.0


def _long(account: str, liquidation: float | None, size: float = 1.0) -> Position:
    return Position(
        account=account,
        exchange="venue",
        symbol="BTC",
        market="BTC-PERP",
        side="long",
        size=size,
        entry_price=MARK,
        margin="cross",
        leverage=5,
        liquidation_price=liquidation,
        notional_usd=size * MARK,
    )


def _address(i: int) -> str:
    return f"0x{i:040x}"


def _run(
    schedule: Schedule, book: dict[str, list[Position]], until_ms: int
) -> list[tuple[int, str]]:
    """Drive the schedule like the sampler does, answering every poll from ``book``."""
    now, polls = 0, []
    while now < until_ms:
        account = schedule.next(now)
        if account is None:
            now += max(schedule.wait_ms(now), 1)
            continue
        polls.append((now, account))
        schedule.polled(account, book.get(account, []), now)
    return polls


def test_no_minute_ever_holds_more_polls_than_the_budget() -> None:
    schedule = Schedule(SamplerConfig(budget_per_minute=120, min_interval_ms=1_000))
    book = {_address(i): [_long(_address(i), MARK * 0.999)] for i in range(500)}
    for account in book:
        schedule.discover(account, 0)
    times = [t for t, _ in _run(schedule, book, until_ms=600_000)]
    for i, start in enumerate(times):
        within = sum(1 for t in times[i:] if t < start + 60_000)
        assert within <= 120, f"{within} polls in the minute from {start} ms"
    assert len(times) >= 120 * 10 - 1  # and it spends the budget it has: 10 minutes of it


def test_accounts_near_liquidation_are_polled_most_often() -> None:
    config = SamplerConfig(budget_per_minute=600, min_interval_ms=5_000, max_interval_ms=300_000)
    schedule = Schedule(config)
    distances = {"near": 0.005, "mid": 0.05, "far": 0.15, "safe": None}
    book = {
        name: [_long(name, None if d is None else MARK * (1 - d))] for name, d in distances.items()
    }
    for name in book:
        schedule.discover(name, 0)
    counts = Counter(account for _, account in _run(schedule, book, until_ms=1_800_000))
    assert counts["near"] > counts["mid"] > counts["far"] > counts["safe"] >= 6
    assert counts["near"] >= 1_800_000 / 20_000  # every ~12 s at 0.5 %: ~150 in 30 minutes


def test_when_the_budget_is_short_the_nearest_goes_first_and_newcomers_get_their_share() -> None:
    config = SamplerConfig(
        budget_per_minute=1, min_interval_ms=10**6, max_interval_ms=10**8, far_distance=0.1
    )
    schedule = Schedule(config)
    schedule.marks["BTC-PERP"] = MARK
    known = {f"k{i}": 0.01 * i for i in (3, 1, 9, 2, 7, 4, 8, 5, 6)}  # discovered in this order
    now = 0
    for name, distance in known.items():
        schedule.discover(name, now)
        assert schedule.next(now) == name  # nothing else waits: first seen, first polled
        schedule.polled(name, [_long(name, MARK * (1 - distance))], now)
        now += 60_000
    for name in ("n1", "n2", "n3"):
        schedule.discover(name, now)
    later = 10**9  # every known account is due again; one poll a minute
    order = []
    for minute in range(12):
        account = schedule.next(later + minute * 60_000)
        assert account is not None
        order.append(account)
        schedule.polled(account, schedule.positions.get(account, []), later + 10**10)
    # Known accounts nearest first; every fourth poll (new_share 0.25) a newcomer.
    assert order == ["k1", "k2", "k3", "n1", "k4", "k5", "k6", "n2", "k7", "k8", "k9", "n3"]


def test_marks_move_the_priorities() -> None:
    near = _long("a", 95_000)
    assert distance_to_liquidation([near], {"BTC-PERP": 100_000}) == pytest.approx(0.05)
    assert distance_to_liquidation([near], {"BTC-PERP": 96_000}) == pytest.approx(1 / 96)
    assert distance_to_liquidation([near], {}) == pytest.approx(0.05)  # its own mark
    assert distance_to_liquidation([_long("b", None)], {}) == float("inf")


def test_a_known_account_is_not_discovered_twice_even_while_in_flight() -> None:
    schedule = Schedule(SamplerConfig())
    assert schedule.discover("0xAB", 0)
    assert not schedule.discover("0xab", 0)
    assert schedule.next(0) == "0xab"
    assert not schedule.discover("0xab", 1)
    assert schedule.next(1_000_000) is None  # in flight: not handed out again
    schedule.failed("0xab", 1_000_000)
    assert schedule.next(1_000_000 + 10_000) == "0xab"


def test_a_budget_beyond_the_venues_allowance_is_refused() -> None:
    check_budget(SamplerConfig(budget_per_minute=600), weight_per_minute=1200, request_weight=2)
    with pytest.raises(ValueError, match="budget_per_minute=601: 1202 weight a minute"):
        check_budget(SamplerConfig(budget_per_minute=601), weight_per_minute=1200, request_weight=2)
    with pytest.raises(ValueError, match="budget_per_minute must be >= 1"):
        SamplerConfig(budget_per_minute=0)
