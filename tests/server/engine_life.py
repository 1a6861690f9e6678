"""One life of a tracker around an engine checkpoint, for the restart tests of both kinds of
store (tests/server/test_restart_engine.py, test_restart_engine_postgres.py)."""

from __future__ import annotations

from purpleflea.engine import CascadeEngine
from purpleflea.model import MarketSnapshot
from purpleflea.server.pipeline import Pipeline
from tests.server.conftest import T0, venue_event

MINUTE = 60_000


def snapshot(ts: int, mark: float, usd: float, symbol: str = "BTCUSDT") -> MarketSnapshot:
    return MarketSnapshot(
        exchange="binance_usdm",
        symbol=symbol,
        market="BTC-PERP",
        ts=ts,
        mark_price=mark,
        open_interest=usd / mark,
        open_interest_usd=usd,
    )


async def life_after_checkpoint(tracker: Pipeline, engine: CascadeEngine) -> None:
    """Snapshots (fuel, open interest, a second listing), a burst that starts a cascade, a
    tick that does not end it, more of the burst: what a checkpoint does not hold."""
    tracker.on_snapshot(snapshot(T0 + 2 * MINUTE, 59_500.0, 0.8e9))
    tracker.on_snapshot(snapshot(T0 + 2 * MINUTE, 59_500.0, 2e8, symbol="BTCUSDT_251226"))
    for i in range(120):
        size = 20_000.0 * (1 + i // 20)
        tracker.submit(
            venue_event(size_usd=size, price=59_500.0 - 5 * i, ts=T0 + 150_000 + 400 * i)
        )
        if i == 60:
            await tracker.drain()
            tracker.on_snapshot(snapshot(T0 + 3 * MINUTE, 59_200.0, 0.7e9))
    await tracker.drain()
    assert engine.active(), "the burst started a cascade"
    await tracker._tick(T0 + 150_000 + 400 * 120 + 5_000)
    assert engine.active(), "the tick ended no cascade"
    tracker.submit(venue_event(size_usd=50_000.0, price=58_000.0, ts=T0 + 215_000))
    await tracker.drain()
    tracker.on_snapshot(snapshot(T0 + 4 * MINUTE, 58_000.0, 0.6e9))


async def checkpointed(tracker: Pipeline) -> None:
    """40 liquidations and two snapshots, then a checkpoint due on the tracker's clock."""
    tracker.on_snapshot(snapshot(T0, 60_000.0, 1e9))
    for i in range(40):
        tracker.submit(venue_event(size_usd=20_000.0, price=60_000.0 - i, ts=T0 + 2_000 * i))
    await tracker.drain()
    tracker.on_snapshot(snapshot(T0 + MINUTE, 59_960.0, 1.1e9))
    tracker.checkpoint_wall_s = 0.0
    checkpoints = tracker.checkpoints
    await tracker._tick(T0 + 81_000)
    assert tracker._checkpointing is not None
    await tracker._checkpointing
    assert tracker.checkpoints == checkpoints + 1
    tracker.checkpoint_wall_s = 1e9
