"""The coverage store's contract, run against both backends: SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import psycopg
import pytest

from purpleflea.ingest.uptime import HOUR_MS, Gap, HourRow
from purpleflea.store.coverage import CoverageStore, open_coverage_store
from purpleflea.store.sidecar import SQLiteStatements
from purpleflea.store.sidecar_postgres import PostgresStatements
from tests.services import ensure_postgres

H = 1_760_000_000_000 - 1_760_000_000_000 % HOUR_MS


async def _empty_postgres() -> str:
    dsn = ensure_postgres()
    connection = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    async with connection:
        await connection.execute("DROP TABLE IF EXISTS coverage_hours, coverage_gaps")
    return dsn


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CoverageStore]:
    if request.param == "sqlite":
        found = open_coverage_store(f"sqlite://{tmp_path / 'history.sqlite'}")
        assert isinstance(found.backend, SQLiteStatements)
    else:
        found = open_coverage_store(await _empty_postgres())
        assert isinstance(found.backend, PostgresStatements)
    yield found
    await found.close()


def _hour(exchange: str, hour: int, up: int, watched: int, **pressure: int) -> HourRow:
    return HourRow(exchange=exchange, hour_ms=hour, up_ms=up, watched_ms=watched, **pressure)


async def test_hour_deltas_add_up_and_the_symbol_count_keeps_the_larger(
    store: CoverageStore,
) -> None:
    await store.record(
        [
            _hour("binance_usdm", H, 1_000, 2_000, symbol_seconds=5, symbols=3),
            _hour("bybit", H, 2_000, 2_000),
        ],
        [],
    )
    await store.record([_hour("binance_usdm", H, 500, 500, symbol_seconds=2, symbols=2)], [])
    await store.record(
        [_hour("binance_usdm", H + HOUR_MS, 10, 10, symbol_seconds=1, symbols=1)], []
    )
    rows = await store.hours([], H, H + 2 * HOUR_MS, 100)
    assert rows == [
        _hour("binance_usdm", H, 1_500, 2_500, symbol_seconds=7, symbols=3),
        _hour("binance_usdm", H + HOUR_MS, 10, 10, symbol_seconds=1, symbols=1),
        _hour("bybit", H, 2_000, 2_000),
    ]
    assert await store.hours(["bybit"], H, H + 1, 100) == [_hour("bybit", H, 2_000, 2_000)]
    assert await store.hours([], H + 1, H + HOUR_MS, 100) == []


async def test_gaps_upsert_by_id_and_are_found_by_overlap(store: CoverageStore) -> None:
    opened = Gap(id="okx:1", exchange="okx", connection="okx", start_ms=H + 1_000, end_ms=None,
                 reason="silent")  # fmt: skip
    other = Gap(id="bybit_linear:5", exchange="bybit", connection="bybit_linear",
                start_ms=H + 5_000, end_ms=H + 6_000, reason="closed", repair="open",
                note="no REST history: websocket only")  # fmt: skip
    await store.record([], [opened, other])
    # Still open: it overlaps any later window.
    assert await store.gaps(["okx"], H + 50_000, H + 60_000, 10) == [opened]
    closed = msgspec.structs.replace(opened, end_ms=H + 3_000, repair="repaired", repaired_events=4)
    await store.record([], [closed])
    assert await store.gaps([], H, H + 10_000, 10) == [closed, other]
    assert await store.gaps([], H + 3_001, H + 5_000, 10) == []
    assert await store.gaps([], H, H + 10_000, 1) == [closed]
