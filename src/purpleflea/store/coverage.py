"""Coverage records beside the history: per exchange-hour uptime and pressure, the gaps, and
the hours that came in by import (:class:`ImportedHour`).

Kept in the history store's database (the SQLite file of a single machine, or the shared
PostgreSQL of a scale-out), so every API node serves what the ingest node recorded. Their
own small interface, as the webhooks have: the history contract stays about events.

The statements are written once, with ``?`` placeholders and only SQL both dialects run
(``ON CONFLICT ... excluded``, ``CASE``); each backend runs a list of them in one
transaction. Hour rows arrive as deltas (:class:`~purpleflea.ingest.uptime.HourRow`): the
store adds them up, so a restart within an hour adds to it instead of overwriting it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from purpleflea.ingest.uptime import HOUR_MS, Gap, HourRow
from purpleflea.model import Liquidation
from purpleflea.store.sidecar import SQLiteStatements, Statements

_HOUR_COLUMNS = "exchange, hour_ms, up_ms, watched_ms, connections, symbol_seconds, symbols"
_ADD_HOUR = f"""
INSERT INTO coverage_hours ({_HOUR_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (exchange, hour_ms) DO UPDATE SET
    up_ms = coverage_hours.up_ms + excluded.up_ms,
    watched_ms = coverage_hours.watched_ms + excluded.watched_ms,
    connections = CASE WHEN excluded.connections > coverage_hours.connections
        THEN excluded.connections ELSE coverage_hours.connections END,
    symbol_seconds = CASE WHEN excluded.symbol_seconds IS NULL
        THEN coverage_hours.symbol_seconds
        ELSE COALESCE(coverage_hours.symbol_seconds, 0) + excluded.symbol_seconds END,
    symbols = CASE WHEN excluded.symbols > COALESCE(coverage_hours.symbols, -1)
        THEN excluded.symbols ELSE coverage_hours.symbols END
"""
_GAP_COLUMNS = "id, exchange, connection, start_ms, end_ms, reason, repair, repaired_events, note"
_PUT_GAP = f"""
INSERT INTO coverage_gaps ({_GAP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    end_ms = excluded.end_ms,
    repair = excluded.repair,
    repaired_events = excluded.repaired_events,
    note = excluded.note
"""


_IMPORT_COLUMNS = "exchange, hour_ms, coverage, events, first_ms, last_ms"
_ADD_IMPORT = f"""
INSERT INTO coverage_imports ({_IMPORT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (exchange, hour_ms, coverage) DO UPDATE SET
    events = coverage_imports.events + excluded.events,
    first_ms = CASE WHEN excluded.first_ms < coverage_imports.first_ms
        THEN excluded.first_ms ELSE coverage_imports.first_ms END,
    last_ms = CASE WHEN excluded.last_ms > coverage_imports.last_ms
        THEN excluded.last_ms ELSE coverage_imports.last_ms END
"""


class ImportedHour(msgspec.Struct, frozen=True, kw_only=True):
    """Events of one exchange and UTC hour that came in by ``purpleflea import``: how many,
    the first and last one's ``ts``, and their ``coverage`` tag. A recording holds no
    connection sessions, so nothing says whether its recorder ran all hour: an hour's
    ``first_ms``/``last_ms`` bound what it shows, and ``coverage`` is the venue's feed class
    (a recording of a throttled feed is no more complete than the feed)."""

    exchange: str
    hour_ms: int
    coverage: str
    events: int
    first_ms: int
    last_ms: int


def imported_hours(events: Iterable[Liquidation]) -> list[ImportedHour]:
    """``events`` summed per exchange, UTC hour and coverage tag."""
    found: dict[tuple[str, int, str], list[int]] = {}
    for event in events:
        key = (event.exchange, event.ts - event.ts % HOUR_MS, event.coverage)
        cell = found.get(key)
        if cell is None:
            found[key] = [1, event.ts, event.ts]
        else:
            cell[0] += 1
            cell[1] = min(cell[1], event.ts)
            cell[2] = max(cell[2], event.ts)
    return [
        ImportedHour(
            exchange=exchange,
            hour_ms=hour,
            coverage=coverage,
            events=count,
            first_ms=first,
            last_ms=last,
        )
        for (exchange, hour, coverage), (count, first, last) in sorted(found.items())
    ]


def imported_statements(rows: Sequence[ImportedHour]) -> list[tuple[str, tuple[object, ...]]]:
    """The statements that add ``rows`` to the imported hours (SQLite's placeholders): for
    the importer, which runs them in the transaction that stores the events, so a process
    killed between the two cannot leave stored events that no imported hour counts (a
    second run skips them as already stored)."""
    return [
        (_ADD_IMPORT, (r.exchange, r.hour_ms, r.coverage, r.events, r.first_ms, r.last_ms))
        for r in rows
    ]


class CoverageStore:
    """Records and reads coverage; the same statements on SQLite and PostgreSQL."""

    def __init__(self, backend: Statements) -> None:
        self.backend = backend

    async def record(self, hours: Sequence[HourRow], gaps: Sequence[Gap]) -> None:
        """Add hour deltas and upsert gaps, in one transaction."""
        statements: list[tuple[str, Sequence[Any]]] = [
            (
                _ADD_HOUR,
                (
                    h.exchange,
                    h.hour_ms,
                    h.up_ms,
                    h.watched_ms,
                    h.connections,
                    h.symbol_seconds,
                    h.symbols,
                ),
            )
            for h in hours
        ]
        statements.extend(
            (
                _PUT_GAP,
                (
                    g.id,
                    g.exchange,
                    g.connection,
                    g.start_ms,
                    g.end_ms,
                    g.reason,
                    g.repair,
                    g.repaired_events,
                    g.note,
                ),
            )
            for g in gaps
        )
        if statements:
            await self.backend.run(statements)

    async def record_imported(self, rows: Sequence[ImportedHour]) -> None:
        """Add imported events' hours (see :func:`imported_hours`), in one transaction."""
        if rows:
            await self.backend.run(imported_statements(rows))

    async def imported(
        self, exchanges: Sequence[str], start_ms: int, end_ms: int, limit: int
    ) -> list[ImportedHour]:
        """Imported hours with ``start_ms <= hour_ms < end_ms`` (of ``exchanges``, or all), by
        exchange then hour."""
        where, params = _exchanges(exchanges)
        sql = (
            f"SELECT {_IMPORT_COLUMNS} FROM coverage_imports WHERE hour_ms >= ? AND hour_ms < ?"
            f"{where} ORDER BY exchange, hour_ms, coverage LIMIT ?"
        )
        (rows,) = await self.backend.run([(sql, (start_ms, end_ms, *params, limit))])
        return [
            ImportedHour(
                exchange=r[0],
                hour_ms=int(r[1]),
                coverage=r[2],
                events=int(r[3]),
                first_ms=int(r[4]),
                last_ms=int(r[5]),
            )
            for r in rows
        ]

    async def hours(
        self, exchanges: Sequence[str], start_ms: int, end_ms: int, limit: int
    ) -> list[HourRow]:
        """Hour rows with ``start_ms <= hour_ms < end_ms`` (of ``exchanges``, or all), by
        exchange then hour."""
        where, params = _exchanges(exchanges)
        sql = (
            f"SELECT {_HOUR_COLUMNS} FROM coverage_hours WHERE hour_ms >= ? AND hour_ms < ?"
            f"{where} ORDER BY exchange, hour_ms LIMIT ?"
        )
        (rows,) = await self.backend.run([(sql, (start_ms, end_ms, *params, limit))])
        return [
            HourRow(
                exchange=r[0],
                hour_ms=int(r[1]),
                up_ms=int(r[2]),
                watched_ms=int(r[3]),
                connections=int(r[4]),
                symbol_seconds=None if r[5] is None else int(r[5]),
                symbols=None if r[6] is None else int(r[6]),
            )
            for r in rows
        ]

    async def gaps(
        self, exchanges: Sequence[str], start_ms: int, end_ms: int, limit: int
    ) -> list[Gap]:
        """Gaps overlapping ``[start_ms, end_ms)`` (still-open ones too), oldest first."""
        where, params = _exchanges(exchanges)
        sql = (
            f"SELECT {_GAP_COLUMNS} FROM coverage_gaps "
            f"WHERE start_ms < ? AND (end_ms IS NULL OR end_ms >= ?){where} "
            "ORDER BY start_ms, id LIMIT ?"
        )
        (rows,) = await self.backend.run([(sql, (end_ms, start_ms, *params, limit))])
        return [
            Gap(
                id=r[0],
                exchange=r[1],
                connection=r[2],
                start_ms=int(r[3]),
                end_ms=None if r[4] is None else int(r[4]),
                reason=r[5],
                repair=r[6],
                repaired_events=int(r[7]),
                note=r[8],
            )
            for r in rows
        ]

    async def close(self) -> None:
        await self.backend.close()


def _exchanges(exchanges: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    if not exchanges:
        return "", ()
    return f" AND exchange IN ({', '.join('?' for _ in exchanges)})", tuple(exchanges)


SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS coverage_hours (
    exchange TEXT NOT NULL,
    hour_ms INTEGER NOT NULL,
    up_ms INTEGER NOT NULL,
    watched_ms INTEGER NOT NULL,
    connections INTEGER NOT NULL,
    symbol_seconds INTEGER,
    symbols INTEGER,
    PRIMARY KEY (exchange, hour_ms)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS coverage_gaps (
    id TEXT PRIMARY KEY,
    exchange TEXT NOT NULL,
    connection TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER,
    reason TEXT NOT NULL,
    repair TEXT NOT NULL,
    repaired_events INTEGER NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS coverage_gaps_start ON coverage_gaps (start_ms);
CREATE TABLE IF NOT EXISTS coverage_imports (
    exchange TEXT NOT NULL,
    hour_ms INTEGER NOT NULL,
    coverage TEXT NOT NULL,
    events INTEGER NOT NULL,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    PRIMARY KEY (exchange, hour_ms, coverage)
) WITHOUT ROWID;
"""


def open_coverage_store(url: str) -> CoverageStore:
    """The coverage store in the database the history store ``url`` names (see
    :func:`purpleflea.store.factory.open_store`). PostgreSQL connects on first use."""
    from purpleflea.store.factory import is_postgres, sqlite_path  # noqa: PLC0415

    if is_postgres(url):
        from purpleflea.store.coverage_postgres import statements  # noqa: PLC0415

        return CoverageStore(statements(url))
    return CoverageStore(SQLiteStatements(sqlite_path(url), SQLITE_SCHEMA))
