"""Pacing a simulator against the wall clock, for a live feed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

from purpleflea.sim.events import RawBlock
from purpleflea.sim.process import SimStep, Simulator


async def paced(
    sim: Simulator,
    *,
    speed: float = 1.0,
    wall_origin_ms: int | None = None,
    checkpoint: Callable[[Simulator], None] | None = None,
    thin: Callable[[RawBlock], RawBlock] | None = None,
) -> AsyncIterator[SimStep]:
    """Yield ``sim``'s steps so that simulated time advances at ``speed`` x wall time.

    ``wall_origin_ms`` is the wall-clock time (ms since the epoch) at which ``sim.now_ms`` is
    due; by default, now. A live source passes the ``start_ms`` it built the simulator with,
    so at ``speed`` 1 a step is yielded when its own time comes on the wall clock (its events'
    ``ts`` are within one step of it), however long building the simulator took.

    Each step is yielded once its end time is due. A consumer that falls behind gets the
    overdue steps without sleeping until it has caught up; the pace is never made up by
    skipping. Blocks are computed in a worker thread, so the event loop keeps serving while
    one is computed. ``checkpoint`` is called (in that thread) after each block is computed
    and before its steps are yielded: the live source captures the simulator's state there.
    ``thin`` (also in that thread) removes what the published feed would not carry (the
    snapshot venues' throttle, :class:`~purpleflea.sim.throttle.SnapshotThrottle`).
    """
    if not speed > 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    loop = asyncio.get_running_loop()
    behind_s = 0.0 if wall_origin_ms is None else (time.time() * 1000 - wall_origin_ms) / 1000
    wall0, sim0 = loop.time() - behind_s, sim.now_ms
    while True:
        raw = await asyncio.to_thread(_next_block, sim, checkpoint, thin)
        for step in sim.block_steps(raw):
            delay = wall0 + (step.ts - sim0) / 1000.0 / speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            yield step


def _next_block(
    sim: Simulator,
    checkpoint: Callable[[Simulator], None] | None,
    thin: Callable[[RawBlock], RawBlock] | None,
) -> RawBlock:
    raw = sim.next_block()
    if checkpoint is not None:
        checkpoint(sim)
    return raw if thin is None else thin(raw)
