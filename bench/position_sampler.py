"""The position sampler's coverage over time under its budget, on a synthetic venue.

    .venv/bin/python bench/position_sampler.py

Drives the sampler's real schedule (:class:`purpleflea.ingest.sampling_schedule.Schedule`) on
a fake clock over a synthetic market of ``ACCOUNTS`` accounts with one BTC position each:
notional log-normal (median $20k, heavy tail: sigma 2), leverage 2x-40x (liquidation
``0.9 / L`` from the mark), each account first seen trading at an exponential time whose mean
shrinks with its size (large accounts trade more often). Positions stay put and the mark is
fixed, so what is measured is the schedule alone: how fast coverage (polled notional / all
notional) grows under the budget, and how often accounts at each distance to liquidation are
re-polled once everyone is known. No network: the end-to-end path is tested against the fake
venue in tests/ingest/test_position_sampler.py.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict

from purpleflea.ingest.sampling_schedule import SamplerConfig, Schedule
from purpleflea.positions import Position

ACCOUNTS = 20_000
MARK = 100_000.0
HORIZON_MIN = 180
CHECKPOINTS_MIN = (1, 5, 15, 30, 60, 120, 179)
Band = tuple[float, float]
BANDS: tuple[Band, ...] = ((0.0, 0.01), (0.01, 0.05), (0.05, 0.2), (0.2, math.inf))


def _population(seed: int = 1) -> tuple[list[Position], list[int]]:
    rng = random.Random(seed)
    positions, first_seen = [], []
    for i in range(ACCOUNTS):
        notional = math.exp(rng.gauss(math.log(20_000), 2.0))
        leverage = rng.choice((2, 3, 5, 10, 20, 40))
        side = rng.choice(("long", "short"))
        distance = 0.9 / leverage * rng.uniform(0.2, 1.0)  # some already moved toward it
        liquidation = MARK * (1 - distance) if side == "long" else MARK * (1 + distance)
        positions.append(
            Position(
                account=f"0x{i:040x}",
                exchange="venue",
                symbol="BTC",
                market="BTC-PERP",
                side=side,  # type: ignore[arg-type]
                size=notional / MARK,
                entry_price=MARK,
                margin="cross",
                leverage=leverage,
                liquidation_price=liquidation,
                notional_usd=notional,
            )
        )
        mean_ms = 30 * 60_000 * (20_000 / notional) ** 0.3
        first_seen.append(int(rng.expovariate(1 / mean_ms)))
    return positions, first_seen


def run(
    budget: int,
) -> tuple[dict[int, float], dict[int, float], dict[Band, tuple[int, float, float]]]:
    positions, first_seen = _population()
    by_account = {p.account: p for p in positions}
    total = sum(p.notional_usd for p in positions)
    schedule = Schedule(SamplerConfig(budget_per_minute=budget))
    schedule.marks["BTC-PERP"] = MARK
    arrivals = sorted(zip(first_seen, (p.account for p in positions), strict=True))
    polled_usd, seen, coverage, known = 0.0, set(), {}, {}
    polls: dict[str, list[int]] = defaultdict(list)
    now, next_arrival = 0, 0
    checkpoints = [c * 60_000 for c in CHECKPOINTS_MIN]
    while now <= HORIZON_MIN * 60_000:
        while next_arrival < len(arrivals) and arrivals[next_arrival][0] <= now:
            schedule.discover(arrivals[next_arrival][1], now)
            next_arrival += 1
        while checkpoints and now >= checkpoints[0]:
            minute = checkpoints.pop(0) // 60_000
            coverage[minute] = polled_usd / total
            known[minute] = next_arrival / ACCOUNTS
        account = schedule.next(now)
        if account is None:
            upcoming = arrivals[next_arrival][0] - now if next_arrival < len(arrivals) else 60_000
            now += max(1, min(schedule.wait_ms(now), upcoming))
            continue
        position = by_account[account]
        if account not in seen:
            seen.add(account)
            polled_usd += position.notional_usd
        polls[account].append(now)
        schedule.polled(account, [position], now)
    intervals: dict[Band, list[float]] = defaultdict(list)
    members: dict[Band, int] = defaultdict(int)
    for p in positions:
        assert p.liquidation_price is not None
        distance = abs(MARK - p.liquidation_price) / MARK
        band = next(b for b in BANDS if b[0] <= distance < b[1])
        members[band] += 1
        late = [t for t in polls.get(p.account, []) if t >= (HORIZON_MIN - 60) * 60_000]
        if len(late) >= 2:
            intervals[band].append((late[-1] - late[0]) / (len(late) - 1) / 1000)
    bands = {
        band: (members[band], len(v) / members[band], sorted(v)[len(v) // 2] if v else math.nan)
        for band, v in ((b, intervals[b]) for b in BANDS)
        if members[band]
    }
    return coverage, known, bands


def main() -> None:
    for budget in (SamplerConfig().budget_per_minute, 520):  # default, and the most allowed
        coverage, known, bands = run(budget)
        print(f"\nbudget {budget} polls/min, {ACCOUNTS:,} accounts")
        print("| minute | accounts seen trading | coverage (polled notional) |")
        print("|---:|---:|---:|")
        for minute in CHECKPOINTS_MIN:
            print(f"| {minute} | {known[minute]:.1%} | {coverage[minute]:.1%} |")
        print(
            "| distance to liquidation | accounts | re-polled in the last hour | median interval |"
        )
        print("|---|---:|---:|---:|")
        for (low, high), (count, share, seconds) in bands.items():
            top = "" if math.isinf(high) else f"{high:.0%}"
            print(f"| {low:.0%}-{top} | {count:,} | {share:.0%} | {seconds:.0f} s |")


if __name__ == "__main__":
    main()
