"""Pacing a simulator against the wall clock, for a live feed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from purpleflea.sim.process import SimStep, Simulator


async def paced(sim: Simulator, *, speed: float = 1.0) -> AsyncIterator[SimStep]:
    """Yield ``sim``'s steps so that simulated time advances at ``speed`` x wall time.

    Each step is yielded once its end time is due (a step of 250 ms reaches the consumer
    within ~250 ms / speed of happening). A consumer that falls behind gets the overdue
    steps without sleeping until it has caught up; the pace is never made up by skipping.
    """
    if not speed > 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    loop = asyncio.get_running_loop()
    wall0, sim0 = loop.time(), sim.now_ms
    for step in sim.steps():
        delay = wall0 + (step.ts - sim0) / 1000.0 / speed - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        yield step
