"""The token bucket: requests, charged debts, and forgetting full buckets."""

from __future__ import annotations

import pytest

from purpleflea.server import ratelimit
from purpleflea.server.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_charge_is_a_debt_paid_back_before_the_next_request() -> None:
    clock = Clock()
    limiter = RateLimiter(10.0, 40.0, clock=clock)
    assert limiter.acquire("a") == 0
    limiter.charge("a", 100)  # 39 - 100 = -61 tokens
    assert limiter.acquire("a") == 6.2  # (1 - -61) / 10
    clock.now = 6.2
    assert limiter.acquire("a") == 0
    assert limiter.acquire("b") == 0  # per name


def test_a_name_in_debt_is_not_forgotten_with_the_full_buckets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Forgetting a bucket refills it: one still in debt must stay.
    monkeypatch.setattr(ratelimit, "_MAX_BUCKETS", 2)
    clock = Clock()
    limiter = RateLimiter(10.0, 40.0, clock=clock)
    limiter.acquire("debtor")
    limiter.charge("debtor", 1_000)
    clock.now = 5.0  # a full bucket refills in 4 s; this debt takes 100 s
    limiter.acquire("x")
    limiter.acquire("y")  # the table is full: full buckets are dropped
    assert limiter.acquire("debtor") > 0


@pytest.mark.parametrize(
    ("wait", "said"),
    [
        (0.0001, "0.1 s"),
        (0.02, "0.1 s"),
        (0.1, "0.1 s"),
        (0.25, "0.3 s"),
        (0.3, "0.3 s"),
        (2, "2 s"),
    ],
)
def test_a_wait_is_said_rounded_up_to_a_tenth_and_never_zero(wait: float, said: str) -> None:
    assert RateLimiter.wait_text(wait) == said
