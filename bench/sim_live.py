"""The live feed: how lively it is and how soon a demo shows a cascade.

    .venv/bin/python bench/sim_live.py              # 6 seeds x 10 simulated minutes

For the default, the served (``purpleflea serve``: default knobs, 2.5 s blocks, one crash
episode from the start) and the demo configuration (250 ms steps, 275 markets): events per second,
the busiest second, when the first true cascade starts, and the CPU cost of one simulated
minute (the live server pays it once a minute; it must stay far below 60 s).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from purpleflea.sim import SimConfig, Simulator


def measure(config: SimConfig, minutes: int) -> tuple[float, int, float | None, float]:
    sim = Simulator(config)
    per_second: dict[int, int] = {}
    started = time.perf_counter()
    for step in sim.run(minutes * 60_000):
        for event in step.liquidations:
            second = (event.ts or 0) // 1000
            per_second[second] = per_second.get(second, 0) + 1
    cpu_per_minute = (time.perf_counter() - started) / minutes
    total = sum(per_second.values())
    starts = [c.start_ms for c in sim.truth.cascades()]
    first = (min(starts) - config.start_ms) / 1000 if starts else None
    return total / (minutes * 60), max(per_second.values(), default=0), first, cpu_per_minute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--minutes", type=int, default=10)
    args = parser.parse_args()
    print("| config | seed | events/s | busiest second | first cascade at | CPU s per sim min |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, make in (
        ("default", SimConfig),
        ("served", SimConfig.served),
        ("demo", SimConfig.demo),
    ):
        firsts = []
        for seed in range(args.seeds):
            rate, peak, first, cpu = measure(make(seed=seed), args.minutes)
            firsts.append(first)
            shown = f"{first:.0f} s" if first is not None else f"none in {args.minutes} min"
            print(f"| {name} | {seed} | {rate:.1f} | {peak} | {shown} | {cpu:.3f} |")
        found = [f for f in firsts if f is not None]
        if found:
            print(
                f"| {name} | all | | | median {np.median(found):.0f} s, "
                f"{len(found)}/{len(firsts)} seeds | |"
            )


if __name__ == "__main__":
    main()
