"""Cascade engine replay throughput and backtest wall time on simulated history.

    .venv/bin/python bench/cascade_replay.py --days 1

1. ``engine.observe`` over the simulator's events (275 markets), pre-materialized as tuples:
   events per second of the engine alone (plus the once-a-second ``tick``), for the engine
   ``purpleflea.engine`` serves (compiled by scripts/build_native.py when built) and for the
   pure-Python one.
2. The full backtest path (playbook, broker, alerts) over the same events as ``Liquidation``
   structs, in memory, and read page by page from a SQLite store; the 30-day figure is
   extrapolated from the measured events/s and the simulator's events/day.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
import time
from pathlib import Path

from purpleflea.backtest import Playbook, result, start, store_pages
from purpleflea.engine import NATIVE, CascadeEngine
from purpleflea.engine import cascade as pure
from purpleflea.model import Liquidation
from purpleflea.sim.process import SimConfig, Simulator
from purpleflea.store.sqlite import SQLiteStore
from purpleflea.venues.registry import coverage_of


def simulate(days: float, seed: int) -> list[Liquidation]:
    sim = Simulator(SimConfig(seed=seed))
    events: list[Liquidation] = []
    for _ in range(int(days * 1440)):
        for v in sim.venue_events(sim.next_block()):
            assert v.quantity is not None
            assert v.size_usd is not None
            assert v.ts is not None
            events.append(
                Liquidation(
                    id=v.id,
                    seq=len(events) + 1,
                    exchange=v.exchange,
                    symbol=v.symbol,
                    market=v.market,
                    side=v.side,
                    price=v.price,
                    quantity=v.quantity,
                    size_usd=v.size_usd,
                    ts=v.ts,
                    received_at=v.ts,
                    coverage=coverage_of(v.exchange),
                )
            )
    return events


def bench_engine(
    events: list[Liquidation], repeat: int, engine_class: type[CascadeEngine] = CascadeEngine
) -> float:
    rows = [(e.market, e.side, e.size_usd, e.price, e.ts, e.exchange) for e in events]
    best = 0.0
    for _ in range(repeat):
        engine = engine_class()
        # Every market's open interest known (as after its first snapshot), so the score's
        # open-interest term is on the measured path (its value only moves scores, not cost).
        for market in {row[0] for row in rows}:
            engine.set_open_interest(market, 1e9)
        observe, tick = engine.observe, engine.tick
        second = rows[0][4] // 1000
        t0 = time.perf_counter()
        for market, side, size, price, ts, exchange in rows:
            if ts // 1000 > second:
                second = ts // 1000
                tick(second * 1000)
            observe(market, side, size, price, ts, exchange)  # type: ignore[arg-type]
        best = max(best, len(rows) / (time.perf_counter() - t0))
    return best


def bench_backtest(events: list[Liquidation]) -> tuple[float, int]:
    replay = start(Playbook())
    t0 = time.perf_counter()
    replay.feed(events)
    replay.finish()
    took = time.perf_counter() - t0
    return len(events) / took, result(replay, {}).metrics.trades


async def bench_store(events: list[Liquidation]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "h.sqlite")
        for i in range(0, len(events), 50_000):
            store.append_now(events[i : i + 50_000])
        replay = start(Playbook())
        t0 = time.perf_counter()
        async for page in store_pages(store):
            replay.feed(page)
        replay.finish()
        took = time.perf_counter() - t0
        await store.close()
    return len(events) / took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    t0 = time.perf_counter()
    events = simulate(args.days, args.seed)
    per_day = len(events) / args.days
    print(
        f"simulated {args.days:g} day(s), 275 markets: {len(events):,} events "
        f"({time.perf_counter() - t0:.0f} s)"
    )
    engine_rate = bench_engine(events, args.repeat)
    which = "compiled (scripts/build_native.py)" if NATIVE else "pure Python: no compiled build"
    print(f"engine replay, {which}: {engine_rate / 1e6:.2f} M events/s (best of {args.repeat})")
    if NATIVE:
        pure_rate = bench_engine(events, args.repeat, pure.CascadeEngine)
        print(f"engine replay, pure Python: {pure_rate / 1e6:.2f} M events/s")
    backtest_rate, trades = bench_backtest(events)
    print(f"backtest in memory: {backtest_rate / 1e6:.2f} M events/s, {trades} trades")
    store_rate = asyncio.run(bench_store(events))
    print(f"backtest from SQLite: {store_rate / 1e6:.2f} M events/s")
    month = 30 * per_day
    print(
        f"30 days x 275 markets = {month / 1e6:.1f} M events: backtest from SQLite "
        f"~{month / store_rate:.0f} s, in memory ~{month / backtest_rate:.0f} s (extrapolated)"
    )


if __name__ == "__main__":
    main()
