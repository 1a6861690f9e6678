"""SQLite's bulk load (the simulator's history): what it stores, and what an interruption leaves."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from purpleflea.store import OpenInterest
from purpleflea.store.bulk import EventColumns, Venue
from purpleflea.store.sqlite import SQLiteBulkLoad, SQLiteStore
from tests.events import T0

VENUES = (
    Venue("binance_usdm", "BTCUSDT", "BTC-PERP", "snapshot"),
    # A second listing of the same market on the same exchange: they share rollup cells.
    Venue("binance_usdm", "BTCUSDC", "BTC-PERP", "snapshot"),
    Venue("bybit", "BTCUSDT", "BTC-PERP", "complete"),
    Venue("okx", "ETH-USDT-SWAP", "ETH-PERP", "snapshot"),
    Venue("hyperliquid", "SOL", "SOL-PERP", "complete"),
)

TABLES = {
    "liquidations": "SELECT * FROM liquidations ORDER BY seq",
    "rollup_1m": "SELECT * FROM rollup_1m ORDER BY market, minute, exchange, side",
    "rollup_1h": "SELECT * FROM rollup_1h ORDER BY market, hour, exchange, side",
    "open_interest": "SELECT * FROM open_interest ORDER BY minute, market",
    "coverage_factor": "SELECT * FROM coverage_factor ORDER BY 1, 2, 3, 4",
    "schema": "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name",
}


def _batch(rng: np.random.Generator, first_seq: int, size: int, start_ms: int) -> EventColumns:
    """``size`` events over two hours from ``start_ms``, times not in order (a cell's floats
    are then summed in an order the loop and numpy must agree on), sizes over six decades
    (a different order of addition would change the sums' last bits)."""
    seq = np.arange(first_seq, first_seq + size, dtype=np.int64)
    ts = start_ms + rng.integers(0, 2 * 3_600_000, size)
    return EventColumns(
        seq=seq,
        ids=[f"bulk-{n}" for n in seq.tolist()],
        venue=rng.integers(0, len(VENUES), size),
        venues=VENUES,
        long=rng.random(size) < 0.5,
        price=np.round(rng.lognormal(3, 2, size), 4),
        quantity=rng.lognormal(0, 2, size),
        ts=ts,
        received_at=ts + 40 + seq % 160,
    )


def _batches() -> list[EventColumns]:
    rng = np.random.default_rng(7)
    # Consecutive batches overlap in time: cells that are already stored take upserts.
    return [_batch(rng, 1 + i * 3_000, 3_000, T0 + i * 3_000_000) for i in range(4)]


def _open_interest(batch: int) -> list[OpenInterest]:
    return [
        OpenInterest(ts=T0 + batch * 60_000 + k * 7_000, market=m, open_interest_usd=1e6 * k)
        for k in range(12)
        for m in ("BTC-PERP", "ETH-PERP")
    ]


def dump_tables(path: Path) -> dict[str, list[tuple[object, ...]]]:
    connection = sqlite3.connect(path)
    try:
        return {table: connection.execute(sql).fetchall() for table, sql in TABLES.items()}
    finally:
        connection.close()


async def test_a_bulk_load_stores_exactly_what_appending_the_same_batches_stores(
    tmp_path: Path,
) -> None:
    batches = _batches()
    appended = SQLiteStore(tmp_path / "appended.sqlite")
    try:
        for i, batch in enumerate(batches):
            await appended.append(batch.events())
            await appended.append_open_interest(_open_interest(i))
    finally:
        await appended.close()
    expected = dump_tables(tmp_path / "appended.sqlite")
    # The second store's SQLite takes 999 parameters a statement (as before 3.32): shorter
    # multi-row statements, the same rows.
    for name, parameters in (("bulk", None), ("bulk999", 999)):
        path = tmp_path / f"{name}.sqlite"
        bulk = SQLiteStore(path)
        if parameters is not None:
            bulk._writer.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, parameters)
        try:
            with bulk.bulk_load() as loader:
                assert loader is not None
                # Nothing else has the file open: the load goes through a rollback journal.
                assert bulk._writer.execute("PRAGMA journal_mode").fetchone() == ("delete",)
                for i, batch in enumerate(batches):
                    loader.append(batch)
                    loader.append_open_interest(_open_interest(i))
            assert await bulk.last_seq() == 12_000
            # Back to the connection's usual settings.
            assert bulk._writer.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert bulk._writer.execute("PRAGMA threads").fetchone() == (0,)
            with pytest.raises(RuntimeError, match="bulk load is over"):
                loader.append(batches[0])
            # Not empty any more: the next load appends the usual way.
            with bulk.bulk_load() as again:
                assert again is None
        finally:
            await bulk.close()
        found = dump_tables(path)
        assert len(found["liquidations"]) == 12_000
        # Shared cells: fewer rollup rows than events, cells summed over both BTC listings.
        assert len(found["rollup_1m"]) < 12_000
        for table in TABLES:
            if table.startswith("rollup_"):
                # Exactly but for ``seconds`` (the last column): an append counts a second once
                # however its events were batched, a bulk load once per batch, so a second
                # split between two batches counts twice there, never less (docs/coverage.md).
                assert [r[:-1] for r in found[table]] == [r[:-1] for r in expected[table]]
                pairs = zip(found[table], expected[table], strict=True)
                assert all(bulk_row[-1] >= row[-1] for bulk_row, row in pairs), (name, table)
            else:
                assert found[table] == expected[table], (name, table)


def _indexes(store: SQLiteStore) -> set[str]:
    rows = store._writer.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'liquidations'"
    )
    return {row[0] for row in rows}


async def test_a_bulk_load_builds_only_the_per_market_indexes_at_its_end(tmp_path: Path) -> None:
    """The indexes a load appends to at one end (seq- or ts-led), at the end of a few groups
    (exchange, side) or rarely (the big events') are kept up to date through the load; only
    the per-market ones, which it would update at 275 places, are dropped and built at its end
    (less to build after the simulation's last batch)."""
    store = SQLiteStore(tmp_path / "kept.sqlite")
    every = _indexes(store)
    try:
        with store.bulk_load() as loader:
            assert loader is not None
            during = _indexes(store)
            for i, batch in enumerate(_batches()):
                loader.append(batch)
                loader.append_open_interest(_open_interest(i))
            # Queries inside the load see the rows through the kept indexes.
            by_ts = store._writer.execute(
                "SELECT count(*) FROM liquidations INDEXED BY liquidations_ts WHERE ts >= 0"
            ).fetchone()
            assert by_ts == (12_000,)
        assert during == every - {"liquidations_market_seq", "liquidations_market_side_seq"}
        assert _indexes(store) == every
        # Every index holds exactly the table's rows (kept row by row or built at the end).
        assert store._writer.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        big = "size_usd >= 100000"
        (expected,) = store._writer.execute(f"SELECT count(*) FROM liquidations WHERE {big}")
        assert expected[0] > 0  # the partial indexes hold rows
        for index in sorted(every - {"sqlite_autoindex_liquidations_1"}):
            counted = store._writer.execute(
                f"SELECT count(*) FROM liquidations INDEXED BY {index} WHERE {big} AND market > ''"
            ).fetchone()
            assert counted == expected, index
    finally:
        await store.close()


async def test_a_bulk_load_that_fails_leaves_the_empty_store_it_found(tmp_path: Path) -> None:
    path = tmp_path / "bulk.sqlite"
    store = SQLiteStore(path)
    schema = dump_tables(path)["schema"]

    loaders: list[SQLiteBulkLoad] = []

    def load(*batches: EventColumns, then: Exception | None = None) -> None:
        with store.bulk_load() as loader:
            assert loader is not None
            loaders.append(loader)
            for batch in batches:
                loader.append(batch)
            if then is not None:
                raise then

    try:
        first = _batches()[0]
        with pytest.raises(RuntimeError, match="loader broke"):
            load(first, then=RuntimeError("loader broke"))
        assert store._writer.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert await store.last_seq() == 0
        with pytest.raises(RuntimeError, match="bulk load is over"):
            loaders[0].append(first)  # not outside its transaction, unindexed
        # A repeated id fails the load loudly rather than being skipped.
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE constraint failed"):
            load(first, first)
    finally:
        await store.close()
    after = dump_tables(path)
    assert after["schema"] == schema
    assert not any(after[table] for table in ("liquidations", "rollup_1m", "rollup_1h"))


_KILLED = """
import os, signal, sys
from purpleflea.store.sqlite import SQLiteBulkLoad, SQLiteStore
from tests.store.test_bulk_load import _batches

store = SQLiteStore(sys.argv[1])
# A small page cache: the batches spill into the file as a 30-day load's do.
store._writer.execute("PRAGMA cache_size=50")
with store.bulk_load() as loader:
    for batch in _batches()[:3]:
        loader.append(batch)
    os.kill(os.getpid(), signal.SIGKILL)
"""


async def test_a_bulk_load_killed_midway_is_rolled_back_at_the_next_open(tmp_path: Path) -> None:
    path = tmp_path / "killed.sqlite"
    SQLiteStore(path)._writer.close()  # an empty store, as `purpleflea sim` finds it
    schema = dump_tables(path)["schema"]
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED, str(path)], cwd=Path(__file__).parents[2], check=False
    )
    assert killed.returncode == -9
    # The kill left the load's rollback journal behind, with the batches in the file.
    assert Path(f"{path}-journal").exists()
    assert path.stat().st_size > 500_000
    reopened = SQLiteStore(path)
    try:
        assert await reopened.last_seq() == 0
        assert reopened._writer.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        await reopened.close()
    after = dump_tables(path)
    assert after["schema"] == schema  # the indexes the load had dropped are back
    assert not any(after[table] for table in ("liquidations", "rollup_1m", "rollup_1h"))


async def test_a_bulk_load_beside_an_open_reader_stays_in_wal_and_all_or_nothing(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "read.sqlite")
    batches = _batches()

    def load(then: Exception | None = None) -> None:
        with store.bulk_load() as loader:
            assert loader is not None
            # A reader's connection is open: SQLite keeps the file in WAL mode.
            assert store._writer.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            for batch in batches:
                loader.append(batch)
            if then is not None:
                raise then

    try:
        assert await store.since(0) == []  # opens a reader connection, kept by its thread
        with pytest.raises(RuntimeError, match="loader broke"):
            load(RuntimeError("loader broke"))
        assert await store.since(0) == []
        load()
        assert len(await store.since(0, limit=20_000)) == 12_000
    finally:
        await store.close()
