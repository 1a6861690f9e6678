"""An index a PostgreSQL store gains after it already holds events, built without holding
the writers.

``CREATE INDEX`` takes a SHARE lock on ``liquidations``: every append of every node waits for
the whole build. Made in the schema's transaction at a node's start, the partial index of big
events (what a stream's replay with a large ``min_usd`` walks, :mod:`purpleflea.store.replay`)
took 0.49 s per million stored events, during which a rolling upgrade's other nodes could not
append and their live streams went silent. So on a store that already holds more than
:data:`INLINE_ROWS` events it is built with ``CREATE INDEX CONCURRENTLY`` beside the appends
(:func:`build_concurrently`), and until it is valid the planner reads without it: the replay
gives the same answer, reading more rows. On a new or small store it is made in the schema's
transaction as before (:data:`CREATE_INLINE`: a few ms).

A concurrent build marks the index invalid while it runs, and leaves it invalid if it fails or
its connection goes (a node stopped mid-build). Only one node builds at a time (a session
advisory lock, :data:`_LOCK`); the one that gets the lock drops an invalid index (no other node
can be building it) and builds it again.
"""

from __future__ import annotations

from typing import Any

import psycopg

from purpleflea.store.sql import BIG_USD

#: Events a store may hold for the index to be made in the schema's transaction (about 50 ms
#: of build at 0.49 s per million).
INLINE_ROWS = 100_000

_NAME = "liquidations_big"
_COLUMNS = f"ON liquidations (seq, size_usd) WHERE size_usd >= {BIG_USD}"
CREATE_INLINE = f"CREATE INDEX IF NOT EXISTS {_NAME} {_COLUMNS}"
_CREATE_CONCURRENTLY = f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {_NAME} {_COLUMNS}"
_DROP_CONCURRENTLY = f"DROP INDEX CONCURRENTLY IF EXISTS {_NAME}"
# The index in the schema the connection uses: its validity, or no row when there is none.
_VALID = """
SELECT i.indisvalid FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace
"""
_MORE_THAN = "SELECT EXISTS (SELECT 1 FROM liquidations OFFSET %s)"

# Any constant the nodes agree on, apart from the schema's and the appends' locks.
_LOCK = 0x70_66_5F_69_64_78  # "pf_idx"


async def valid(connection: psycopg.AsyncConnection[Any]) -> bool:
    """The index exists and is valid (a concurrent build is done)."""
    row = await (await connection.execute(_VALID, (_NAME,))).fetchone()
    return row is not None and bool(row[0])


async def needs_concurrent_build(connection: psycopg.AsyncConnection[Any]) -> bool:
    """True when the index is missing or invalid and the store holds more than
    :data:`INLINE_ROWS` events; otherwise makes it here, in ``connection``'s transaction
    (the caller holds the schema lock), if it is missing."""
    row = await (await connection.execute(_VALID, (_NAME,))).fetchone()
    if row is not None and row[0]:
        return False
    big = await (await connection.execute(_MORE_THAN, (INLINE_ROWS,))).fetchone()
    if big is not None and big[0]:
        return True
    if row is None:
        await connection.execute(CREATE_INLINE)
        return False
    return True  # invalid: left by a concurrent build that did not finish


async def build_concurrently(connection: psycopg.AsyncConnection[Any]) -> bool:
    """Build the index beside the appends on ``connection`` (autocommit). Returns False when
    another node holds the build's lock (it is building it), True once the index is valid."""
    got = await (await connection.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK,))).fetchone()
    if got is None or not got[0]:
        return False
    try:
        if await valid(connection):
            return True
        # Invalid and nobody else building (we hold the lock): a build that did not finish.
        await connection.execute(_DROP_CONCURRENTLY)
        await connection.execute(_CREATE_CONCURRENTLY)
        return True
    finally:
        await connection.execute("SELECT pg_advisory_unlock(%s)", (_LOCK,))
