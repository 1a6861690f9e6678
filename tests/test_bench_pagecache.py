"""bench/history.py's cold figures start from the disk: the database out of the OS page cache
(bench/pagecache.py), not only a fresh connection over a file the kernel still holds."""

from __future__ import annotations

import sys
from pathlib import Path

from purpleflea.store import Query
from purpleflea.store.sqlite import SQLiteStore
from tests.events import stored_event

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import history  # noqa: E402
import pagecache  # noqa: E402


def test_evict_drops_a_file_from_the_os_cache(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"x" * (4 << 20))
    pagecache.load([path])
    assert pagecache.resident_share(path) > 0.9
    pagecache.evict([path])
    assert pagecache.resident_share(path) < 0.05
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert pagecache.resident_share(empty) == 0.0


async def test_a_cold_query_reads_a_database_out_of_the_os_cache(tmp_path: Path) -> None:
    db = tmp_path / "cold.sqlite"
    store = SQLiteStore(db)
    await store.append([stored_event(seq) for seq in range(1, 5_001)])
    try:
        files = pagecache.sqlite_files(db)
        assert db in files
        for path in files:
            pagecache.load([path])
        assert pagecache.resident_share(db) > 0.9
        shares: list[float] = []

        async def work(fresh: SQLiteStore) -> None:
            shares.append(pagecache.resident_share(db))
            assert len((await fresh.query(Query(limit=5))).events) == 5

        cold = await history.cold_ms(db, work)
        # The fresh store's open reads a few pages (its last seq); the query starts cold.
        assert len(shares) == 1
        assert shares[0] < 0.05, shares
        assert cold.resident < 0.05  # the share the run reports
        assert cold.wall_ms > 0
    finally:
        await store.close()
