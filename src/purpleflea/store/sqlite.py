"""The default history store: one SQLite file in WAL mode.

Writes happen on the event loop's thread through one connection (a batch insert is well under
a millisecond, and WAL with ``synchronous=NORMAL`` makes a commit durable against a process
crash — ``kill -9`` — without an fsync per batch; ``durable=True`` asks for ``FULL`` to survive
power loss too). A store that comes back without its last events (a power loss, a damaged
``-wal`` file) never has their seqs given again: the server numbers after the seq mark kept
beside the file (:mod:`purpleflea.store.seqmark`). Reads run in worker threads on their own
connections, so a slow history query never stalls ingest. Per-minute rollups are maintained
on insert so aggregates over a year read minutes, not events. A bulk load into an empty store
(the simulator's history) is written differently: one transaction with a rollback journal
instead of WAL, all or nothing (:meth:`SQLiteStore.bulk_load`).

Open interest (:class:`~purpleflea.store.base.OpenInterest`) is a market's total, one
``WITHOUT ROWID`` row per market and minute at most, keyed ``(minute, market)``, and written only
when it moved by 0.5 % or every 15 minutes
(:class:`~purpleflea.store.oi_sampler.OpenInterestSampler`): at most ~96 rows per market and
day when it is quiet, a few hundred thousand rows a day live rather than the 2.5M of one row per
listing and minute.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from purpleflea.cputime import on_thread
from purpleflea.engine.coverage import SHARE_WINDOW_MS
from purpleflea.model import CascadeAlert, Liquidation, decode_cascade, encode
from purpleflea.store import aggregate as aggregates
from purpleflea.store.base import (
    COLUMNS,
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
    check_schema,
    coverage_backfill,
    coverage_case,
    event_table,
    open_interest_rows,
    row_to_event,
    second_ranges,
)
from purpleflea.store.file_guard import FileGuard
from purpleflea.store.open_hours import OpenHours
from purpleflea.store.replay import ReplayPage, replay_page
from purpleflea.store.sidecar import rollback
from purpleflea.store.sql import TS_WALK_MATCHES, history_page, where

if TYPE_CHECKING:
    from purpleflea.store.bulk import EventColumns

_SCHEMA = (
    event_table("sqlite")
    + """
CREATE INDEX IF NOT EXISTS liquidations_market_seq ON liquidations (market, seq);
CREATE INDEX IF NOT EXISTS liquidations_ts ON liquidations (ts);
CREATE INDEX IF NOT EXISTS liquidations_exchange_seq ON liquidations (exchange, seq);
CREATE INDEX IF NOT EXISTS liquidations_side_seq ON liquidations (side, seq);
CREATE INDEX IF NOT EXISTS liquidations_market_side_seq ON liquidations (market, side, seq);
CREATE INDEX IF NOT EXISTS liquidations_big ON liquidations (seq, size_usd)
    WHERE size_usd >= 100000;
CREATE INDEX IF NOT EXISTS liquidations_big_market ON liquidations (market, seq, size_usd, side)
    WHERE size_usd >= 100000;
CREATE TABLE IF NOT EXISTS rollup_1m (
    minute INTEGER NOT NULL,
    market TEXT NOT NULL,
    exchange TEXT NOT NULL,
    side TEXT NOT NULL,
    count INTEGER NOT NULL,
    size_usd REAL NOT NULL,
    seconds INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (market, minute, exchange, side)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rollup_1m_minute ON rollup_1m (minute);
CREATE TABLE IF NOT EXISTS rollup_1h (
    hour INTEGER NOT NULL,
    market TEXT NOT NULL,
    exchange TEXT NOT NULL,
    side TEXT NOT NULL,
    count INTEGER NOT NULL,
    size_usd REAL NOT NULL,
    seconds INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (market, hour, exchange, side)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rollup_1h_hour ON rollup_1h (hour);
CREATE TABLE IF NOT EXISTS cascades (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    status TEXT NOT NULL,
    market TEXT NOT NULL,
    side TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS cascades_id_seq ON cascades (id, seq);
CREATE TABLE IF NOT EXISTS open_interest (
    minute INTEGER NOT NULL,
    market TEXT NOT NULL,
    ts INTEGER NOT NULL,
    open_interest_usd REAL NOT NULL,
    mark_price REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, market)
) WITHOUT ROWID;
"""
)
# A store written before marks were kept gets the column (0: not recorded).
_ADD_MARK = "ALTER TABLE open_interest ADD COLUMN mark_price REAL NOT NULL DEFAULT 0"

_INSERT_HEAD = f"INSERT INTO liquidations ({', '.join(COLUMNS)})"
_INSERT = f"{_INSERT_HEAD} VALUES ({', '.join('?' for _ in COLUMNS)})"
#: The same, skipping a row whose id is stored (a taken seq still fails): the append's try.
_INSERT_NEW_IDS = f"{_INSERT} ON CONFLICT (id) DO NOTHING"
# ``seconds`` counts the seconds that carried an event (the coverage estimate's input): a
# batch adds its distinct seconds that no stored event of the cell carried
# (:func:`_drop_counted_seconds`). A bulk load into an empty store counts per batch of 50,000.
_ROLLUP_HEAD = "INSERT INTO rollup_1m (minute, market, exchange, side, count, size_usd, seconds)"
_ROLLUP_TAIL = (
    " ON CONFLICT (market, minute, exchange, side) DO UPDATE SET "
    "count = count + excluded.count, size_usd = size_usd + excluded.size_usd, "
    "seconds = seconds + excluded.seconds"
)
_ROLLUP = f"{_ROLLUP_HEAD} VALUES (?, ?, ?, ?, ?, ?, ?){_ROLLUP_TAIL}"
_ROLLUP_1H_HEAD = _ROLLUP_HEAD.replace("rollup_1m (minute", "rollup_1h (hour")
_ROLLUP_1H_TAIL = _ROLLUP_TAIL.replace("minute", "hour")
_ROLLUP_1H = f"{_ROLLUP_1H_HEAD} VALUES (?, ?, ?, ?, ?, ?, ?){_ROLLUP_1H_TAIL}"
# A store written before the hourly rollup existed gets it from the minute rollup, once.
_BACKFILL_1H = (
    "INSERT INTO rollup_1h (hour, market, exchange, side, count, size_usd, seconds) "
    "SELECT minute / 3600000 * 3600000, market, exchange, side, SUM(count), SUM(size_usd), "
    "SUM(seconds) FROM rollup_1m GROUP BY 1, 2, 3, 4"
)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM liquidations"
#: Coverage factor rows stored per writer transaction (see SQLiteStore._save_factors).
_FACTOR_CHUNK = 500
# A store written before events carried coverage gets the column, its rows their exchange's
# coverage (added as '' first: NOT NULL needs a default), and its rollups' seconds (the
# counts: exact for a snapshot feed, an upper bound for the others).
_ADD_COVERAGE = "ALTER TABLE liquidations ADD COLUMN coverage TEXT NOT NULL DEFAULT ''"
_ADD_SECONDS = (
    "ALTER TABLE {table} ADD COLUMN seconds INTEGER NOT NULL DEFAULT 0",
    "UPDATE {table} SET seconds = count",
)
_EVENT_ROW = attrgetter(*COLUMNS)


@dataclass(slots=True)
class _Cell:
    """One rollup row being summed over a batch: events, notional, distinct seconds."""

    count: int = 0
    usd: float = 0.0
    seconds: set[int] = field(default_factory=set)


# The latest snapshot of a minute wins, whichever batch brought it.
_UPSERT_OI_HEAD = f"INSERT INTO open_interest ({', '.join(OI_COLUMNS)})"
_UPSERT_OI_TAIL = (
    " ON CONFLICT (minute, market) DO UPDATE SET ts = excluded.ts, "
    "open_interest_usd = excluded.open_interest_usd, mark_price = excluded.mark_price "
    "WHERE excluded.ts >= open_interest.ts"
)
_UPSERT_OI = f"{_UPSERT_OI_HEAD} VALUES (?, ?, ?, ?, ?){_UPSERT_OI_TAIL}"
# Time order walks the primary key by minute and sorts only within each minute; the minute
# bounds let it seek instead of filtering the whole table on ts.
_SELECT_OI = (
    "SELECT ts, market, open_interest_usd, {mark} FROM open_interest "
    "WHERE minute >= ? AND minute < ? AND ts >= ? AND ts < ?"
)
_ORDER_OI = " ORDER BY minute, ts, market LIMIT ?"
_LAST_SEQ = (
    "SELECT MAX(COALESCE((SELECT MAX(seq) FROM liquidations), 0), "
    "COALESCE((SELECT MAX(seq) FROM cascades), 0))"
)
# Two subqueries: each is one seek of the ts index (MIN and MAX in one SELECT scan the table).
_EVENT_TIMES = "SELECT (SELECT MIN(ts) FROM liquidations), (SELECT MAX(ts) FROM liquidations)"


#: How long a connection waits for another's lock before SQLITE_BUSY.
_BUSY_TIMEOUT_MS = 5000


def _connect(path: str, *, durable: bool, read_only: bool = False) -> sqlite3.Connection:
    if read_only:
        # mode=ro never creates the file nor writes to it; setting the journal mode would be a
        # write, and a reader of a WAL file follows the writer's mode anyway.
        uri = f"{Path(path).absolute().as_uri()}?mode=ro"
        connection = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    else:
        connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
    connection.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    return connection


def _leave_wal(writer: sqlite3.Connection) -> bool:
    """Switch the journal to ``DELETE`` mode for a bulk load, if no other connection has the
    file open (a reader would keep it in WAL: SQLite refuses at once, not after a wait)."""
    writer.execute("PRAGMA busy_timeout=0")
    try:
        mode = writer.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    except sqlite3.OperationalError:  # "database is locked"
        return False
    finally:
        writer.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    return bool(mode == "delete")


def _holds_events(writer: sqlite3.Connection) -> bool:
    return writer.execute("SELECT 1 FROM liquidations LIMIT 1").fetchone() is not None


#: History indexes a load into an empty store keeps up to date row by row rather than builds
#: at its end: each new row goes at the end of the index (seq- or ts-led: a load appends in
#: seq order, and in ts order as the simulator writes), at the end of one of a few groups
#: (exchange, side), or the index holds few rows (the big events'). Upkeep costs the writer
#: about what or less than the sort at the end would, during the load, where it overlaps the
#: simulation; the per-market ones (275 insertion points, two thirds of the build) are
#: still built at the end. Measured in docs/simulator.md#history-speed.
_KEPT_DURING_LOAD = frozenset(
    {
        "liquidations_ts",
        "liquidations_exchange_seq",
        "liquidations_side_seq",
        "liquidations_big",
        "liquidations_big_market",
    }
)


def _drop_history_indexes(writer: sqlite3.Connection) -> list[str]:
    """Drop the events' history-query indexes that a load would update at random places
    (not the UNIQUE id's own, which catches a repeated id during a load, nor
    :data:`_KEPT_DURING_LOAD`); returns the SQL that builds them again."""
    indexes = [
        (name, sql)
        for name, sql in writer.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = 'liquidations' AND sql IS NOT NULL"
        ).fetchall()
        if name not in _KEPT_DURING_LOAD
    ]
    for name, _ in indexes:
        writer.execute(f'DROP INDEX "{name}"')
    return [sql for _, sql in indexes]


#: The seconds earlier events of a rollup cell already carried, over a range of seconds.
_COUNTED_SECONDS = (
    "SELECT DISTINCT market, exchange, side, ts / 1000 FROM liquidations "
    "WHERE ts >= ? AND ts < ? AND seq < ?"
)


def _drop_counted_seconds(
    writer: sqlite3.Connection, rollup: dict[tuple[int, str, str, str], _Cell], before_seq: int
) -> None:
    """Remove from the batch's rollup cells the seconds that stored events (seq below
    ``before_seq``) of the same cell already carried, so a cell's ``seconds`` stays its count of
    distinct seconds with an event however its events were batched. A live feed appends every
    ~50 ms: a busy second of a complete venue was split over batches and counted once per batch
    (Bybit's busy seconds +47 % in a served crash), which the coverage estimate read as a
    less bursty minute and so hid less behind the throttle (the hidden USD -75 %)."""
    # An import's batch spans hours: one indexed read per run of seconds, not the whole span.
    for first, end in second_ranges(second for cell in rollup.values() for second in cell.seconds):
        found = writer.execute(_COUNTED_SECONDS, (first, end, before_seq))
        for market, exchange, side, second in found:
            cell = rollup.get((second * 1000 // 60_000 * 60_000, market, exchange, side))
            if cell is not None:
                cell.seconds.discard(second)


#: Rows per multi-row INSERT of a bulk load: one statement runs them all in SQLite with the
#: GIL released, where ``executemany`` takes and gives back the GIL for every row (and waits
#: for a busy simulation thread each time it takes it back).
_BULK_ROWS = 500
#: Helper threads SQLite's sorter may use to build a bulk load's indexes at its end.
_SORT_THREADS = 2


def _insert_rows(
    writer: sqlite3.Connection, head: str, tail: str, width: int, flat: list[Any]
) -> None:
    """``flat`` (rows of ``width`` parameters, one after another) as multi-row
    ``head VALUES (...), (...)... tail`` statements of :data:`_BULK_ROWS` rows (fewer if
    this SQLite limits a statement's parameters below that)."""
    # SQLite before 3.32 takes at most 999 parameters a statement.
    rows = max(1, min(_BULK_ROWS, writer.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))
    row = f"({', '.join('?' * width)})"
    step = rows * width
    full = f"{head} VALUES {', '.join([row] * rows)}{tail}"
    for start in range(0, len(flat), step):
        part = flat[start : start + step]
        sql = (
            full
            if len(part) == step
            else f"{head} VALUES {', '.join([row] * (len(part) // width))}{tail}"
        )
        writer.execute(sql, part)


class SQLiteBulkLoad:
    """The writes of one :meth:`SQLiteStore.bulk_load`, inside its transaction.

    Batches come as columns (:class:`~purpleflea.store.bulk.EventColumns`) with seqs and ids
    no other batch of the load has; the rows, rollups and coverage factor invalidations are
    exactly what :meth:`SQLiteStore.append_now` would write for the same batch. A repeated id
    is not skipped but fails the load (``sqlite3.IntegrityError``) and rolls it all back.
    """

    def __init__(self, writer: sqlite3.Connection) -> None:
        self._writer = writer
        self.last_seq = 0
        self.closed = False

    def append(self, columns: EventColumns) -> None:
        from purpleflea.store.bulk import event_params, rollups  # noqa: PLC0415 (numpy)

        self._check_open()
        if not len(columns):
            return
        writer = self._writer
        _insert_rows(writer, _INSERT_HEAD, "", len(COLUMNS), event_params(columns))
        cells = rollups(columns)
        _insert_rows(writer, _ROLLUP_HEAD, _ROLLUP_TAIL, 7, cells.minute)
        _insert_rows(writer, _ROLLUP_1H_HEAD, _ROLLUP_1H_TAIL, 7, cells.hour)
        writer.executemany(aggregates.INVALIDATE_SQL, cells.invalidate)
        self.last_seq = max(self.last_seq, int(columns.seq[-1]))

    def append_open_interest(self, rows: Sequence[OpenInterest]) -> None:
        self._check_open()
        flat = [value for row in open_interest_rows(rows) for value in row]
        _insert_rows(self._writer, _UPSERT_OI_HEAD, _UPSERT_OI_TAIL, len(OI_COLUMNS), flat)

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("this bulk load is over: append to the store")


class SQLiteStore:
    """History in one SQLite file (see module docstring for the durability contract).

    ``read_only=True`` opens an existing file for reading only (``purpleflea export``): no
    schema changes, no appends, and no lock beyond SQLite's own, so a server (which holds the
    data folder's writer lock) keeps writing meanwhile. The reads see the history as of the
    moment each query starts.
    """

    #: A read runs on this process's reader threads, its CPU counted (``cputime.on_thread``).
    reads_metered = True

    def __init__(
        self,
        path: str | Path,
        *,
        durable: bool = False,
        readers: int = 2,
        read_only: bool = False,
    ) -> None:
        self.path = str(path)
        self.read_only = read_only
        if read_only:
            if self.path == ":memory:":
                raise ValueError("a read-only SQLite store needs a file, not ':memory:'")
            if not Path(self.path).is_file():
                raise FileNotFoundError(f"no history store at {self.path}")
        elif self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._durable = durable
        self._writer = _connect(self.path, durable=durable, read_only=read_only)
        stamped = self._writer.execute("PRAGMA user_version").fetchone()[0]
        try:
            check_schema(stamped, f"SQLite store {self.path}")
        except StoreTooNew:
            self._writer.close()
            raise
        #: The file the writer has open (see StoreFileGone); None: nothing to check.
        self._guard = None if read_only else FileGuard(self.path, "SQLite store")
        self._select = _SELECT
        if not read_only:
            self._writer.executescript(_SCHEMA)
            self._writer.execute(aggregates.FACTOR_TABLE_SQL["sqlite"])
            for statement in aggregates.add_calibration_columns(
                "sqlite", self._columns("coverage_factor")
            ):
                self._writer.execute(statement)
            self._reset_stale_factors()
            self._migrate()
            if self._writer.execute("SELECT 1 FROM rollup_1h LIMIT 1").fetchone() is None:
                self._writer.execute(_BACKFILL_1H)
            if stamped < SCHEMA_VERSION:
                self._writer.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif "coverage" not in self._columns("liquidations"):
            # Read-only, we may not add the column: the select derives it from the exchange.
            self._select = _SELECT.replace(", coverage FROM", f", {coverage_case()} FROM")
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="sqlite-read")
        self._local = threading.local()
        self._last_seq = self._writer.execute(_LAST_SEQ).fetchone()[0]
        # A file written before open interest was kept has no table for it; read-only, we
        # may not create it, and such a history simply has no open interest.
        self._has_oi = not read_only or (
            self._writer.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'open_interest'"
            ).fetchone()
            is not None
        )
        # Likewise a file written before marks were kept: the column is added when writable,
        # and read as 0 (not recorded) when not.
        columns = {row[1] for row in self._writer.execute("PRAGMA table_info(open_interest)")}
        if self._has_oi and "mark_price" not in columns and not read_only:
            self._writer.execute(_ADD_MARK)
            columns.add("mark_price")
        # A read-only file written before the coverage factors were kept has no table for them.
        # A read-only file keeps what it has: its factors are used only if this method made them.
        self._has_factors = not read_only or self._factors_current()
        #: The open hours' coverage factors, reused for a few seconds (store/open_hours.py).
        self._open_hours = OpenHours()
        self._select_oi = _SELECT_OI.format(mark="mark_price" if "mark_price" in columns else "0.0")

    def _factors_current(self) -> bool:
        try:
            found = self._writer.execute(aggregates.METHOD_SQL).fetchone()
        except sqlite3.OperationalError:  # a file from before the cache (or its version) was kept
            return False
        return aggregates.factors_current(found)

    def _reset_stale_factors(self) -> None:
        """Drop the closed hours' factors another version of the estimate computed."""
        self._writer.execute(aggregates.METHOD_TABLE_SQL)
        if self._factors_current():
            return
        self._writer.execute("BEGIN IMMEDIATE")
        try:
            for statement in aggregates.RESET_FACTORS:
                self._writer.execute(statement)
        except BaseException:
            self._writer.execute("ROLLBACK")
            raise
        self._writer.execute("COMMIT")

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self._writer.execute(f"PRAGMA table_info({table})")}

    def _migrate(self) -> None:
        """Bring a store written by an older version up to this schema (see _ADD_COVERAGE)."""
        writer = self._writer
        if "coverage" not in self._columns("liquidations"):
            writer.execute("BEGIN")
            try:
                writer.execute(_ADD_COVERAGE)
                writer.execute(coverage_backfill())
                for table in ("rollup_1m", "rollup_1h"):
                    if "seconds" not in self._columns(table):
                        for statement in _ADD_SECONDS:
                            writer.execute(statement.format(table=table))
                writer.execute("COMMIT")
            except BaseException:
                rollback(writer)
                raise

    # -- writes (event loop thread) ---------------------------------------------------------

    async def append(self, events: Sequence[Liquidation]) -> list[Liquidation]:
        return self.append_now(events)

    def append_now(
        self,
        events: Sequence[Liquidation],
        *,
        also: Callable[[list[Liquidation]], Sequence[tuple[str, Sequence[Any]]]] | None = None,
    ) -> list[Liquidation]:
        """Synchronous append for bulk loaders (the simulator's history, imports).

        Ids already stored (or repeated in the batch) are skipped; a seq that is already
        taken fails the whole batch loudly rather than dropping an event (see
        :meth:`_insert_new`). ``also``: statements (SQL, parameters) made from the events
        inserted, run in the same transaction (the importer's record of imported hours).
        """
        self._check_writable()
        if not events:
            return []
        writer = self._writer
        writer.execute("BEGIN")
        try:
            inserted = self._insert_new(writer, events)
            rollup: dict[tuple[int, str, str, str], _Cell] = {}
            key: tuple[int, str, str, str]
            # One pass per event, so each lookup saved here is saved millions of times in a
            # bulk load.
            for event in inserted:
                ts = event.ts
                key = (ts // 60_000 * 60_000, event.market, event.exchange, event.side)
                cell = rollup.get(key)
                if cell is None:
                    cell = rollup[key] = _Cell()
                cell.count += 1
                cell.usd += event.size_usd
                cell.seconds.add(ts // 1000)
            if inserted:
                _drop_counted_seconds(writer, rollup, inserted[0].seq)
            writer.executemany(
                _ROLLUP, [(*key, c.count, c.usd, len(c.seconds)) for key, c in rollup.items()]
            )
            hourly: dict[tuple[int, str, str, str], list[float]] = {}
            for key, minute_cell in rollup.items():
                minute, market, exchange, side = key
                hour = minute // 3_600_000 * 3_600_000
                cell_1h = hourly.setdefault((hour, market, exchange, side), [0, 0.0, 0])
                cell_1h[0] += minute_cell.count
                cell_1h[1] += minute_cell.usd
                cell_1h[2] += len(minute_cell.seconds)
            writer.executemany(
                _ROLLUP_1H, [(*k, int(c), s, int(b)) for k, (c, s, b) in hourly.items()]
            )
            # New events in an hour change its coverage factors (and those of the next day's
            # hours, whose share estimate reads it): the next aggregate recomputes them.
            writer.executemany(
                aggregates.INVALIDATE_SQL,
                {(market, hour, hour + SHARE_WINDOW_MS) for hour, market, _, _ in hourly},
            )
            for sql, params in also(inserted) if also is not None and inserted else ():
                writer.execute(sql, params)
            writer.execute("COMMIT")
        except BaseException:
            rollback(writer)
            raise
        # The highest seq stored, as the file reopened says: not a dropped duplicate's (a
        # clean stop writes it beside the store, and the next start compares it with this).
        if inserted:
            self._last_seq = max(self._last_seq, inserted[-1].seq)
        return inserted

    def _insert_new(
        self, writer: sqlite3.Connection, events: Sequence[Liquidation]
    ) -> list[Liquidation]:
        """Insert the events whose id is not stored yet (the first of ids repeated in the
        batch); returns them. The first statement of the caller's open transaction.

        Almost every batch is all new, so that is tried first, as one insert that skips a
        stored id instead of a lookup of every id before it (a query per 500 ids, ~1 µs an
        event at crash rates). If any id was skipped, or the insert failed, the transaction
        (holding only that insert) is rolled back and begun again, and the batch goes the
        careful way: look the ids up, insert exactly the new ones with a plain INSERT (so a
        taken seq still fails the batch loudly). Not a savepoint: that would copy every page
        the insert touches into a statement journal.
        """
        rows = [_EVENT_ROW(event) for event in events]
        try:
            added = writer.executemany(_INSERT_NEW_IDS, rows).rowcount
        except sqlite3.IntegrityError:
            added = -1
        if added == len(rows):
            return list(events)
        writer.execute("ROLLBACK")
        writer.execute("BEGIN")
        seen = self.stored_ids([event.id for event in events])
        inserted: list[Liquidation] = []
        new_rows: list[tuple[Any, ...]] = []
        for event, row in zip(events, rows, strict=True):
            if event.id in seen:
                continue
            seen.add(event.id)
            inserted.append(event)
            new_rows.append(row)
        writer.executemany(_INSERT, new_rows)
        return inserted

    def _check_writable(self) -> None:
        if self.read_only:
            raise PermissionError(f"SQLite store {self.path} was opened read-only: cannot append")
        if self._guard is not None:
            self._guard.check()

    def stored_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are stored (bulk loaders ask first, so a duplicate takes no seq)."""
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._writer.execute(
                f"SELECT id FROM liquidations WHERE id IN ({', '.join('?' for _ in chunk)})",
                chunk,
            )
            found.update(row[0] for row in rows)
        return found

    def newest_ts(self, exchange: str, market: str) -> int | None:
        """The latest ``ts`` stored for ``exchange`` and ``market`` (None: none stored): its
        newest minute from the minute rollup (a walk back on its key), then that minute's
        events on the ts index, rather than every event of the market."""
        found = self._writer.execute(
            "SELECT minute FROM rollup_1m WHERE market = ? AND exchange = ? "
            "ORDER BY minute DESC LIMIT 1",
            (market, exchange),
        ).fetchone()
        if found is None:
            return None
        # The unary + keeps SQLite off the market's index (all its history: 0.2 s for BTC
        # at 1M events) for the minute on the ts index (0.1 ms).
        newest = self._writer.execute(
            "SELECT MAX(ts) FROM liquidations WHERE ts >= ? AND ts < ? AND +market = ? "
            "AND +exchange = ?",
            (found[0], found[0] + 60_000, market, exchange),
        ).fetchone()[0]
        return None if newest is None else int(newest)

    def ids_starting_with(self, prefix: str) -> list[str]:
        """The stored ids that start with ``prefix`` (a range on the id index, not a scan)."""
        if not prefix:
            raise ValueError("ids_starting_with: the prefix is empty")
        # Every string that starts with the prefix sorts between it and the prefix with its
        # last character raised by one (SQLite compares text bytewise, as UTF-8 orders code
        # points).
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        rows = self._writer.execute(
            "SELECT id FROM liquidations WHERE id >= ? AND id < ?", (prefix, end)
        )
        return [row[0] for row in rows]

    @contextmanager
    def deferred_indexes(self) -> Iterator[bool]:
        """For a bulk loader filling an *empty* store: the events' history-query indexes are
        dropped for the load and built at the end, one sorted pass each, instead of being
        updated row by row (-30 % of the load's time at a million events, more as they grow).

        Yields whether it deferred them: a store that already holds events keeps its indexes
        (rebuilding them over old history costs more than it saves). They are rebuilt on the
        way out, also after an error; a process killed meanwhile gets them back the next time
        the file is opened (the schema creates whatever index is missing). Queries during the
        load are correct but unindexed.
        """
        self._check_writable()
        writer = self._writer
        if _holds_events(writer):
            yield False
            return
        _drop_history_indexes(writer)
        try:
            yield True
        finally:
            writer.executescript(_SCHEMA)

    @contextmanager
    def bulk_load(self) -> Iterator[SQLiteBulkLoad | None]:
        """For a bulk loader filling an *empty* store (the simulator's history): the whole
        load is one transaction, all or nothing.

        Yields ``None`` for a store that already holds events (append to it as usual).
        Otherwise the yielded loader takes batches of columns (:class:`SQLiteBulkLoad`), in
        one transaction with the journal in ``DELETE`` mode rather than WAL for its duration:
        the new pages go straight into the file, not once into the WAL and again at each
        checkpoint, and the rollback journal holds only the few pages the empty store had.
        The events' history-query indexes are dropped inside it and built at the end, one
        sorted pass each. Leaving the block normally builds them and commits; an error
        (Ctrl-C too) rolls back to the empty store, indexes included; a process killed
        meanwhile leaves a hot journal that SQLite rolls back the next time the file is
        opened, so an interrupted load never leaves a partial history that looks like a
        finished one. The journal is back in WAL mode afterwards either way. Reads of this
        file from other connections wait (``busy_timeout``) and then fail while it runs.
        """
        self._check_writable()
        writer = self._writer
        if _holds_events(writer):
            yield None
            return
        # With a reader's connection open the file stays in WAL mode: still one transaction,
        # still all or nothing, only written twice.
        switched = self.path != ":memory:" and _leave_wal(writer)
        try:
            writer.execute("BEGIN EXCLUSIVE")
            try:
                indexes = _drop_history_indexes(writer)
                loader = SQLiteBulkLoad(writer)
                try:
                    yield loader
                finally:
                    # Outside the transaction its writes would go in unindexed, one by one.
                    loader.closed = True
                # Each index is a sort of the whole table: SQLite's sorter may use helper
                # threads for it (2: 30 days' seven indexes, 16 -> 8 s of the writer's time).
                threads = writer.execute("PRAGMA threads").fetchone()[0]
                writer.execute(f"PRAGMA threads={max(threads, _SORT_THREADS)}")
                try:
                    for sql in indexes:
                        writer.execute(sql)
                finally:
                    writer.execute(f"PRAGMA threads={threads}")
                writer.execute("COMMIT")
            except BaseException:
                rollback(writer)
                raise
        finally:
            if switched:
                writer.execute("PRAGMA journal_mode=WAL")
        self._last_seq = max(self._last_seq, loader.last_seq)

    async def append_cascades(self, alerts: Sequence[CascadeAlert]) -> None:
        self._check_writable()
        if not alerts:
            return
        rows = [(a.seq, a.id, a.status, a.market, a.side, a.updated_at, encode(a)) for a in alerts]
        writer = self._writer
        writer.execute("BEGIN")
        try:
            writer.executemany(
                "INSERT OR IGNORE INTO cascades (seq, id, status, market, side, updated_at, body) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            writer.execute("COMMIT")
        except BaseException:
            rollback(writer)
            raise
        self._last_seq = max(self._last_seq, alerts[-1].seq)

    async def append_open_interest(self, rows: Sequence[OpenInterest]) -> None:
        self._check_writable()
        table_rows = open_interest_rows(rows)
        if not table_rows:
            return
        writer = self._writer
        writer.execute("BEGIN")
        try:
            writer.executemany(_UPSERT_OI, table_rows)
            writer.execute("COMMIT")
        except BaseException:
            rollback(writer)
            raise

    async def last_seq(self) -> int:
        if self.read_only:
            # Another process (the server) is the writer: the value at open would go stale.
            rows = await self._read(_LAST_SEQ, ())
            return int(rows[0][0])
        return int(self._last_seq)

    async def event_times(self) -> tuple[int, int] | None:
        first, last = (await self._read(_EVENT_TIMES, ()))[0]
        return None if first is None else (int(first), int(last))

    # -- reads (worker threads) -------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = _connect(self.path, durable=self._durable, read_only=self.read_only)
            self._local.connection = connection
        return connection

    async def _read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        def run() -> list[tuple[Any, ...]]:
            return self._reader().execute(sql, params).fetchall()

        if self.path == ":memory:":
            return self._writer.execute(sql, params).fetchall()  # one shared in-memory db
        # Counted to the request's CPU meter (the rate limit charges a REST request by it).
        return await asyncio.get_running_loop().run_in_executor(self._readers, on_thread(run))

    async def since(self, seq: int, limit: int = 1000) -> list[Liquidation]:
        rows = await self._read(f"{self._select} WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))
        return [row_to_event(row) for row in rows]

    async def cascades_since(self, seq: int, limit: int = 1000) -> list[CascadeAlert]:
        rows = await self._read(
            "SELECT body FROM cascades WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        )
        return [decode_cascade(row[0]) for row in rows]

    async def cascades(
        self, *, active: bool | None = None, markets: Sequence[str] = (), limit: int = 100
    ) -> list[CascadeAlert]:
        clauses = ["c.seq = (SELECT MAX(seq) FROM cascades WHERE id = c.id)"]
        params: list[Any] = []
        if active is True:
            clauses.append("c.status != 'exhausted'")
        elif active is False:
            clauses.append("c.status = 'exhausted'")
        if markets:
            clauses.append(f"c.market IN ({', '.join('?' for _ in markets)})")
            params.extend(markets)
        rows = await self._read(
            f"SELECT c.body FROM cascades c WHERE {' AND '.join(clauses)} "
            "ORDER BY c.seq DESC LIMIT ?",
            [*params, limit],
        )
        return [decode_cascade(row[0]) for row in rows]

    async def open_interest(
        self, start_ms: int, end_ms: int, *, after: OpenInterest | None = None, limit: int = 10_000
    ) -> list[OpenInterest]:
        if not self._has_oi:
            return []
        first = start_ms if after is None else max(start_ms, after.ts)
        sql = self._select_oi
        params: list[Any] = [first // OI_MINUTE_MS * OI_MINUTE_MS, end_ms, start_ms, end_ms]
        if after is not None:
            sql += " AND (ts, market) > (?, ?)"
            params += [after.ts, after.market]
        rows = await self._read(sql + _ORDER_OI, [*params, limit])
        return [
            OpenInterest(ts=ts, market=market, open_interest_usd=usd, mark_price=mark)
            for ts, market, usd, mark in rows
        ]

    async def replay(self, after: int, query: Query, limit: int = 1000) -> ReplayPage:
        return await replay_page(self._read, self._select, query, "sqlite", after, limit)

    async def query(self, query: Query) -> Page:
        page = history_page(self._select, query, "sqlite", walk_ts=await self._walks_ts(query))
        rows = await self._read(page.sql, page.params)
        events = [row_to_event(row) for row in rows[: query.limit]]
        return Page.of(events, len(rows) > query.limit, query.order)

    async def _walks_ts(self, query: Query) -> bool:
        """Whether an ``order="ts"`` page is read along the ts index (sql.where's
        ``walk_ts``): unless it asks for markets that hold fewer than
        :data:`~purpleflea.store.sql.TS_WALK_MATCHES` events in all (counted along their
        index, ~1 ms), whose events are then found by it and sorted. An exchange, a side or
        a coverage is never that rare; a market may be (a typo, a coin just listed)."""
        if query.order != "ts":
            return False
        if not query.markets:
            return True
        markets = where(Query(markets=query.markets), "sqlite")
        rows = await self._read(
            f"SELECT count(*) FROM (SELECT 1 FROM liquidations{markets.sql} LIMIT ?)",
            [*markets.params, TS_WALK_MATCHES],
        )
        return bool(rows[0][0] >= TS_WALK_MATCHES)

    async def aggregate(
        self, interval: Interval, group_by: GroupBy, query: Query, *, estimate: bool = True
    ) -> list[Bucket]:
        return await aggregates.aggregate(
            self._read,
            None if self.read_only else self._save_factors,
            interval,
            group_by,
            query,
            "sqlite",
            hourly=True,
            cached=self._has_factors,
            estimate=estimate,
            recent=self._open_hours,
        )

    async def _save_factors(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """Store closed hours' coverage factors on the writer (serialized with appends), in
        chunks that each yield to the loop: a year's worth must not stall ingest."""
        writer = self._writer
        for start in range(0, len(rows), _FACTOR_CHUNK):
            writer.execute("BEGIN")
            try:
                writer.executemany(sql, rows[start : start + _FACTOR_CHUNK])
                writer.execute("COMMIT")
            except BaseException:
                rollback(writer)
                raise
            await asyncio.sleep(0)

    async def close(self) -> None:
        self._readers.shutdown(wait=True)
        self._writer.close()
