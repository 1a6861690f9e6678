"""A cold read on PostgreSQL for the benchmarks: the relation's blocks out of the server's
shared buffers and its files out of the OS page cache, then a fresh connection.

Shared buffers: :func:`evict_buffers` reads a scratch table a third larger than
``shared_buffers`` into them (``pg_prewarm(..., 'buffer')`` takes buffers by the ordinary
clock sweep, where a sequential scan would cycle through a small ring), and
:func:`buffered_blocks` counts the relation's blocks still there (``pg_buffercache``), so a
run shows that its cold read started with none. OS page cache: the relation's files under the
data directory (this process must be able to read them: root or the postgres user), evicted
and measured with :mod:`pagecache`. Both extensions are made in the benchmark's own database;
the scratch table evicts other databases' buffers too (the server has one pool).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg

import pagecache

_SCRATCH = "pf_bench_buffers_scratch"

# liquidations and every index on it: their file paths, relative to the data directory.
_FILES = """
SELECT current_setting('data_directory'), pg_relation_filepath(c.oid) FROM pg_class c
WHERE c.oid = 'liquidations'::regclass
   OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'liquidations'::regclass)
"""
_BUFFERED = """
SELECT count(*) FROM pg_buffercache b JOIN pg_class c ON b.relfilenode = pg_relation_filenode(c.oid)
WHERE b.reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND (c.oid = 'liquidations'::regclass
       OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'liquidations'::regclass))
"""


def prepare(connection: psycopg.Connection[Any]) -> None:
    """The extensions and the scratch table (a third more than ``shared_buffers``)."""
    connection.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
    connection.execute("CREATE EXTENSION IF NOT EXISTS pg_buffercache")
    row = connection.execute(
        "SELECT setting::bigint * 8192 FROM pg_settings WHERE name = 'shared_buffers'"
    ).fetchone()
    assert row is not None
    wanted = int(row[0]) * 4 // 3
    found = connection.execute(
        "SELECT coalesce(pg_table_size(to_regclass(%s)), 0)", (_SCRATCH,)
    ).fetchone()
    if found is not None and int(found[0]) >= wanted:
        return
    connection.execute(f"DROP TABLE IF EXISTS {_SCRATCH}")
    # ~1 KB a row: rows of wanted / 1000 fill about wanted bytes.
    connection.execute(
        f"CREATE TABLE {_SCRATCH} AS SELECT i, repeat('x', 1000) AS pad "
        f"FROM generate_series(1, {wanted // 1000 + 1}) AS i"
    )


def relation_files(connection: psycopg.Connection[Any]) -> list[Path]:
    """The files of ``liquidations`` and its indexes (every 1 GB segment, free space and
    visibility maps)."""
    paths = []
    for data, relative in connection.execute(_FILES).fetchall():
        main = Path(data) / relative
        pattern = re.compile(rf"{re.escape(main.name)}(\.\d+|_fsm|_vm)?")
        paths += [p for p in main.parent.iterdir() if pattern.fullmatch(p.name)]
    return paths


def evict_buffers(connection: psycopg.Connection[Any]) -> None:
    """Fill the shared buffers with the scratch table's blocks."""
    connection.execute(f"SELECT pg_prewarm('{_SCRATCH}', 'buffer')")


def buffered_blocks(connection: psycopg.Connection[Any]) -> int:
    """Blocks of ``liquidations`` and its indexes in the shared buffers now."""
    row = connection.execute(_BUFFERED).fetchone()
    return 0 if row is None else int(row[0])


def resident_share(paths: list[Path]) -> float:
    """The share of ``paths``' bytes in the OS page cache now."""
    sizes = [p.stat().st_size for p in paths]
    total = sum(sizes)
    if not total:
        return 0.0
    return (
        sum(pagecache.resident_share(p) * size for p, size in zip(paths, sizes, strict=True))
        / total
    )
