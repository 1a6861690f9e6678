"""The live server stores the open interest its engine was told: market totals, when moved."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path

from purpleflea.engine import CascadeEngine
from purpleflea.engine.heatmap_feed import HeatmapFeed
from purpleflea.model import MarketSnapshot
from purpleflea.server import app
from purpleflea.server.app import _engine_heatmaps
from purpleflea.server.oi_recorder import OpenInterestRecorder
from purpleflea.store.base import OpenInterest
from purpleflea.store.sqlite import SQLiteStore
from tests.server.conftest import make_config, running_server

M0 = 1_700_000_040_000  # a minute boundary


def _snapshot(ts: int, oi_usd: float, exchange: str = "binance_usdm") -> MarketSnapshot:
    return MarketSnapshot(
        exchange=exchange,
        symbol="BTCUSDT",
        market="BTC-PERP",
        ts=ts,
        mark_price=60_000.0,
        open_interest=oi_usd / 60_000.0,
        open_interest_usd=oi_usd,
    )


def _row(ts: int, usd: float) -> OpenInterest:
    return OpenInterest(ts=ts, market="BTC-PERP", open_interest_usd=usd, mark_price=60_000.0)


async def test_the_market_total_the_engine_applied_is_stored_when_it_moved(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    recorder = OpenInterestRecorder(store)
    feed = HeatmapFeed(fuel=CascadeEngine(), on_open_interest=recorder.note)
    for snapshot in (
        _snapshot(M0 + 1_000, 1e9),
        _snapshot(M0 + 40_000, 2e9),  # same listing, later: replaces
        _snapshot(M0 + 20_000, 9e9),  # older than the last applied: the engine ignores it
        _snapshot(M0 + 30_000, 3e9, "bybit"),
    ):
        feed.on_snapshot(snapshot)
    await recorder.flush()
    assert recorder.counters["oi_rows_written"] == 1
    # One row: the sum over the listings, at the latest snapshot's ts.
    assert await store.open_interest(0, 2**62) == [_row(M0 + 40_000, 5e9)]
    feed.on_snapshot(_snapshot(M0 + 61_000, 2.01e9))  # the total moved 0.2 %: not worth a row
    await recorder.flush()
    feed.on_snapshot(_snapshot(M0 + 121_000, 1.9e9))  # 2 % below the row: stored
    await recorder.close()
    assert recorder.counters["oi_rows_written"] == 2
    assert await store.open_interest(0, 2**62) == [
        _row(M0 + 40_000, 5e9),
        _row(M0 + 121_000, 4.9e9),
    ]
    await store.close()


async def test_each_simulated_minute_is_sampled_however_fast_the_snapshots_come(
    tmp_path: Path,
) -> None:
    # A simulator at 30x sends 30 minutes of snapshots per wall-clock minute: sampled once a
    # wall minute, the store kept one row of them, and a restart warmed its engine against
    # that one value (bench/warm_causes.py: 50 rows for 50 markets, the warmed engine
    # following 23 cascades the live one did not).
    store = SQLiteStore(tmp_path / "db.sqlite")
    recorder = OpenInterestRecorder(store)
    feed = HeatmapFeed(fuel=CascadeEngine(), on_open_interest=recorder.note)
    for minute in range(10):
        feed.on_snapshot(_snapshot(M0 + minute * 60_000 + 5_000, 1e9 * 1.02**minute))
    await recorder.close()
    rows = await store.open_interest(0, 2**62)
    assert [row.ts for row in rows] == [M0 + minute * 60_000 + 5_000 for minute in range(10)]
    await store.close()


async def test_a_retired_listing_leaves_the_stored_total_as_it_leaves_the_engines(
    tmp_path: Path,
) -> None:
    # The heatmap retires a listing with no snapshot for 24 h (an expired future) and the
    # engine drops its open interest; the recorder kept summing it, so every row after that
    # stored the perpetual plus the dead future: a restart's warm and a backtest sized BTC's
    # cascades against 1.5e9 where the live engine used 1e9.
    hour = 3_600_000
    store = SQLiteStore(tmp_path / "db.sqlite")
    engine = CascadeEngine()
    feed, recorder = _engine_heatmaps(store, engine)  # as the server has them
    assert recorder is not None
    feed.on_snapshot(_snapshot(M0, 5e8, "okx"))  # the future, never again
    for h in range(27):
        feed.on_snapshot(_snapshot(M0 + h * hour + 1_000, 1e9))
    await recorder.close()
    told = engine.export_state()["oi"]
    assert isinstance(told, dict)
    assert told["BTC-PERP"] == {"binance_usdm:BTCUSDT": 1e9}
    rows = await store.open_interest(0, 2**62)
    assert rows[-1] == _row(M0 + 26 * hour + 1_000, 1e9)
    await store.close()


class _BrokenStore(SQLiteStore):
    async def append_open_interest(self, rows: Sequence[OpenInterest]) -> None:
        raise OSError("disk full")


async def test_a_failed_write_is_counted_not_raised(tmp_path: Path) -> None:
    store = _BrokenStore(tmp_path / "db.sqlite")
    recorder = OpenInterestRecorder(store)
    recorder.note(_snapshot(M0, 1e9))
    await recorder.flush()  # no exception reaches the caller (the server's event loop)
    assert recorder.counters["oi_write_errors"] == 1
    assert recorder.counters["oi_rows_written"] == 0
    assert recorder.writes.failing  # health reads it; the outage is logged once, not per write
    await store.close()


async def test_the_server_stores_open_interest_from_its_snapshots(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    async with running_server(config) as running:
        running.server.tracker.on_snapshot(_snapshot(M0 + 5_000, 1e9))
        running.server.tracker.on_snapshot(_snapshot(M0 + 65_000, 1e9, "bybit"))
        counters = running.server.tracker.counters
    # Shutting down sampled what the recorder held and wrote it before the store closed: the
    # first minute's total (sampled as the snapshots crossed into the next) and the last.
    assert counters["oi_rows_written"] == 2
    store = SQLiteStore(config.db_path, read_only=True)
    try:
        assert await store.open_interest(0, 2**62) == [
            _row(M0 + 5_000, 1e9),
            _row(M0 + 65_000, 2e9),
        ]
    finally:
        await store.close()


class _FullThenFreedStore(SQLiteStore):
    """A disk that is full until the test frees it."""

    full = True

    async def append_open_interest(self, rows: Sequence[OpenInterest]) -> None:
        if self.full:
            raise OSError("database or disk is full")
        await super().append_open_interest(rows)


async def test_after_a_full_disk_has_room_the_held_rows_are_written_within_seconds(
    tmp_path: Path,
) -> None:
    """A full disk failed one open-interest write; the rows were dropped and the next try was
    the next minute's flush, so health said degraded and /v1/ready 503 for up to a minute after
    the disk had room (measured: 60 s on a tmpfs remounted larger)."""
    store = _FullThenFreedStore(tmp_path / "db.sqlite")
    recorder = OpenInterestRecorder(store)
    recorder.note(_snapshot(M0, 1e9))
    task = asyncio.create_task(recorder.run(interval_s=0.05))
    try:
        while not recorder.counters["oi_write_errors"]:
            await asyncio.sleep(0.01)
        assert recorder.writes.failing
        store.full = False
        deadline = asyncio.get_running_loop().time() + 60  # was 100 polls: 2 s and more
        while recorder.writes.failing and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        assert not recorder.writes.failing
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    # The row the failed write held is stored, though nothing new was sampled since.
    assert await store.open_interest(0, 2**62) == [_row(M0, 1e9)]
    await store.close()


async def test_rows_held_for_a_failing_store_are_bounded(tmp_path: Path) -> None:
    store = _BrokenStore(tmp_path / "db.sqlite")
    recorder = OpenInterestRecorder(store, batch=2)
    for minute in range(3):
        for exchange_market in ("BTC-PERP", "ETH-PERP"):
            recorder.sampler.note(
                MarketSnapshot(
                    exchange="bybit",
                    symbol=exchange_market,
                    market=exchange_market,
                    ts=M0 + minute * 60_000,
                    mark_price=1.0,
                    open_interest=1e9 * (minute + 1),
                    open_interest_usd=1e9 * (minute + 1),
                )
            )
        await recorder.flush()
    assert len(recorder._held) == 2  # one batch at most
    assert recorder.counters["oi_rows_dropped"] == 4
    await store.close()


HOUR = 3_600_000


async def test_a_retired_listing_leaves_the_stored_total_and_the_recorder(tmp_path: Path) -> None:
    # The heatmap retires a listing no snapshot reported for a day (an expired future, a
    # delisted contract) and tells the engine its open interest is 0, but not the recorder:
    # the stored total kept a delisted listing's last value for good (backtests sized the
    # market's cascades against it), and the recorder kept every market ever listed (60 days
    # of daily expiries: 61 markets, where the heatmap holds 5).
    store = SQLiteStore(tmp_path / "db.sqlite")
    feed, recorder = app._engine_heatmaps(store, CascadeEngine())
    assert recorder is not None
    try:
        feed.on_snapshot(_snapshot(M0, 4e9, exchange="bybit"))  # delisted after its first
        rows: list[OpenInterest] = []
        for day in range(60):
            for hour in range(24):
                ts = M0 + day * 24 * HOUR + hour * HOUR
                feed.on_snapshot(_snapshot(ts, 6e9))
                for expiry in range(day, day + 3):  # this day's future and the next two
                    future = f"BTC-{20260101 + expiry}"
                    feed.on_snapshot(
                        MarketSnapshot(
                            exchange="deribit",
                            symbol=future,
                            market=future,
                            ts=ts,
                            mark_price=60_000.0,
                            open_interest=10.0,
                            open_interest_usd=600_000.0,
                        )
                    )
                rows += [*recorder._due, *recorder.sampler.sample()]
                recorder._due = []
        assert len(recorder.sampler._markets) <= 5
        btc = [row for row in rows if row.market == "BTC-PERP"]
        assert btc[0].open_interest_usd == 10e9  # both listings
        assert btc[-1].open_interest_usd == 6e9  # Bybit's left with its retirement
        assert next(r.ts for r in btc if r.open_interest_usd == 6e9) == M0 + 25 * HOUR
        # An expired future's last row says it holds nothing, at the time it was retired.
        first = [row for row in rows if row.market == "BTC-20260101"]
        assert (first[-1].open_interest_usd, first[-1].ts) == (0.0, M0 + 48 * HOUR)
    finally:
        await store.close()
