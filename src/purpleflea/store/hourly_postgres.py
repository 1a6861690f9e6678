"""The hourly rollup of the PostgreSQL store: ``rollup_1h``, the hourly sums of ``rollup_1m``.

Aggregates of hourly and daily buckets read their whole hours from it, as on SQLite (see
:mod:`purpleflea.store.aggregate`), so it must never disagree with the minute rollups. It is
kept by triggers on ``rollup_1m``, not by the code that appends: every statement that changes
the minute rollups changes the hourly ones by the same amounts, in the same transaction, so a
node of an older release, which knows nothing of ``rollup_1h`` during a rolling upgrade and
appends minute rollups only, keeps it all the same (late events in old hours too).

**Filling a store an older release wrote, without stopping the writers.** The first node of
this version to open it (under the schema's advisory lock, so nodes starting together do this
once) makes the triggers, empties ``rollup_1h`` and records the hours that hold minutes,
``[low, high)``, as pending (the one row of ``rollup_1h_pending``): one short transaction that
holds the writers out (:data:`_LOCK`). Then every node of this version that has the store open
fills the pending hours, a chunk at a time, newest first (:func:`fill_hourly`): a chunk is one
transaction that takes the same lock, sets each of its hours to the full sum of the hour's
minutes and moves ``high`` down past it; the last chunk deletes the row. Why each hour ends
exact whatever is written meanwhile:

- Every statement that changes ``rollup_1m`` holds ROW EXCLUSIVE on it until its transaction
  ends, which the lock (SHARE ROW EXCLUSIVE) conflicts with: it either committed before the
  triggers were made (the lock waited for it) or ran them, in its own transaction.
- So an hour's row holds what the statements committed since the triggers changed in its minutes
  (the rows were emptied in the triggers' transaction). A chunk reads the minutes and writes
  their sums under the lock: no change to the minutes commits between its read and its commit,
  so it writes each hour's minute sum as of its commit. What the triggers added before the chunk
  is replaced (the sum has it); what commits after (new minutes, late events landing in old
  hours, deletes) the triggers add on top. An hour outside ``[low, high)`` had no minute when
  the triggers were made: its row holds every change ever made to its minutes, which is their
  sum, from the start. (Counts and seconds exactly; dollar sums up to floating-point rounding,
  added in another order.)
- Setting an hour to its minutes' sum under the lock is right whenever and however often it is
  done, and it is done once: the lock conflicts with itself and a chunk takes it before it reads
  the marker, which it moves in the same transaction. Two nodes filling at once take alternate
  chunks; a node that stops (or dies mid-chunk: its transaction rolls back, the marker with it)
  leaves the rest to the next node that opens the store, or to the others.
- A node reads ``rollup_1h`` only once nothing is pending (the row gone, which stays so: only a
  node making the triggers again writes it); until then its hourly and daily aggregates read the
  minute rollups, as the older release did (:meth:`PostgresStore.aggregate`).

An append waits for at most one chunk (each sized to hold the lock :data:`CHUNK_S`), not for the
whole fill, which held every writer before this version: on 1.73M minute rows under load, the
longest append wait 0.17-0.39 s instead of 14.6-18.7 s (bench/hourly_postgres.py --backfill; the
fill itself 17-20 s). A chunk that cannot get the lock within half a second (a writer's
transaction left open, a VACUUM) gives up and tries again :data:`LOCK_RETRY_S` later, so the
writers never queue for long behind a chunk that is itself waiting. Each later append pays the
triggers: ~1 ms on a 50-event batch (4.0 -> 5.0 ms).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg

from purpleflea.engine.coverage import HOUR_MS
from purpleflea.store import schema_postgres

log = logging.getLogger("purpleflea.store")

_TABLE = """
CREATE TABLE IF NOT EXISTS rollup_1h (
    hour bigint NOT NULL,
    market text NOT NULL,
    exchange text NOT NULL,
    side text NOT NULL,
    count bigint NOT NULL,
    size_usd float8 NOT NULL,
    seconds bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (market, hour, exchange, side)
);
CREATE INDEX IF NOT EXISTS rollup_1h_hour ON rollup_1h (hour);
"""

# What a statement changed in rollup_1m, as signed minute rows: +new, -old.
_NEW = "SELECT minute, market, exchange, side, count, size_usd, seconds FROM new_rows"
_OLD = (
    "SELECT minute, market, exchange, side, -count AS count, -size_usd AS size_usd, "
    "-seconds AS seconds FROM old_rows"
)
# Those changes summed per hour and added to it. Keys in order: two writers lock hours alike.
_ADD = """
        INSERT INTO rollup_1h AS h (hour, market, exchange, side, count, size_usd, seconds)
        SELECT (minute / 3600000) * 3600000, market, exchange, side, sum(count)::bigint,
            sum(size_usd), sum(seconds)::bigint
        FROM ({rows}) AS changed
        GROUP BY 1, 2, 3, 4 ORDER BY 2, 1, 3, 4
        ON CONFLICT (market, hour, exchange, side) DO UPDATE SET
            count = h.count + excluded.count,
            size_usd = h.size_usd + excluded.size_usd,
            seconds = h.seconds + excluded.seconds;"""
# A deleted minute row may leave its hour with no minute at all: the hour goes too (a read of
# the minutes would have no bucket for it).
_DROP_EMPTY = """
        DELETE FROM rollup_1h AS h USING (
            SELECT DISTINCT (minute / 3600000) * 3600000 AS hour, market, exchange, side
            FROM old_rows
        ) AS gone
        WHERE (h.market, h.hour, h.exchange, h.side)
            = (gone.market, gone.hour, gone.exchange, gone.side)
        AND NOT EXISTS (
            SELECT 1 FROM rollup_1m AS m WHERE m.market = h.market AND m.minute >= h.hour
            AND m.minute < h.hour + 3600000 AND m.exchange = h.exchange AND m.side = h.side
        );"""
# One function for the four triggers; plpgsql plans a branch only when it runs, so each branch
# names only the transition tables its trigger has.
_FUNCTION = f"""
CREATE OR REPLACE FUNCTION purpleflea_rollup_1h() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN{_ADD.format(rows=_NEW)}
    ELSIF TG_OP = 'UPDATE' THEN{_ADD.format(rows=f"{_NEW} UNION ALL {_OLD}")}
    ELSIF TG_OP = 'DELETE' THEN{_ADD.format(rows=_OLD)}{_DROP_EMPTY}
    ELSE
        DELETE FROM rollup_1h;
    END IF;
    RETURN NULL;
END
$$
"""
#: The triggers by name and definition. A change to :data:`_FUNCTION` must rename them: a store
#: whose triggers are not all these is set up again (backfilled) on open.
TRIGGERS = {
    "rollup_1h_insert": "AFTER INSERT ON rollup_1m REFERENCING NEW TABLE AS new_rows",
    "rollup_1h_update": (
        "AFTER UPDATE ON rollup_1m REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    ),
    "rollup_1h_delete": "AFTER DELETE ON rollup_1m REFERENCING OLD TABLE AS old_rows",
    "rollup_1h_truncate": "AFTER TRUNCATE ON rollup_1m",
}
_PRESENT = (
    "SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass('rollup_1m') "
    "AND tgname = ANY(%s) AND tgenabled <> 'D'"
)
# The hours ``low <= hour < high`` hold only what the triggers added, not yet their minutes
# from before (one row, or none: nothing pending).
_PENDING_TABLE = """
CREATE TABLE IF NOT EXISTS rollup_1h_pending (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    low bigint NOT NULL,
    high bigint NOT NULL
)"""
#: What is still pending: no row once the hourly rollup is whole.
PENDING = "SELECT low, high FROM rollup_1h_pending"
# Every hour holding a minute now (min and max read the minute index's ends).
_PEND_ALL = f"""
INSERT INTO rollup_1h_pending (low, high)
SELECT (oldest / {HOUR_MS}) * {HOUR_MS}, (newest / {HOUR_MS}) * {HOUR_MS} + {HOUR_MS}
FROM (SELECT min(minute) AS oldest, max(minute) AS newest FROM rollup_1m) AS span
WHERE oldest IS NOT NULL"""
# Keeps every rollup_1m writer (ROW EXCLUSIVE) out and lets readers on; conflicts with itself.
_LOCK = "LOCK TABLE rollup_1m IN SHARE ROW EXCLUSIVE MODE"
#: Seconds a chunk aims to hold the writers out: its hours grow or shrink toward it.
CHUNK_S = 0.05
#: Seconds before a chunk that did not get the lock in time tries again.
LOCK_RETRY_S = 1.0
# One chunk: up to ``hours`` pending hours, the newest, set to their minutes' sums under the
# lock, and the marker moved past them; ``filled`` the hours done (NULL: none was pending),
# ``held`` the seconds the lock was held. One call, one round trip: the writers wait for the
# work only. The lock is waited for half a second at most (writers arriving meanwhile queue
# behind the request), then the call fails with lock_not_available.
_FILL_FUNCTION = f"""
CREATE OR REPLACE FUNCTION purpleflea_rollup_1h_fill(hours bigint, OUT filled bigint,
    OUT held float8) LANGUAGE plpgsql AS $$
DECLARE
    span record;
    bottom bigint;
    locked timestamptz;
BEGIN
    PERFORM set_config('lock_timeout', '500ms', true);
    {_LOCK};
    locked := clock_timestamp();
    SELECT low, high INTO span FROM rollup_1h_pending;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    bottom := greatest(span.low, span.high - hours * {HOUR_MS});
    DELETE FROM rollup_1h WHERE hour >= bottom AND hour < span.high;
    INSERT INTO rollup_1h (hour, market, exchange, side, count, size_usd, seconds)
    SELECT (minute / {HOUR_MS}) * {HOUR_MS}, market, exchange, side, sum(count)::bigint,
        sum(size_usd), sum(seconds)::bigint
    FROM rollup_1m WHERE minute >= bottom AND minute < span.high GROUP BY 1, 2, 3, 4;
    IF bottom = span.low THEN
        DELETE FROM rollup_1h_pending;
    ELSE
        UPDATE rollup_1h_pending SET high = bottom;
    END IF;
    filled := (span.high - bottom) / {HOUR_MS};
    held := extract(epoch FROM clock_timestamp() - locked);
END
$$"""
_FILL_CHUNK = "SELECT filled, held FROM purpleflea_rollup_1h_fill(%s)"
# Making the triggers, in one round trip under the lock: the triggers, no hourly row (rows
# left by a store whose triggers were dropped go, whatever their hour), every hour pending, and
# the function that fills them (only a store this made can have pending hours). A change to
# either function must rename it, as the triggers.
_INSTALL = ";".join(
    [
        _LOCK,
        _FUNCTION,
        _FILL_FUNCTION,
        *(
            f"DROP TRIGGER IF EXISTS {name} ON rollup_1m; CREATE TRIGGER {name} {when} "
            "FOR EACH STATEMENT EXECUTE FUNCTION purpleflea_rollup_1h()"
            for name, when in TRIGGERS.items()
        ),
        "TRUNCATE rollup_1h",
        "DELETE FROM rollup_1h_pending",
        _PEND_ALL,
    ]
)


async def ensure_hourly(writer: psycopg.AsyncConnection[tuple[Any, ...]]) -> bool:
    """Make ``rollup_1h`` and its triggers if the store lacks them, with every hour that holds
    minutes pending (see the module docstring; :func:`fill_hourly` fills them). Runs inside the
    caller's transaction, which holds the schema's advisory lock, after ``rollup_1m`` exists;
    True if it made them."""
    await schema_postgres.create_missing(writer, _TABLE + _PENDING_TABLE)  # _TABLE ends in ";"
    found = await (await writer.execute(_PRESENT, [list(TRIGGERS)])).fetchone()
    if found is not None and found[0] == len(TRIGGERS):
        return False
    await writer.execute(_INSTALL)
    return True


async def fill_hourly(connection: psycopg.AsyncConnection[tuple[Any, ...]]) -> int:
    """Fill the pending hours a chunk a transaction, newest first, until none is pending
    (whichever node filled them); the chunks this call did. ``connection`` is in autocommit
    mode (each chunk its own transaction) and used by nothing else meanwhile."""
    hours = 1  # the first chunk's; then toward CHUNK_S, at most doubling
    chunks = 0
    while True:
        try:
            row = await (await connection.execute(_FILL_CHUNK, [hours])).fetchone()
        except psycopg.errors.LockNotAvailable:
            await asyncio.sleep(LOCK_RETRY_S)
            continue
        filled, held = row if row is not None else (None, 0.0)
        if filled is None:
            return chunks
        log.debug("hourly rollup: %d hours filled, the writers held %.3f s", filled, held)
        chunks += 1
        hours = max(1, min(2 * hours, int(hours * CHUNK_S / max(held, 1e-6))))
