"""A restart keeps each cascade's lifecycle whole for clients: started -> updated* -> exhausted.

The warmed engine and the engine that ran before the restart need not agree (the warm reads
the newest 200,000 stored events and the open interest the store kept; live read every
snapshot), so after warming the tracker compares the engine's active cascades with the
alerts the store holds: a cascade no client heard start is kept quiet until it ends, and one
the store holds as active that the engine no longer follows is closed with ``exhausted``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec

from purpleflea.bus.local import LocalBus
from purpleflea.clock import now_ms
from purpleflea.engine import CascadeEngine
from purpleflea.model import CascadeAlert, VenueLiquidation
from purpleflea.server.pipeline import Pipeline
from purpleflea.store.sqlite import SQLiteStore
from tests.server.conftest import T0, venue_event


def _burst(n: int) -> list[VenueLiquidation]:
    # A falling market liquidating longs faster and faster: a cascade the engine starts.
    return [
        venue_event(size_usd=20_000.0 * (1 + i // 20), price=60_000.0 - 5 * i, ts=T0 + 400 * i)
        for i in range(n)
    ]


async def _run(
    store: SQLiteStore, events: list[VenueLiquidation], *, scored: bool = True, **start: int
) -> None:
    """A tracker's life: start (warming from ``store``), take ``events``, stop before a tick;
    ``scored`` False: with no cascade engine (the events stored, no alert)."""
    tracker = Pipeline(store, LocalBus(), scorer=CascadeEngine() if scored else None)
    await tracker.start(tick_interval=3600.0, **start)
    for event in events:
        tracker.submit(event)
    await tracker.drain()
    await tracker.stop()


async def _restart_and_tick(store: SQLiteStore, **start: int) -> list[CascadeAlert]:
    """Restart on ``store``; the wall clock's first tick (years after T0) ends every cascade.
    The alerts published after the restart."""
    bus = LocalBus()
    subscription = bus.subscribe()
    tracker = Pipeline(store, bus, scorer=CascadeEngine())
    await tracker.start(tick_interval=0.01, **start)
    for _ in range(500):
        await asyncio.sleep(0.01)
        if not await store.cascades(active=True):
            break
    await tracker.stop()
    alerts = [m.payload for m in subscription.drain() if m.channel == "cascades"]
    assert all(isinstance(a, CascadeAlert) for a in alerts)
    return [a for a in alerts if isinstance(a, CascadeAlert)]


async def test_a_cascade_only_the_warmed_engine_found_is_never_told(tmp_path: Path) -> None:
    # Stored without alerts: no engine ran before (scorer=None), as when the engine before the
    # restart, which read every open-interest snapshot, scored these events below a start.
    store = SQLiteStore(tmp_path / "db.sqlite")
    await _run(store, _burst(120), scored=False)
    assert await store.cascades() == []
    warmed = CascadeEngine()
    for event in _burst(120):
        assert event.size_usd is not None
        assert event.ts is not None
        warmed.observe(event.market, event.side, event.size_usd, event.price, event.ts, "x")
    assert warmed.active(), "a warmed engine follows a cascade here"

    # Its first tick exhausts it: before, clients got that "exhausted" of a cascade that
    # never started (a restart in the simulated crash sent 25 such, and "updated" ones).
    alerts = await _restart_and_tick(store)

    assert alerts == []
    assert await store.cascades() == []
    await store.close()


async def test_every_cascade_told_after_a_restart_starts_with_started(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    await _run(store, _burst(120), scored=False)

    # After the restart the same market liquidates again.
    bus = LocalBus()
    subscription = bus.subscribe()
    engine = CascadeEngine()
    tracker = Pipeline(store, bus, scorer=engine)
    await tracker.start(tick_interval=0.01)
    for _ in range(500):  # the wall clock's first tick ends the warmed engine's cascade
        if not engine.active():
            break
        await asyncio.sleep(0.01)
    # Well after the cooldown that follows the tick's exhaustion (at the wall clock).
    later = now_ms() + 3_600_000 - T0
    for event in _burst(120):
        assert event.ts is not None
        tracker.submit(msgspec.structs.replace(event, ts=event.ts + later))
    await tracker.drain()
    await tracker.stop()
    alerts = [m.payload for m in subscription.drain() if m.channel == "cascades"]
    told = [a for a in alerts if isinstance(a, CascadeAlert)]
    assert told, "the new burst is a cascade clients hear of"
    for cascade in {a.id for a in told}:
        assert next(a.status for a in told if a.id == cascade) == "started"
    await store.close()


async def test_a_stored_active_cascade_the_warmed_engine_lost_is_exhausted(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    await _run(store, _burst(120))
    before = await store.cascades(active=True)
    assert len(before) == 1, "the first tracker started a cascade and stopped while it ran"

    # The warm reads fewer events than the cascade holds (a crash writes 200,000 in minutes):
    # the warmed engine does not know it.
    await _restart_and_tick(store, warm_events=5)

    assert await store.cascades(active=True) == []
    (last,) = [a for a in await store.cascades() if a.id == before[0].id]
    assert last.status == "exhausted"
    assert "exhausted" in last.message
    await store.close()


async def test_a_cascade_told_over_is_not_ended_again(tmp_path: Path) -> None:
    # Live, the wall clock's tick ended the cascade; the warm does not replay ticks, so the
    # warmed engine still followed it and its first tick sent a second "exhausted" (CKB-PERP
    # and ORDI-PERP in the simulated crash, 2026-12-07).
    store = SQLiteStore(tmp_path / "db.sqlite")
    tracker = Pipeline(store, LocalBus(), scorer=CascadeEngine())
    await tracker.start(tick_interval=0.01)
    for event in _burst(120):
        tracker.submit(event)
    await tracker.drain()
    for _ in range(500):
        if (await store.cascades()) and not await store.cascades(active=True):
            break
        await asyncio.sleep(0.01)
    await tracker.stop()
    (ended,) = await store.cascades()
    assert ended.status == "exhausted"

    alerts = await _restart_and_tick(store)

    assert [a for a in alerts if a.id == ended.id] == []
    statuses = [a.status for a in await store.cascades_since(0)]
    assert statuses[0] == "started"
    assert statuses.count("exhausted") == 1
    await store.close()
