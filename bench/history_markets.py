"""History pages of several markets in the default (seq) order: the one ``market IN (...)``
statement the stores ran before (``sql.where`` + ``sql.order_by``) against the merge of one
index walk per market they run now (``sql.history_page``), on the same store, alternately.

Run (from the repository root)::

    nice -n 10 .venv/bin/python bench/history_markets.py --db /tmp/pf-history-by-time-1000000.sqlite
    nice -n 10 .venv/bin/python bench/history_markets.py --db /tmp/pf-history-10m/purpleflea.sqlite
    nice -n 10 .venv/bin/python bench/history_markets.py --db ... --pg postgresql://127.0.0.1/<db>

The markets are the store's own, by their share of events (a count over the market index
first). SQLite: CPU per page (``time.process_time``; the statements run on this thread).
PostgreSQL (``--pg``; the database's ``liquidations`` is filled from ``--db`` by ``COPY`` when
it holds a different number of events): the server backend's CPU per page, read in /proc.
Each statement runs once to warm the caches, then ``--repeat`` times (``--pg-repeat``), old
and new alternately, twice; both must return the same rows (checked).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg

from procfs import cpu_seconds
from purpleflea.store.base import COLUMNS, Query
from purpleflea.store.postgres import PostgresStore
from purpleflea.store.sql import history_page, order_by, where


def shapes(by_share: list[str]) -> dict[str, Query]:
    """The queries, over the store's markets ranked by their share of events."""
    big, second, small = by_share[0], by_share[1], by_share[len(by_share) // 2 :]
    return {
        f"2 biggest ({big} + {second})": Query(markets=(big, second)),
        "2 biggest, cursor 100k seqs back": Query(markets=(big, second), before_seq=-100_000),
        f"biggest + 2 small ({small[0]}, {small[1]})": Query(markets=(big, small[0], small[1])),
        "2 small coins": Query(markets=(small[0], small[1])),
        "2 biggest, shorts": Query(markets=(big, second), sides=("short",)),
        "2 biggest, min_usd=250k": Query(markets=(big, second), min_usd=250_000),
        "5 biggest": Query(markets=tuple(by_share[:5])),
        "a small coin + a market with no event": Query(markets=(small[2], "NONE-PERP")),
    }


def statements(select: str, query: Query, dialect: Any) -> tuple[Any, Any]:
    old = where(query, dialect)
    mark = "?" if dialect == "sqlite" else "%s"
    before = (f"{select}{old.sql}{order_by(query)} LIMIT {mark}", [*old.params, query.limit + 1])
    new = history_page(select, query, dialect)
    return before, (new.sql, new.params)


def measure(
    run: Callable[[str, Sequence[Any]], list[Any]],
    cpu: Callable[[], float],
    sql: str,
    params: Sequence[Any],
    repeat: int,
) -> tuple[float, list[Any]]:
    rows = run(sql, params)
    started = cpu()
    for _ in range(repeat):
        run(sql, params)
    return (cpu() - started) / repeat * 1000, rows


def bench(
    label: str,
    run: Callable[[str, Sequence[Any]], list[Any]],
    cpu: Callable[[], float],
    select: str,
    dialect: Any,
    by_share: list[str],
    last_seq: int,
    repeat: int,
) -> None:
    print(f"{label}: CPU ms per 100-event page, before (market IN) -> after (merged walks)")
    for name, shape in shapes(by_share).items():
        before_seq = None if shape.before_seq is None else last_seq + shape.before_seq
        query = Query(
            markets=shape.markets,
            sides=shape.sides,
            min_usd=shape.min_usd,
            before_seq=before_seq,
        )
        old, new = statements(select, query, dialect)
        times: dict[str, list[float]] = {"old": [], "new": []}
        for _ in range(2):  # alternately, twice: the load moves
            for which, (sql, params) in (("old", old), ("new", new)):
                spent, rows = measure(run, cpu, sql, params, repeat)
                times[which].append(spent)
                if which == "old":
                    expected = rows
                elif rows != expected:
                    raise SystemExit(f"{label} {name}: the merged page differs from the old one")
        print(
            f"  {name:48s} "
            f"{' / '.join(f'{t:7.2f}' for t in times['old'])} -> "
            f"{' / '.join(f'{t:6.2f}' for t in times['new'])} ms",
            flush=True,
        )


def ranked(connection: sqlite3.Connection) -> list[str]:
    rows = connection.execute(
        "SELECT market, count(*) FROM liquidations GROUP BY market ORDER BY 2 DESC"
    ).fetchall()
    return [market for market, _ in rows]


async def fill_postgres(dsn: str, db: Path, stored: int) -> None:
    """The store's schema in ``dsn`` and, unless it holds ``stored`` events, ``db``'s events."""
    store = await PostgresStore.connect(dsn)
    await store.close()
    with psycopg.connect(dsn, autocommit=True) as pg:
        if pg.execute("SELECT count(*) FROM liquidations").fetchone() == (stored,):
            return
        pg.execute("TRUNCATE liquidations")
        source = sqlite3.connect(db)
        started = time.perf_counter()
        with pg.cursor().copy(f"COPY liquidations ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in source.execute(f"SELECT {', '.join(COLUMNS)} FROM liquidations"):
                copy.write_row(row)
        pg.execute("ANALYZE liquidations")
        print(f"copied {stored:,} events into PostgreSQL in {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--pg", default=None)
    parser.add_argument("--repeat", type=int, default=5)
    # /proc counts CPU in 10 ms ticks: a backend's page of ~1 ms needs many.
    parser.add_argument("--pg-repeat", type=int, default=100)
    args = parser.parse_args()
    connection = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    by_share = ranked(connection)
    last_seq = connection.execute("SELECT MAX(seq) FROM liquidations").fetchone()[0]
    stored = connection.execute("SELECT count(*) FROM liquidations").fetchone()[0]
    print(f"{args.db}: {stored:,} events, {len(by_share)} markets; load {os.getloadavg()}")
    select = f"SELECT {', '.join(COLUMNS)} FROM liquidations"

    def run_sqlite(sql: str, params: Sequence[Any]) -> list[Any]:
        return connection.execute(sql, params).fetchall()

    bench(
        "SQLite", run_sqlite, time.process_time, select, "sqlite", by_share, last_seq, args.repeat
    )
    if args.pg:
        asyncio.run(fill_postgres(args.pg, args.db, stored))
        with psycopg.connect(args.pg, autocommit=True) as pg:
            row = pg.execute("SELECT pg_backend_pid()").fetchone()
            assert row is not None
            backend = int(row[0])

            def run_pg(sql: str, params: Sequence[Any]) -> list[Any]:
                return pg.execute(sql, params).fetchall()  # type: ignore[arg-type]

            bench(
                "PostgreSQL (server backend CPU)",
                run_pg,
                lambda: cpu_seconds(backend),
                select,
                "postgres",
                by_share,
                last_seq,
                args.pg_repeat,
            )
    print(f"load {os.getloadavg()}")


if __name__ == "__main__":
    main()
