"""The scale-out history store: PostgreSQL, shared by every ingest and API node.

Same contract and query semantics as :mod:`purpleflea.store.sqlite`: ``seq`` is the primary
key and resume cursor, ``id`` is unique so a replayed event is stored once, and per-minute
rollups are maintained in the same transaction as the insert, so aggregates over long ranges
read minutes, not events; hourly and daily buckets read their whole hours from the hourly
rollup, which triggers on the minute rollups keep (:mod:`purpleflea.store.hourly_postgres`),
once it is whole: while a store an older release wrote is being filled (in the background, a
chunk at a time) they read the minutes.

One writer connection takes appends (one statement per batch: the insert, the rollup upsert
and the returned new seqs, after an advisory lock that serializes appends across nodes so that
a rollup's busy ``seconds`` count a second once whoever appends its events); a few reader
connections serve history queries concurrently, so a slow query never waits behind ingest or
another query. A connection the
server dropped (restart, failover) is replaced on its next use.

Open interest is a market's total, at most one row per market and minute, keyed
``(minute, market)`` and written only when it moved (see
:class:`~purpleflea.store.oi_sampler.OpenInterestSampler`); an append is one upsert statement.

``last_seq`` reads the tables, never a cached value: on an API node another process writes.
Only one process may assign seqs (the ingest node's tracker): a second writer's seq collides
with the first's and its append fails loudly with a unique violation instead of overwriting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, LiteralString, TypeVar

import psycopg

from purpleflea.engine.coverage import SHARE_WINDOW_MS
from purpleflea.model import CascadeAlert, Liquidation, decode_cascade, encode
from purpleflea.store import aggregate as aggregates
from purpleflea.store import index_postgres, schema_postgres
from purpleflea.store.base import (
    COLUMNS,
    EVENT_COLUMNS,
    OI_COLUMNS,
    OI_MINUTE_MS,
    SCHEMA_VERSION,
    Bucket,
    GroupBy,
    Interval,
    OpenInterest,
    Page,
    Query,
    StoreTooNew,
    StoreUnavailable,
    check_schema,
    coverage_backfill,
    event_table,
    open_interest_rows,
    row_to_event,
    second_ranges,
)
from purpleflea.store.factory import redacted
from purpleflea.store.hourly_postgres import PENDING, ensure_hourly, fill_hourly
from purpleflea.store.open_hours import OpenHours
from purpleflea.store.replay import ReplayPage, replay_page
from purpleflea.store.sql import history_page

log = logging.getLogger("purpleflea.store")

T = TypeVar("T")

#: Seconds before a fill of the hourly rollup that lost its connection starts again.
FILL_RETRY_S = 5.0

# The array type each column is sent as (its type without constraints).
_TYPES = tuple(pg.split()[0] for _, _, pg in EVENT_COLUMNS)

# Nodes starting together would race on CREATE ... IF NOT EXISTS; an advisory lock (any
# constant both sides agree on) serializes them. Run by schema_postgres.create_missing, which
# skips what exists: the indexes' SHARE and the column's ACCESS EXCLUSIVE lock are taken only
# when there is something to make.
_SCHEMA_LOCK = 0x70_66_5F_73_63_68  # "pf_sch"

_SCHEMA = (
    event_table("postgres")
    + """
CREATE INDEX IF NOT EXISTS liquidations_market_seq ON liquidations (market, seq);
CREATE INDEX IF NOT EXISTS liquidations_exchange_seq ON liquidations (exchange, seq);
CREATE INDEX IF NOT EXISTS liquidations_side_seq ON liquidations (side, seq);
CREATE INDEX IF NOT EXISTS liquidations_size_usd ON liquidations (size_usd);
CREATE INDEX IF NOT EXISTS liquidations_ts ON liquidations (ts);
CREATE TABLE IF NOT EXISTS rollup_1m (
    minute bigint NOT NULL,
    market text NOT NULL,
    exchange text NOT NULL,
    side text NOT NULL,
    count bigint NOT NULL,
    size_usd float8 NOT NULL,
    seconds bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (market, minute, exchange, side)
);
CREATE INDEX IF NOT EXISTS rollup_1m_minute ON rollup_1m (minute);
CREATE TABLE IF NOT EXISTS cascades (
    seq bigint PRIMARY KEY,
    id text NOT NULL,
    status text NOT NULL,
    market text NOT NULL,
    side text NOT NULL,
    updated_at bigint NOT NULL,
    body bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS cascades_id_seq ON cascades (id, seq);
CREATE TABLE IF NOT EXISTS open_interest (
    minute bigint NOT NULL,
    market text NOT NULL,
    ts bigint NOT NULL,
    open_interest_usd float8 NOT NULL,
    mark_price float8 NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, market)
);
ALTER TABLE open_interest ADD COLUMN IF NOT EXISTS mark_price float8 NOT NULL DEFAULT 0;
-- The cascade engine's state and journal (server/engine_state_postgres.py).
CREATE TABLE IF NOT EXISTS engine_state (
    slot smallint PRIMARY KEY,
    body bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS engine_journal (
    id bigserial PRIMARY KEY,
    nonce bigint NOT NULL,
    marker boolean NOT NULL,
    body bytea NOT NULL
);
"""
)

# The schema version a release stamped the store with (store.base.SCHEMA_VERSION): one row.
_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS purpleflea_schema (version integer NOT NULL)"
_STAMPED = "SELECT max(version) FROM purpleflea_schema"
_STAMP = "INSERT INTO purpleflea_schema (version) VALUES (%s)"

# A store written before events carried coverage: the column, each row its exchange's class
# (coverage_backfill), and the rollup's seconds (the counts: exact for a snapshot feed, an
# upper bound for the others). Run once, when the column is missing.
_HAS_COVERAGE = (
    "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
    "AND table_name = 'liquidations' AND column_name = 'coverage'"
)
_ADD_COVERAGE = "ALTER TABLE liquidations ADD COLUMN coverage text NOT NULL DEFAULT ''"
_COLUMNS = (
    "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
    "AND table_name = %s"
)


async def _columns(connection: psycopg.AsyncConnection[Any], table: str) -> set[str]:
    """The names of ``table``'s columns (in the connection's current schema)."""
    rows = await (await connection.execute(_COLUMNS, (table,))).fetchall()
    return {str(row[0]) for row in rows}


_ADD_SECONDS = (
    "ALTER TABLE rollup_1m ADD COLUMN IF NOT EXISTS seconds bigint NOT NULL DEFAULT 0",
    "UPDATE rollup_1m SET seconds = count",
)

# Appends take this transaction-level advisory lock before their statement (any constant the
# nodes agree on): the statement's snapshot, taken after it, then holds every other append
# committed before, so two nodes appending events of one second count it once, not twice.
_APPEND_LOCK = 0x70_66_5F_73_65_63  # "pf_sec"

# The whole append in one statement: insert what is new by id, fold exactly those rows into
# the minute rollups, and return their seqs. A rollup's ``seconds`` counts the seconds that
# carried an event once however the events were batched: a batch adds the distinct seconds of
# its new events that no stored event of the same cell carried (``counted``: the stored events
# in the batch's runs of seconds, store.base.second_ranges, read on the ts index; the
# statement's snapshot does not see ``new``'s rows). Counted per batch instead, a live feed's
# busy second (a batch every ~50 ms) was counted once per batch.
_APPEND = f"""
WITH new AS (
    INSERT INTO liquidations ({", ".join(COLUMNS)})
    SELECT * FROM unnest({", ".join(f"%s::{t}[]" for t in _TYPES)})
    ON CONFLICT (id) DO NOTHING
    RETURNING seq, market, exchange, side, ts, size_usd
), counted AS (
    SELECT DISTINCT l.market, l.exchange, l.side, l.ts / 1000 AS second
    FROM unnest(%s::bigint[], %s::bigint[]) AS r(lo, hi)
    CROSS JOIN LATERAL (
        -- OFFSET 0 keeps this a scan per range: joined with the ranges instead, the planner
        -- (which cannot know a range is a second or two) may read the whole table once.
        SELECT market, exchange, side, ts FROM liquidations WHERE ts >= r.lo AND ts < r.hi
        OFFSET 0
    ) AS l
), rolled AS (
    INSERT INTO rollup_1m (minute, market, exchange, side, count, size_usd, seconds)
    SELECT (n.ts / 60000) * 60000, n.market, n.exchange, n.side, count(*), sum(n.size_usd),
        count(DISTINCT n.ts / 1000) FILTER (WHERE c.second IS NULL)
    FROM new AS n LEFT JOIN counted AS c ON c.market = n.market
        AND c.exchange = n.exchange AND c.side = n.side AND c.second = n.ts / 1000
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (market, minute, exchange, side) DO UPDATE SET
        count = rollup_1m.count + excluded.count,
        size_usd = rollup_1m.size_usd + excluded.size_usd,
        seconds = rollup_1m.seconds + excluded.seconds
), touched AS (
    -- New events in an hour change its coverage factors (and those of the next day's hours,
    -- whose share estimate reads it; engine.coverage.SHARE_WINDOW_MS): the next aggregate
    -- recomputes them.
    DELETE FROM coverage_factor USING (
        SELECT DISTINCT market, (ts / 3600000) * 3600000 AS hour FROM new
    ) AS hours
    WHERE coverage_factor.market = hours.market AND coverage_factor.hour >= hours.hour
        AND coverage_factor.hour < hours.hour + {SHARE_WINDOW_MS}
)
SELECT seq FROM new
"""


def append_params(events: Sequence[Liquidation]) -> list[list[Any]]:
    """The parameters of :data:`_APPEND` for ``events``: their columns, then the batch's runs
    of seconds (their first and end ms)."""
    ranges = second_ranges(event.ts // 1000 for event in events)
    return [
        *([getattr(e, c) for e in events] for c in COLUMNS),
        [lo for lo, _ in ranges],
        [hi for _, hi in ranges],
    ]


_APPEND_CASCADES = """
INSERT INTO cascades (seq, id, status, market, side, updated_at, body)
SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[],
                     %s::bigint[], %s::bytea[])
ON CONFLICT (seq) DO NOTHING
"""
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM liquidations"
# The latest snapshot of a minute wins, whichever batch brought it (a batch holds each key
# once: see open_interest_rows).
_UPSERT_OI = f"""
INSERT INTO open_interest ({", ".join(OI_COLUMNS)})
SELECT * FROM unnest(%s::bigint[], %s::text[], %s::bigint[], %s::float8[], %s::float8[])
ON CONFLICT (minute, market) DO UPDATE SET
    ts = excluded.ts, open_interest_usd = excluded.open_interest_usd,
    mark_price = excluded.mark_price
WHERE excluded.ts >= open_interest.ts
"""
# The minute bounds let the primary key find the range; rows are sorted within each minute.
_SELECT_OI = (
    "SELECT ts, market, open_interest_usd, mark_price FROM open_interest "
    "WHERE minute >= %s AND minute < %s AND ts >= %s AND ts < %s"
)
_AFTER_OI = " AND (ts, market) > (%s, %s)"
_ORDER_OI = " ORDER BY minute, ts, market LIMIT %s"
_LAST_SEQ = (
    "SELECT GREATEST(COALESCE((SELECT max(seq) FROM liquidations), 0), "
    "COALESCE((SELECT max(seq) FROM cascades), 0))"
)
_EVENT_TIMES = "SELECT (SELECT min(ts) FROM liquidations), (SELECT max(ts) FROM liquidations)"


#: Seconds a new connection may take (libpq's connect_timeout; every connection's, through
#: :func:`connect_options`). Without it
#: a database that stops answering (a failover, a network split) held each read ~130 s, the
#: kernel's SYN retries, long past any client's timeout.
CONNECT_TIMEOUT_S = 10
#: About how many seconds an idle connection whose server vanished (a failover, a cut link)
#: is known broken in (libpq's TCP keepalives; see :func:`connect_options`), so its next use
#: opens a new one instead of waiting on the kernel's retransmissions (~15 min).
KEEPALIVE_S = 60


def connect_options(*, keepalive_s: int = KEEPALIVE_S) -> dict[str, Any]:
    """The libpq options of every connection the tracker opens to PostgreSQL (store, key
    store, small stores, engine state, sequencer lock): a bound on the connect
    (:data:`CONNECT_TIMEOUT_S`) and TCP keepalives that give up on a silent server after
    about ``keepalive_s`` seconds (probing from ``keepalive_s / 2`` idle, 3 probes)."""
    return {
        "connect_timeout": CONNECT_TIMEOUT_S,
        "keepalives": 1,
        "keepalives_idle": max(1, keepalive_s // 2),
        "keepalives_interval": max(1, keepalive_s // 6),
        "keepalives_count": 3,
    }


class PostgresStore:
    """History in PostgreSQL; create with :meth:`connect` (see the module docstring)."""

    #: A read's work is the database server's, which this process's CPU clocks do not see.
    reads_metered = False

    def __init__(self, url: str, *, readers: int = 3) -> None:
        if readers < 1:
            raise ValueError(f"PostgresStore readers must be at least 1, got {readers}")
        self.url = url
        self._reader_count = readers
        self._writer: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
        self._idle: asyncio.Queue[psycopg.AsyncConnection[tuple[Any, ...]]] = asyncio.Queue()
        self._all_readers: list[psycopg.AsyncConnection[tuple[Any, ...]]] = []
        self._write_lock = asyncio.Lock()
        #: The open hours' coverage factors, reused for a few seconds (store/open_hours.py).
        self._open_hours = OpenHours()
        # The hourly rollup has no pending hour (then it stays so), and this node's fill of it.
        self._hourly_whole = False
        self._filling: asyncio.Task[None] | None = None
        self._indexing: asyncio.Task[None] | None = None
        #: An ingest node's sequencer lock check (server/sequencer.py), awaited inside each
        #: write's transaction, on its connection; raises while this node may not write.
        #: None: no check (API nodes, tools).
        self.write_guard: Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]] | None = None

    @classmethod
    async def connect(cls, url: str, *, readers: int = 3) -> PostgresStore:
        """Open the connections and create the schema if it is missing."""
        store = cls(url, readers=readers)
        await store.open()
        return store

    async def open(self) -> None:
        self._writer = await self._new_connection(autocommit=False)
        try:
            build_index = await self._make_schema(self._writer)
        except StoreTooNew:
            await self._writer.close()
            raise
        for _ in range(self._reader_count):
            reader = await self._new_connection(autocommit=True)
            self._all_readers.append(reader)
            self._idle.put_nowait(reader)
        if not await self._hourly_ready():
            log.info(
                "filling the hourly rollup from the minute rollups, a chunk at a time beside "
                "the appends; aggregates read the minutes until it is whole"
            )
            self._filling = asyncio.create_task(self._fill_hourly(), name="fill rollup_1h")
        if build_index:
            log.info(
                "building the indexes of big events (and by market) and of (market, side, seq) "
                "beside the appends (CREATE INDEX CONCURRENTLY); replays with a large min_usd "
                "or one side of a few markets, and pages of a market with a large min_usd, "
                "read more rows until it is done"
            )
            self._indexing = asyncio.create_task(self._build_index(), name="index events")

    async def _make_schema(self, writer: psycopg.AsyncConnection[tuple[Any, ...]]) -> bool:
        """Create or bring up to date the schema, under the schema lock, in one transaction;
        True when the index of big events is to be built beside the appends."""
        async with writer.transaction():
            await writer.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            await schema_postgres.create_missing(writer, _VERSION_TABLE)
            row = await (await writer.execute(_STAMPED)).fetchone()
            stamped = int(row[0]) if row is not None and row[0] is not None else 0
            check_schema(stamped, f"PostgreSQL store {redacted(self.url)}")
            found = await writer.execute(_HAS_COVERAGE)
            migrate = await found.fetchone() is None
            await schema_postgres.create_missing(writer, _SCHEMA)
            build_index = await index_postgres.needs_concurrent_build(writer)
            await writer.execute(aggregates.FACTOR_TABLE_SQL["postgres"])
            for statement in aggregates.add_calibration_columns(
                "postgres", await _columns(writer, "coverage_factor")
            ):
                await writer.execute(statement)
            await writer.execute(aggregates.METHOD_TABLE_SQL)
            method = await (await writer.execute(aggregates.METHOD_SQL)).fetchone()
            if not aggregates.factors_current(method):
                # Factors another version of the estimate computed: dropped, recomputed on use.
                for statement in aggregates.RESET_FACTORS:
                    await writer.execute(statement)
            if migrate:
                # The table predates coverage (a new one was just made with it otherwise).
                still = await (await writer.execute(_HAS_COVERAGE)).fetchone() is None
                if still:
                    await writer.execute(_ADD_COVERAGE)
                    await writer.execute(coverage_backfill())
                    for statement in _ADD_SECONDS:
                        await writer.execute(statement)
            await ensure_hourly(writer)
            if stamped < SCHEMA_VERSION:
                await writer.execute("DELETE FROM purpleflea_schema")
                await writer.execute(_STAMP, (SCHEMA_VERSION,))
        return build_index

    async def _on_own_connection(
        self,
        doing: str,
        without: str,
        work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]],
    ) -> T:
        """``work`` beside the appends on a connection of its own (autocommit); a lost
        connection starts it again after :data:`FILL_RETRY_S`. ``doing`` and ``without``
        (what readers do meanwhile) name it in the log."""
        while True:
            try:
                connection = await self._new_connection(autocommit=True)
                async with connection:
                    return await work(connection)
            except (psycopg.OperationalError, StoreUnavailable) as exc:
                log.warning("%s failed (%s); again in %.0f s", doing, exc, FILL_RETRY_S)
                await asyncio.sleep(FILL_RETRY_S)
            except Exception:
                log.exception("%s stopped: %s", doing, without)
                raise

    async def _fill_hourly(self) -> None:
        """Fill the hourly rollup's pending hours beside the appends (other nodes may too)."""
        chunks = await self._on_own_connection(
            "filling the hourly rollup", "aggregates read the minutes", fill_hourly
        )
        log.info("hourly rollup filled (%d chunks by this node)", chunks)

    async def _build_index(self) -> None:
        """Build the late indexes beside the appends (:mod:`.index_postgres`)."""
        built = await self._on_own_connection(
            "building the late indexes",
            "replays read without",
            index_postgres.build_concurrently,
        )
        if built:
            log.info("indexes of big events (and by market) and of (market, side, seq) built")
        else:
            log.info("late indexes: another node is building them")

    async def index_built(self) -> None:
        """Wait until this node's build of the late indexes, if it runs one, ends."""
        if self._indexing is not None:
            await asyncio.shield(self._indexing)

    async def _hourly_ready(self) -> bool:
        """No hour of the hourly rollup is pending: aggregates may read it."""
        if not self._hourly_whole:
            self._hourly_whole = not await self._read(PENDING, ())
        return self._hourly_whole

    async def hourly_filled(self) -> None:
        """Wait until this node's fill of the hourly rollup, if it runs one, is done."""
        if self._filling is not None:
            await asyncio.shield(self._filling)

    async def _new_connection(self, *, autocommit: bool) -> psycopg.AsyncConnection[Any]:
        try:
            return await psycopg.AsyncConnection.connect(
                self.url,
                autocommit=autocommit,
                application_name="purpleflea",
                **connect_options(),
            )
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(
                f"PostgreSQL store {redacted(self.url)!r}: cannot connect: {exc}"
            ) from exc

    # -- writes -------------------------------------------------------------------------------

    async def _writable(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        if self._writer is None:
            raise RuntimeError("PostgresStore is not open: use `await PostgresStore.connect(url)`")
        if self._writer.closed or self._writer.broken:
            self._writer = await self._new_connection(autocommit=False)
        return self._writer

    async def _write(
        self, sql: LiteralString, params: Sequence[Any], *, lock: int | None = None
    ) -> list[tuple[Any, ...]]:
        """Run one statement in its own transaction, after taking the advisory ``lock`` in it
        if given; the rows it returns, if any."""
        async with self._write_lock:
            for attempt in (1, 2):
                writer = await self._writable()
                try:
                    async with writer.transaction():
                        if self.write_guard is not None:
                            await self.write_guard(writer)
                        if lock is not None:
                            await writer.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
                        cursor = await writer.execute(sql, params)
                        return await cursor.fetchall() if cursor.description else []
                except psycopg.OperationalError:
                    # The connection died (server restart, failover). Both writes are
                    # idempotent (by id, by seq), so one more try on a new connection is safe.
                    if attempt == 2 or not writer.broken:
                        raise
            raise AssertionError("unreachable")

    async def append(self, events: Sequence[Liquidation]) -> list[Liquidation]:
        if not events:
            return []
        rows = await self._write(_APPEND, append_params(events), lock=_APPEND_LOCK)
        new = {row[0] for row in rows}
        return [event for event in events if event.seq in new]

    async def append_cascades(self, alerts: Sequence[CascadeAlert]) -> None:
        if not alerts:
            return
        columns: list[list[Any]] = [
            [a.seq for a in alerts],
            [a.id for a in alerts],
            [a.status for a in alerts],
            [a.market for a in alerts],
            [a.side for a in alerts],
            [a.updated_at for a in alerts],
            [encode(a) for a in alerts],
        ]
        await self._write(_APPEND_CASCADES, columns)

    async def append_open_interest(self, rows: Sequence[OpenInterest]) -> None:
        table_rows = open_interest_rows(rows)
        if not table_rows:
            return
        columns: list[list[Any]] = [list(column) for column in zip(*table_rows, strict=True)]
        await self._write(_UPSERT_OI, columns)

    # -- reads --------------------------------------------------------------------------------

    @asynccontextmanager
    async def _reader(self) -> AsyncIterator[psycopg.AsyncConnection[tuple[Any, ...]]]:
        reader = await self._idle.get()
        try:
            if reader.closed or reader.broken:
                # Replaced only once a new connection is made: while the server is away the
                # dead one goes back to the pool (still listed, so close() closes it) and the
                # next read tries again, instead of losing the pool's slot for good.
                fresh = await self._new_connection(autocommit=True)
                self._all_readers[self._all_readers.index(reader)] = fresh
                reader = fresh
            yield reader
        finally:
            self._idle.put_nowait(reader)

    async def _read(
        self, sql: LiteralString, params: Sequence[Any], *, custom_plan: bool = False
    ) -> list[tuple[Any, ...]]:
        """``sql``'s rows on a pooled reader. ``custom_plan`` (store/sql.py ``Where``): planned
        for these values, never prepared, and without JIT compilation: its gated parts'
        estimates (a window read whole that the page may never read) set off a compilation of
        ~60 ms for a page that takes a fraction of a millisecond."""
        # A server restart or a cut drops every pooled reader, and each is found dead only
        # when used: one try per reader, then one on a connection made now, before giving up
        # (two tries gave up on a live server while a second stale reader was next in line).
        attempts = self._reader_count + 1
        for attempt in range(1, attempts + 1):
            async with self._reader() as reader:
                try:
                    if not custom_plan:
                        # psycopg prepares a statement once it ran 5 times.
                        cursor = await reader.execute(sql, params)
                        return await cursor.fetchall()
                    async with reader.transaction():
                        await reader.execute("SET LOCAL jit = off")
                        cursor = await reader.execute(sql, params, prepare=False)
                        return await cursor.fetchall()
                except psycopg.OperationalError as exc:
                    if not reader.broken:
                        raise  # a bad query, not a dropped connection
                    if attempt == attempts:
                        raise StoreUnavailable(
                            f"PostgreSQL store {redacted(self.url)!r}: connection lost: {exc}"
                        ) from exc
        raise AssertionError("unreachable")

    async def last_seq(self) -> int:
        rows = await self._read(_LAST_SEQ, ())
        return int(rows[0][0])

    async def event_times(self) -> tuple[int, int] | None:
        first, last = (await self._read(_EVENT_TIMES, ()))[0]
        return None if first is None else (int(first), int(last))

    async def since(self, seq: int, limit: int = 1000) -> list[Liquidation]:
        rows = await self._read(f"{_SELECT} WHERE seq > %s ORDER BY seq LIMIT %s", (seq, limit))
        return [row_to_event(row) for row in rows]

    async def cascades_since(self, seq: int, limit: int = 1000) -> list[CascadeAlert]:
        rows = await self._read(
            "SELECT body FROM cascades WHERE seq > %s ORDER BY seq LIMIT %s", (seq, limit)
        )
        return [decode_cascade(bytes(row[0])) for row in rows]

    async def cascades(
        self, *, active: bool | None = None, markets: Sequence[str] = (), limit: int = 100
    ) -> list[CascadeAlert]:
        clauses = ["c.seq = (SELECT max(seq) FROM cascades WHERE id = c.id)"]
        params: list[Any] = []
        if active is True:
            clauses.append("c.status != 'exhausted'")
        elif active is False:
            clauses.append("c.status = 'exhausted'")
        if markets:
            clauses.append("c.market = ANY(%s)")
            params.append(list(markets))
        rows = await self._read(
            f"SELECT c.body FROM cascades c WHERE {' AND '.join(clauses)} "
            "ORDER BY c.seq DESC LIMIT %s",
            [*params, limit],
        )
        return [decode_cascade(bytes(row[0])) for row in rows]

    async def open_interest(
        self, start_ms: int, end_ms: int, *, after: OpenInterest | None = None, limit: int = 10_000
    ) -> list[OpenInterest]:
        first = start_ms if after is None else max(start_ms, after.ts)
        params: list[Any] = [first // OI_MINUTE_MS * OI_MINUTE_MS, end_ms, start_ms, end_ms]
        if after is None:
            rows = await self._read(_SELECT_OI + _ORDER_OI, [*params, limit])
        else:
            rows = await self._read(
                _SELECT_OI + _AFTER_OI + _ORDER_OI, [*params, after.ts, after.market, limit]
            )
        return [
            OpenInterest(ts=ts, market=market, open_interest_usd=usd, mark_price=mark)
            for ts, market, usd, mark in rows
        ]

    async def replay(self, after: int, query: Query, limit: int = 1000) -> ReplayPage:
        return await replay_page(self._read, _SELECT, query, "postgres", after, limit)

    async def query(self, query: Query) -> Page:
        page = history_page(_SELECT, query, "postgres")
        rows = await self._read(page.sql, page.params, custom_plan=page.custom_plan)
        events = [row_to_event(row) for row in rows[: query.limit]]
        return Page.of(events, len(rows) > query.limit, query.order)

    async def aggregate(
        self, interval: Interval, group_by: GroupBy, query: Query, *, estimate: bool = True
    ) -> list[Bucket]:
        # Until the hourly rollup is whole, its hours are read from the minutes.
        hourly = await self._hourly_ready()
        return await aggregates.aggregate(
            self._read,
            self._save_factors,
            interval,
            group_by,
            query,
            "postgres",
            hourly=hourly,
            estimate=estimate,
            recent=self._open_hours,
        )

    async def _save_factors(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """Store closed hours' coverage factors (on the writer, serialized with appends)."""
        async with self._write_lock:
            writer = await self._writable()
            async with writer.transaction(), writer.cursor() as cursor:
                if self.write_guard is not None:
                    await self.write_guard(writer)
                await cursor.executemany(sql, rows)

    async def explain(self, query: Query) -> str:
        """PostgreSQL's plan for :meth:`query` (operators checking that indexes are used)."""
        page = history_page(_SELECT, query, "postgres")
        rows = await self._read(f"EXPLAIN {page.sql}", page.params)
        return "\n".join(str(row[0]) for row in rows)

    async def close(self) -> None:
        if self._filling is not None:
            # Mid-chunk, the chunk's transaction rolls back; the pending hours stay pending.
            self._filling.cancel()
            await asyncio.gather(self._filling, return_exceptions=True)
            self._filling = None
        if self._indexing is not None:
            # Its connection closes mid-build: the index stays invalid, rebuilt at a next start.
            self._indexing.cancel()
            await asyncio.gather(self._indexing, return_exceptions=True)
            self._indexing = None
        connections = [*self._all_readers, *([self._writer] if self._writer else [])]
        self._all_readers.clear()
        self._writer = None
        for connection in connections:
            await connection.close()
