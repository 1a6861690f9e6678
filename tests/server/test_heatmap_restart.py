"""A tracker started on a folder with stored open interest serves heatmaps from it at once.

``purpleflea sim --days 1`` into a folder, then ``purpleflea serve --source none`` on it:
``/v1/heatmap/<market>`` answered 404 for ever (no snapshot ever arrives) although the store
held ~60K open-interest rows. The model is rebuilt from the stored rows at start.
"""

from __future__ import annotations

import math
from pathlib import Path

import purpleflea
from purpleflea.model import MarketSnapshot
from purpleflea.store.base import OpenInterest
from purpleflea.store.sqlite import SQLiteStore
from tests.server.conftest import T0, make_config, running_server

HOUR = 3_600_000


def _rows(market: str, mark: float, oi_usd: float, hours: int) -> list[OpenInterest]:
    """Hourly open interest growing while price wanders +/- 6 %."""
    rows = []
    for hour in range(hours):
        price = mark * (1 + 0.06 * math.sin(hour / 7.0))
        rows.append(
            OpenInterest(
                ts=T0 + hour * HOUR,
                market=market,
                open_interest_usd=oi_usd * (0.6 + 0.4 * hour / hours),
                mark_price=price,
            )
        )
    return rows


async def _stored(folder: Path, rows: list[OpenInterest]) -> None:
    store = SQLiteStore(folder / "purpleflea.sqlite")
    await store.append_open_interest(rows)
    await store.close()


async def test_heatmaps_are_rebuilt_from_stored_open_interest_at_start(tmp_path: Path) -> None:
    await _stored(
        tmp_path, _rows("BTC-PERP", 91_000.0, 4e9, 48) + _rows("ETH-PERP", 3_000.0, 1e9, 48)
    )
    async with running_server(make_config(tmp_path)) as running:
        client = purpleflea.LiquidationClient(api_key=running.key, base_url=running.url)
        heatmap = await client.heatmap("BTC-PERP", low=10_000, high=400_000)
        assert heatmap.mark_price == _rows("BTC-PERP", 91_000.0, 4e9, 48)[-1].mark_price
        # The open interest the rows held is there (a heatmap holds each side once).
        assert sum(heatmap.long_usd) > 0.5 * 4e9
        assert (await client.heatmap("ETH-PERP")).market == "ETH-PERP"
        # A live snapshot of the market replaces the stored total: not added to it.
        running.server.tracker.on_snapshot(
            MarketSnapshot(
                exchange="binance_usdm",
                symbol="BTCUSDT",
                market="BTC-PERP",
                ts=T0 + 48 * HOUR,
                mark_price=91_000.0,
                open_interest=1e9 / 91_000.0,
                open_interest_usd=1e9,
            )
        )
        after = await client.heatmap("BTC-PERP", low=10_000, high=400_000)
        assert sum(after.long_usd) < 1.2e9
