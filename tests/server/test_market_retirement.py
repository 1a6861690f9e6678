"""Markets that come and go (dated futures, listings delisted) leave no per-market state behind
in the server once they are gone: the entries their events made (the tracker's market list,
the market price's fill set, the heatmap feed's price ranges, the cascade engine's states) are
retired as the heatmap retires their listings."""

from __future__ import annotations

from pathlib import Path

from purpleflea.bus.local import LocalBus
from purpleflea.engine import CascadeEngine
from purpleflea.engine.heatmap_feed import HeatmapFeed
from purpleflea.model import MarketSnapshot
from purpleflea.server.pipeline import Pipeline
from purpleflea.store.sqlite import SQLiteStore
from tests.server.conftest import T0, venue_event

HOUR_MS = 3_600_000
#: A market is retired a week after its last event (``pipeline.MARKET_RETIRE_MS``).
RETIRE_MS = 7 * 24 * HOUR_MS
FILLS = {"binance_usdm"}


def _snapshot(market: str, ts: int) -> MarketSnapshot:
    return MarketSnapshot(
        exchange="binance_usdm",
        symbol=market.replace("-PERP", "USDT"),
        market=market,
        ts=ts,
        mark_price=10.0,
        open_interest=1e6,
        open_interest_usd=1e7,
    )


async def test_short_lived_markets_leave_no_state_once_gone(tmp_path: Path) -> None:
    engine = CascadeEngine(fill_priced=FILLS)
    feed = HeatmapFeed(fuel=engine)
    store = SQLiteStore(tmp_path / "db.sqlite")
    tracker = Pipeline(store, LocalBus(), scorer=engine, heatmap=feed, fill_priced=FILLS)
    await tracker.start(tick_interval=3600.0)
    try:
        listings = 300  # one a simulated hour, each liquidated three times in its first minute
        quiet_hours = RETIRE_MS // HOUR_MS + 24  # then only BTC, past the retire time
        for hour in range(listings + quiet_hours):
            start = T0 + hour * HOUR_MS
            tracker.submit(venue_event(market="BTC-PERP", ts=start))
            # A market listed all along whose only events came in its first hour: kept.
            tracker.on_snapshot(_snapshot("LISTED-PERP", start))
            if hour == 0:
                tracker.submit(venue_event(market="LISTED-PERP", price=10.0, ts=start + 5))
            if hour < listings:
                for k in range(3):
                    market = f"GONE{hour}-PERP"
                    tracker.submit(venue_event(market=market, price=10.0, ts=start + 10 + k))
            await tracker.drain()
        kept = {"BTC-PERP", "LISTED-PERP"}
        assert set(tracker.markets) == kept  # were 302: every market ever liquidated
        assert set(tracker._prices._filled) <= kept
        assert set(feed._range) <= kept
        assert set(engine._states) <= kept
        assert tracker.markets_retired == listings
        # A retired market's next event makes it anew.
        last = T0 + (listings + quiet_hours) * HOUR_MS
        tracker.submit(venue_event(market="GONE0-PERP", price=11.0, ts=last))
        await tracker.drain()
        assert tracker.markets["GONE0-PERP"].last_price == 11.0
        assert tracker.markets["GONE0-PERP"].exchanges == {"binance_usdm"}
    finally:
        await tracker.stop()
        await store.close()
