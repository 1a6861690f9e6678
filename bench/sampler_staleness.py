"""How much of the served simulator's measured coverage is stale: the sampler's last-polled
positions against the simulator's truth of the moment, per minute, under the default budget.

    nice .venv/bin/python bench/sampler_staleness.py [--minutes 15]

In one process, as ``purpleflea serve`` runs them: the served simulator (275 markets, its
crash episode a minute in) paced at real time, its Hyperliquid share on loopback
(:mod:`purpleflea.venues.hyperliquid.simulated`), the real position sampler at its default
budget. Every minute, per market:

- ``all``: every sampled account's last-polled notional / (2 x open interest): what the map
  counted before positions passed by the market or older than the age limit were dropped;
- ``reported``: the same over the positions the measured map counts now
  (``PositionSampler.counted``), as the API reports ``coverage_uncapped``;
- ``fresh``: the counted positions that are still open now (the simulator's truth);
- ``open``: every sampled account's positions still open now (what a sampler that saw every
  close at once would report: ``reported`` below it is coverage the age limit gave up);
- ``stale``: the part of the counted notional whose position has closed or been liquidated
  since it was last polled;
- ``polled / open``: sampled accounts holding a position, against the positions open now.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from purpleflea.clock import now_ms
from purpleflea.ingest.position_sampler import PositionSampler
from purpleflea.sim import SimConfig, Simulator, paced
from purpleflea.venues import registry
from purpleflea.venues.hyperliquid.simulated import SimulatedHyperliquid

MARKETS = {"BTC": "BTC-PERP", "ETH": "ETH-PERP"}


def _row(sim: Simulator, venue: SimulatedHyperliquid, sampler: PositionSampler) -> list[str]:
    cells = []
    for coin, market in MARKETS.items():
        context = sampler.contexts.get(market)
        if context is None:
            cells += ["-"] * 6
            continue
        open_now = set(venue.holders(coin).values())
        sampled = [p for p in sampler.schedule.sampled() if p.market == market]
        every = sum(p.notional_usd for p in sampled)
        still_open = sum(p.notional_usd for p in sampled if p.account in open_now)
        counted = sampler.counted(market)
        total = sum(p.notional_usd for p in counted)
        fresh = sum(p.notional_usd for p in counted if p.account in open_now)
        both_sides = 2 * context.open_interest_usd
        accounts = {p.account for p in sampled}
        cells += [
            f"{every / both_sides:.3f}",
            f"{total / both_sides:.3f}",
            f"{fresh / both_sides:.3f}",
            f"{still_open / both_sides:.3f}",
            f"{(total - fresh) / total:.1%}" if total else "-",
            f"{len(accounts)} / {len(open_now)}",
        ]
    return cells


async def main(minutes: float) -> None:
    start = now_ms()
    sim = await asyncio.to_thread(Simulator, SimConfig.served(start_ms=start))
    venue = SimulatedHyperliquid(tuple(MARKETS))
    [sampling] = registry.position_sources()
    sampler = PositionSampler(
        sampling, coins=tuple(MARKETS), info_url=venue.info_url, ws_url=venue.ws_url
    )
    await venue.start()
    task = asyncio.create_task(sampler.run())
    head = ["time"] + [
        f"{m} {label}"
        for m in MARKETS.values()
        for label in ("all", "reported", "fresh", "open", "stale", "polled / open")
    ]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head), flush=True)
    began = time.monotonic()
    next_row = began + 60
    try:
        async for step in paced(sim, wall_origin_ms=sim.config.start_ms):
            venue.observe(sim, step)
            if time.monotonic() >= next_row:
                minute = round((time.monotonic() - began) / 60)
                print(
                    "| " + " | ".join([f"{minute} min", *_row(sim, venue, sampler)]) + " |",
                    flush=True,
                )
                next_row += 60
                if minute >= minutes:
                    break
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await venue.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=15.0)
    asyncio.run(main(parser.parse_args().minutes))
