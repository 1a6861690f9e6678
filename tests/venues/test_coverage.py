"""Every event the shared fixture frames yield is published with its venue's coverage.

The frames go through the normalizers and the server's tracker (what assigns seqs and publishes)
into a store; each stored event's ``coverage`` must be its venue's documented class
(shared/EXCHANGES.md): Binance throttles to one per symbol per second (``snapshot``), Bybit's
``allLiquidation`` sends them all (``complete``), Hyperliquid shows only watched accounts
(``sampled``).
"""

from __future__ import annotations

from pathlib import Path

from purpleflea.bus.local import LocalBus
from purpleflea.server.pipeline import Pipeline
from purpleflea.store.sqlite import SQLiteStore
from purpleflea.venues import registry
from tests.venues.test_fixtures import CASES, _all_cases

#: From shared/EXCHANGES.md, written out here so a venue's class cannot drift unnoticed.
DOCUMENTED = {
    "binance_usdm": "snapshot",
    "binance_coinm": "snapshot",
    "bybit": "complete",
    "hyperliquid": "sampled",
}


async def test_events_from_recorded_frames_carry_their_venues_coverage(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    tracker = Pipeline(store, LocalBus())
    await tracker.start()
    submitted: set[str] = set()
    for name, normalize, folder in _all_cases():
        for event in normalize((folder / f"{name}.json").read_bytes()):
            if event.size_usd is not None:
                tracker.submit(event)
                submitted.add(event.exchange)
    await tracker.drain()
    stored = await store.since(0, 10_000)
    await tracker.stop()
    await store.close()
    assert {e.exchange for e in stored} == submitted
    assert set(DOCUMENTED) <= submitted, "a documented venue's fixture yielded no event"
    assert len(submitted) >= len(CASES) // 3  # most venues are represented
    for event in stored:
        assert event.coverage == registry.EXCHANGES[event.exchange].coverage, event
        assert event.coverage == DOCUMENTED.get(event.exchange, event.coverage), event
