"""SQLite on a full disk: the caller sees SQLite's own error and the store works once space
returns. ``PRAGMA max_page_count`` caps the file where it stands, so SQLite fails the write
exactly as on a full disk (``SQLITE_FULL``, the transaction rolled back by SQLite itself)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from purpleflea.store.base import OpenInterest
from purpleflea.store.sqlite import SQLiteStore
from tests.events import T0, stored_event
from tests.store.test_store import _alert


def _fill(store: SQLiteStore) -> None:
    writer = store._writer
    pages = writer.execute("PRAGMA page_count").fetchone()[0]
    writer.execute(f"PRAGMA max_page_count = {pages}")


def _free(store: SQLiteStore) -> None:
    store._writer.execute("PRAGMA max_page_count = 1073741823")


async def test_a_full_disk_raises_sqlites_error_not_a_failed_rollback(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    await store.append([stored_event(seq) for seq in range(1, 10)])
    _fill(store)
    big = [stored_event(seq) for seq in range(10, 3_000)]
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
        await store.append(big)
    alerts = [_alert(seq, f"c{seq}", "started") for seq in range(3_000, 3_400)]
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
        await store.append_cascades(alerts)
    rows = [
        OpenInterest(ts=T0 + n * 60_000, market=f"M{n}-PERP", open_interest_usd=1e6)
        for n in range(3_000)
    ]
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
        await store.append_open_interest(rows)
    assert await store.last_seq() == 9  # nothing half-written counts
    _free(store)
    assert len(await store.append(big)) == len(big)
    await store.append_cascades(alerts)
    await store.append_open_interest(rows)
    assert await store.last_seq() == 3_399
    assert [e.seq for e in await store.since(0, 5_000)] == list(range(1, 3_000))
    await store.close()
