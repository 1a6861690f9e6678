"""The hourly rollup of the PostgreSQL store: ``rollup_1h``, the hourly sums of ``rollup_1m``.

Aggregates of hourly and daily buckets read their whole hours from it, as on SQLite (see
:mod:`purpleflea.store.aggregate`), so it must never disagree with the minute rollups. It is
kept by triggers on ``rollup_1m``, not by the code that appends: every statement that changes
the minute rollups changes the hourly ones by the same amounts, in the same transaction.

**The rule.** A node reads ``rollup_1h`` only once the triggers exist, and it has them whole:
the node that makes them (the first of this version to open the store) backfills the table from
the minute rollups in the same transaction, holding a lock that keeps every ``rollup_1m`` writer
out until it commits. From that commit on, the hourly sums equal the minute rollups' for every
hour, and stay equal whoever writes:

- a node of an older version, which knows nothing of ``rollup_1h`` during a rolling upgrade and
  appends minute rollups only: the triggers live in the database, not in the code, so its
  appends (late events in old hours too) update the hourly rollup all the same;
- nodes starting together: the schema's advisory lock runs their setups one after another, and
  each after the first finds the triggers and does nothing;
- a node of this version that opened the store has made the triggers or found them, so its
  reads never see a store without them.

No per-hour bookkeeping (a watermark of hours covered) is needed: the hourly rollup is whole
or absent. The price is one stall of the writers while the first node backfills (a grouped scan
of ``rollup_1m``: 8.9 s for 1.73M minute rows, bench/hourly_postgres.py); the appends wait in
the ingest buffer meanwhile, as behind any schema change, and go on after. Each later append
pays the triggers: ~1 ms on a 50-event batch (4.0 -> 5.0 ms).
"""

from __future__ import annotations

from typing import Any

import psycopg

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
# Keeps every rollup_1m writer (ROW EXCLUSIVE) out and lets readers on: taken before the
# backfill reads, so no append lands between the read and the triggers.
_LOCK = "LOCK TABLE rollup_1m IN SHARE ROW EXCLUSIVE MODE"
_BACKFILL = (
    "INSERT INTO rollup_1h (hour, market, exchange, side, count, size_usd, seconds) "
    "SELECT (minute / 3600000) * 3600000, market, exchange, side, sum(count)::bigint, "
    "sum(size_usd), sum(seconds)::bigint FROM rollup_1m GROUP BY 1, 2, 3, 4"
)


async def ensure_hourly(writer: psycopg.AsyncConnection[tuple[Any, ...]]) -> bool:
    """Make ``rollup_1h`` and its triggers if the store lacks them, backfilled from
    ``rollup_1m`` (see the module docstring). Runs inside the caller's transaction, which holds
    the schema's advisory lock, after ``rollup_1m`` exists; True if it backfilled."""
    await writer.execute(_TABLE)
    found = await (await writer.execute(_PRESENT, [list(TRIGGERS)])).fetchone()
    if found is not None and found[0] == len(TRIGGERS):
        return False
    await writer.execute(_LOCK)
    await writer.execute(_FUNCTION)
    for name, when in TRIGGERS.items():
        await writer.execute(f"DROP TRIGGER IF EXISTS {name} ON rollup_1m")
        await writer.execute(
            f"CREATE TRIGGER {name} {when} FOR EACH STATEMENT "
            "EXECUTE FUNCTION purpleflea_rollup_1h()"
        )
    # Rows left by a store whose triggers were dropped (rollup_1m recreated): made anew.
    await writer.execute("DELETE FROM rollup_1h")
    await writer.execute(_BACKFILL)
    return True
