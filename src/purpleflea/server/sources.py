"""Where events come from: the simulator, a replay file, or the live exchanges.

Each source is a coroutine that runs until cancelled and hands venue events to the tracker
(``tracker.submit``) and open-interest snapshots to ``tracker.on_snapshot``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import msgspec

from purpleflea.model import VenueLiquidation
from purpleflea.server.pipeline import Tracker

log = logging.getLogger("purpleflea.source")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def run_sim(tracker: Tracker, *, seed: int, markets: int, speed: float) -> None:
    """The built-in market simulator, paced at ``speed`` x real time from now."""
    from purpleflea.sim import SimConfig, Simulator, paced  # noqa: PLC0415 - numpy when used

    sim = Simulator(SimConfig.demo(seed=seed, n_markets=markets, start_ms=_now_ms()))
    log.info("simulator: %d markets, seed %d, %.3g x real time", markets, seed, speed)
    async for step in paced(sim, speed=speed):
        tracker.advance_clock(step.ts)
        received = _now_ms()
        for event in step.liquidations:
            tracker.submit(event, received)
        for snapshot in step.snapshots:
            tracker.on_snapshot(snapshot)


async def run_replay(tracker: Tracker, path: Path, *, speed: float) -> None:
    """Replay a JSON-lines file of events (one event object per line), paced by ``ts``.

    Lines need the venue fields (``id, exchange, symbol, market, side, price, quantity,
    size_usd, ts``); ``seq``/``received_at``/``cascade_score``/``coverage`` are ignored and
    reassigned. A bad line is logged with its number and skipped. Replayed ids dedupe against the
    store.
    """
    previous_ts: int | None = None
    bad = 0
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                raw = msgspec.json.decode(line)
                if isinstance(raw, dict):
                    for extra in ("seq", "received_at", "cascade_score", "coverage"):
                        raw.pop(extra, None)
                event = msgspec.convert(raw, VenueLiquidation)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                bad += 1
                log.warning("%s:%d: skipped: %s", path, number, exc)
                continue
            ts = event.ts if event.ts is not None else previous_ts
            if ts is not None and previous_ts is not None and ts > previous_ts and speed > 0:
                await asyncio.sleep((ts - previous_ts) / 1000.0 / speed)
            if ts is not None:
                previous_ts = ts
                tracker.advance_clock(ts)
            tracker.submit(event)
    log.info("replay of %s finished (%d bad lines skipped)", path, bad)
