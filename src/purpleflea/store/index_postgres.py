"""Indexes a PostgreSQL store gains after it already holds events, built without holding
the writers: the partial index of big events, the (market, side, seq) index and the partial
index of big events by market (:data:`INDEXES`).

``CREATE INDEX`` takes a SHARE lock on ``liquidations``: every append of every node waits for
the whole build. Made in the schema's transaction at a node's start, the partial index of big
events (what a stream's replay with a large ``min_usd`` walks, :mod:`purpleflea.store.replay`)
took 0.49 s per million stored events, during which a rolling upgrade's other nodes could not
append and their live streams went silent. So on a store that already holds more than
:data:`INLINE_ROWS` events it is built with ``CREATE INDEX CONCURRENTLY`` beside the appends
(:func:`build_concurrently`), and until it is valid the planner reads without it: the replay
gives the same answer, reading more rows. On a new or small store it is made in the schema's
transaction as before (:func:`create_inline`: a few ms).

The (market, side, seq) index is what a stream's replay of one side of a few markets walks,
as on SQLite (``liquidations_market_side_seq``): without it PostgreSQL walked both sides of
every market asked for (``bench/replay_filtered.py --postgres``: 193 pages for one side of
two markets where SQLite read 88). It is made the same way as the index of big events, and
so is the index of big events by market (``liquidations_big_market``, as on SQLite): what a
history page of a market with a big ``min_usd`` walks (:func:`purpleflea.store.sql.history_page`;
until it is valid the page walks the market's index and checks each row's size).

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
#: Each late index's name and what it indexes, in the order they are built.
INDEXES = {
    _NAME: f"ON liquidations (seq, size_usd) WHERE size_usd >= {BIG_USD}",
    "liquidations_market_side_seq": "ON liquidations (market, side, seq)",
    # A market's page with a big min_usd (store/sql.py _postgres_arm), as SQLite's.
    "liquidations_big_market": (
        f"ON liquidations (market, seq, size_usd) WHERE size_usd >= {BIG_USD}"
    ),
}


def create_inline(name: str) -> str:
    """The statement making index ``name`` in a transaction (a new or small store)."""
    return f"CREATE INDEX IF NOT EXISTS {name} {INDEXES[name]}"


# The index in the schema the connection uses: its validity, or no row when there is none.
_VALID = """
SELECT i.indisvalid FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace
"""
_MORE_THAN = "SELECT EXISTS (SELECT 1 FROM liquidations OFFSET %s)"

# Any constant the nodes agree on, apart from the schema's and the appends' locks.
_LOCK = 0x70_66_5F_69_64_78  # "pf_idx"


async def valid(connection: psycopg.AsyncConnection[Any], name: str = _NAME) -> bool:
    """The index ``name`` exists and is valid (a concurrent build is done)."""
    row = await (await connection.execute(_VALID, (name,))).fetchone()
    return row is not None and bool(row[0])


async def needs_concurrent_build(connection: psycopg.AsyncConnection[Any]) -> bool:
    """True when an index of :data:`INDEXES` is missing or invalid and the store holds more
    than :data:`INLINE_ROWS` events; otherwise makes the missing ones here, in
    ``connection``'s transaction (the caller holds the schema lock)."""
    found = {name: await (await connection.execute(_VALID, (name,))).fetchone() for name in INDEXES}
    wanted = [name for name, row in found.items() if row is None or not row[0]]
    if not wanted:
        return False
    big = await (await connection.execute(_MORE_THAN, (INLINE_ROWS,))).fetchone()
    if big is not None and big[0]:
        return True
    for name in wanted:
        if found[name] is None:
            await connection.execute(create_inline(name))
    # One left invalid by a concurrent build that did not finish is built again beside.
    return any(found[name] is not None for name in wanted)


async def build_concurrently(connection: psycopg.AsyncConnection[Any]) -> bool:
    """Build the indexes beside the appends on ``connection`` (autocommit). Returns False when
    another node holds the build's lock (it is building them), True once all are valid."""
    got = await (await connection.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK,))).fetchone()
    if got is None or not got[0]:
        return False
    try:
        for name, columns in INDEXES.items():
            if await valid(connection, name):
                continue
            # Invalid or missing, and nobody else building (we hold the lock): a build that
            # did not finish is dropped first.
            await connection.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            await connection.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} {columns}")
        return True
    finally:
        await connection.execute("SELECT pg_advisory_unlock(%s)", (_LOCK,))
