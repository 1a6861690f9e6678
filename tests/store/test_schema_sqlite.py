"""A SQLite store carries the schema version its release wrote (``PRAGMA user_version``); a
release refuses a store a newer one wrote instead of writing rows it would misread."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from purpleflea.store.base import SCHEMA_VERSION, StoreTooNew
from purpleflea.store.sqlite import SQLiteStore
from tests.events import stored_event


async def test_a_store_a_newer_release_wrote_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "purpleflea.sqlite"
    store = SQLiteStore(path)
    await store.append([stored_event(1)])
    await store.close()
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    for read_only in (False, True):
        with pytest.raises(StoreTooNew, match=f"store schema {SCHEMA_VERSION + 1}; this release"):
            SQLiteStore(path, read_only=read_only)
