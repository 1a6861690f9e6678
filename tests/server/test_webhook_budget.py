"""The per-destination delivery budget, pure: a fake clock, no sockets."""

from __future__ import annotations

import pytest

from purpleflea.server.webhook_budget import BudgetLimits, DestinationBudget, destination_key
from purpleflea.server.webhook_policy import WebhookSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _budget(
    rate: float = 10.0, burst: int = 3, bytes_per_s: float = 0.0
) -> tuple[DestinationBudget, Clock]:
    clock = Clock()
    return DestinationBudget(BudgetLimits(rate, burst, bytes_per_s), clock=clock), clock


def test_a_burst_goes_at_once_then_deliveries_are_spaced_by_the_rate() -> None:
    budget, _ = _budget(rate=10.0, burst=3)
    waits = [budget.reserve("203.0.113.5", 500) for _ in range(6)]
    assert waits == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.2, 0.3])


def test_the_budget_refills_with_time() -> None:
    budget, clock = _budget(rate=10.0, burst=3)
    for _ in range(3):
        budget.reserve("203.0.113.5", 500)
    clock.now += 0.3  # three deliveries' worth
    assert [budget.reserve("203.0.113.5", 500) for _ in range(4)] == pytest.approx(
        [0.0, 0.0, 0.0, 0.1]
    )


def test_destinations_have_their_own_budgets() -> None:
    budget, _ = _budget(rate=1.0, burst=1)
    assert budget.reserve("203.0.113.5", 1) == 0.0
    assert budget.reserve("203.0.113.6", 1) == 0.0
    assert budget.reserve("203.0.113.5", 1) == pytest.approx(1.0)
    assert budget.throttled() == 1


def test_bytes_are_budgeted_too() -> None:
    # 1,000 deliveries a second would let these through; 10 kB/s over a 1 s tolerance
    # (burst 1,000 at 1,000/s) lets 10 kB at once, then 10 kB a second.
    budget, _ = _budget(rate=1_000.0, burst=1_000, bytes_per_s=10_000.0)
    waits = [budget.reserve("203.0.113.5", 5_000) for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.0, 0.5, 1.0])


def test_a_charge_after_the_fact_makes_the_next_delivery_wait() -> None:
    budget, _ = _budget(rate=2.0, burst=1)
    budget.charge("203.0.113.5", 100)  # a connection reached it unannounced
    assert budget.wait("203.0.113.5", 100) == pytest.approx(0.5)
    assert budget.reserve("203.0.113.5", 100) == pytest.approx(0.5)


def test_wait_reserves_nothing() -> None:
    budget, _ = _budget(rate=1.0, burst=1)
    budget.reserve("203.0.113.5", 1)
    assert budget.wait("203.0.113.5", 1) == pytest.approx(1.0)
    assert budget.wait("203.0.113.5", 1) == pytest.approx(1.0)


def test_no_budget_when_both_rates_are_zero() -> None:
    budget, _ = _budget(rate=0.0, burst=1, bytes_per_s=0.0)
    assert not budget.enabled
    assert [budget.reserve("203.0.113.5", 10**9) for _ in range(100)] == [0.0] * 100


def test_destinations_back_to_a_full_budget_are_forgotten() -> None:
    budget, clock = _budget(rate=1_000.0, burst=1)
    for n in range(5_000):
        budget.reserve(f"name:h{n}.example", 1)
        clock.now += 0.01
    # Only the last second's destinations are still spending their budget.
    assert len(budget._due) <= 4_096 + 1


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.5", "203.0.113.5"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),  # one /64: one destination
        ("fe80::1%eth0", "fe80::/64"),
        ("::ffff:203.0.113.5", "203.0.113.5"),  # IPv4-mapped
        ("64:ff9b::cb00:7105", "203.0.113.5"),  # NAT64 reaches the IPv4 address
        ("2002:cb00:7105::1", "203.0.113.5"),  # 6to4
    ],
)
def test_destination_keys(address: str, key: str) -> None:
    assert destination_key(address) == key


def test_bad_limits_are_refused_with_their_name() -> None:
    with pytest.raises(ValueError, match="destination rate"):
        WebhookSettings(destination_rate=-1)
    with pytest.raises(ValueError, match="destination burst"):
        WebhookSettings(destination_burst=0)
    with pytest.raises(ValueError, match="max_per_host"):
        WebhookSettings(max_per_host=-1)
