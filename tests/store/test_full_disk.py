"""SQLite on a full disk: the caller sees SQLite's own error and the store works once space
returns. ``PRAGMA max_page_count`` caps the file where it stands, so SQLite fails the write
exactly as on a full disk (``SQLITE_FULL``, the transaction rolled back by SQLite itself).
And its file removed under it: the writes fail instead of going into a file with no name."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import msgspec
import pytest

from purpleflea.ingest.uptime import HourRow
from purpleflea.server.keys import SQLiteKeyStore
from purpleflea.store.accounts import open_account_store
from purpleflea.store.base import OpenInterest
from purpleflea.store.coverage import open_coverage_store
from purpleflea.store.file_guard import StoreFileGone
from purpleflea.store.sqlite import SQLiteStore
from purpleflea.store.webhooks import Webhook, open_webhook_store
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


async def test_a_removed_folder_fails_the_writes_and_names_the_open_copy(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    store = SQLiteStore(folder / "purpleflea.sqlite")
    await store.append([stored_event(seq) for seq in range(1, 10)])
    shutil.rmtree(folder)  # SQLite would go on writing into the unnamed file, lost at exit
    with pytest.raises(StoreFileGone, match="removed or replaced") as failed:
        await store.append([stored_event(10)])
    with pytest.raises(StoreFileGone):
        await store.append_cascades([_alert(10, "c10", "started")])
    with pytest.raises(StoreFileGone):
        await store.append_open_interest(
            [OpenInterest(ts=T0, market="BTC-PERP", open_interest_usd=1e6)]
        )
    assert await store.last_seq() == 9
    # What the error names is the store as it was: copied back, it opens with every event.
    copies = [Path(word.strip(",;")) for word in str(failed.value).split() if "/fd/" in word]
    assert len(copies) == 2, failed.value  # the file and its -wal
    folder.mkdir()
    for copy in copies:
        wal = "-wal" if os.readlink(copy).endswith("-wal (deleted)") else ""
        shutil.copyfile(copy, folder / f"purpleflea.sqlite{wal}")
    await store.close()
    again = SQLiteStore(folder / "purpleflea.sqlite")
    try:
        assert [event.seq for event in await again.since(0)] == list(range(1, 10))
        assert len(await again.append([stored_event(10)])) == 1
    finally:
        await again.close()


async def test_a_file_put_in_its_place_is_not_written_to(tmp_path: Path) -> None:
    path = tmp_path / "purpleflea.sqlite"
    store = SQLiteStore(path)
    await store.append([stored_event(1)])
    path.rename(tmp_path / "moved.sqlite")
    path.write_bytes(b"")  # say, a restore from a backup begun under the running server
    with pytest.raises(StoreFileGone, match="removed or replaced"):
        await store.append([stored_event(2)])
    await store.close()


async def test_the_stores_beside_the_history_refuse_writes_into_a_removed_folder(
    tmp_path: Path,
) -> None:
    """Coverage, webhooks, sampled accounts (in the history's file) and API keys (their own
    file) wrote on into the unnamed files, silently: lost at exit."""
    folder = tmp_path / "data"
    url = str(folder / "purpleflea.sqlite")
    coverage = open_coverage_store(url)
    webhooks = open_webhook_store(url)
    accounts = open_account_store(url)
    keys = SQLiteKeyStore(folder / "keys.sqlite")
    hook = Webhook(
        id="w1", account="a", url="https://example.com/h", secret="s", filters={}, created_at=T0
    )
    hour = HourRow(exchange="bybit", hour_ms=T0 // 3_600_000 * 3_600_000, up_ms=1, watched_ms=1)
    try:
        await coverage.record([hour], [])
        assert await webhooks.add(hook, per_account=10) is None
        await accounts.add("hyperliquid", ["0xa"], T0)
        keys.create("a")
        shutil.rmtree(folder)
        with pytest.raises(StoreFileGone, match="removed or replaced"):
            await coverage.record([hour], [])
        with pytest.raises(StoreFileGone, match="removed or replaced"):
            await webhooks.add(msgspec.structs.replace(hook, id="w2"), per_account=10)
        with pytest.raises(StoreFileGone, match="removed or replaced"):
            await accounts.add("hyperliquid", ["0xb"], T0)
        with pytest.raises(StoreFileGone, match=r"key store .*keys\.sqlite was removed"):
            keys.create("b")
        # Reads of the open files go on.
        assert len(await coverage.hours([], 0, 2**62, 10)) == 1
        assert await accounts.recent("hyperliquid", 10) == ["0xa"]
        assert keys.count() == 1
    finally:
        await coverage.close()
        await webhooks.close()
        await accounts.close()
        keys.close()
