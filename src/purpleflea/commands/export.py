"""``purpleflea export``: stored liquidations to CSV or Parquet, straight from the store.

Reads the SQLite history read-only (no writer lock: a running server can keep writing), in
pages of ascending ``seq``, so memory stays flat however large the store. Columns are the event
schema's fields in order (``id, seq, exchange, symbol, market, side, price, quantity,
size_usd, ts, received_at, cascade_score``); ``purpleflea import`` reads both files back.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from purpleflea.history_io import COLUMNS, event_row
from purpleflea.model import Liquidation

DB_NAME = "purpleflea.sqlite"
PAGE = 10_000


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "export",
        help="export stored liquidations to CSV or Parquet",
        description="Write stored liquidations (ascending seq) to a CSV or Parquet file.",
    )
    parser.add_argument("--format", choices=("csv", "parquet"), required=True)
    parser.add_argument("--out", type=Path, required=True, help="file to write")
    parser.add_argument("--market", action="append", help="only this market (repeatable)")
    parser.add_argument("--start", type=int, help="events with ts >= this, ms since the epoch")
    parser.add_argument("--end", type=int, help="events with ts < this, ms since the epoch")
    parser.add_argument(
        "--data-dir", type=Path, default=Path("data"), help="storage folder (default ./data)"
    )
    parser.set_defaults(run=run)


def iter_events(
    db_path: Path,
    *,
    markets: tuple[str, ...] = (),
    start: int | None = None,
    end: int | None = None,
    page: int = PAGE,
) -> Iterator[list[Liquidation]]:
    """Pages of stored events, ascending ``seq``, read through a read-only connection."""
    if not db_path.is_file():
        raise FileNotFoundError(f"no history store at {db_path}")
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        clauses: list[str] = ["seq > ?"]
        params: list[object] = []
        if markets:
            clauses.append(f"market IN ({', '.join('?' for _ in markets)})")
            params.extend(markets)
        if start is not None:
            clauses.append("ts >= ?")
            params.append(start)
        if end is not None:
            clauses.append("ts < ?")
            params.append(end)
        sql = (
            f"SELECT {', '.join(COLUMNS)} FROM liquidations WHERE {' AND '.join(clauses)} "
            "ORDER BY seq LIMIT ?"
        )
        after = 0
        while True:
            rows = connection.execute(sql, [after, *params, page]).fetchall()
            if not rows:
                return
            yield [Liquidation(**dict(zip(COLUMNS, row, strict=True))) for row in rows]
            after = rows[-1][COLUMNS.index("seq")]
    finally:
        connection.close()


def pyarrow_module() -> Any:
    """``pyarrow``, imported on first use (only Parquet needs it; it ships no type stubs)."""
    return importlib.import_module("pyarrow")


def parquet_module() -> Any:
    """``pyarrow.parquet``, imported on first use."""
    return importlib.import_module("pyarrow.parquet")


def parquet_schema() -> Any:
    """The Parquet columns (a ``pyarrow.Schema``): the event schema with explicit types."""
    pa = pyarrow_module()

    types: dict[str, Any] = {
        "id": pa.string(),
        "seq": pa.int64(),
        "exchange": pa.string(),
        "symbol": pa.string(),
        "market": pa.string(),
        "side": pa.string(),
        "price": pa.float64(),
        "quantity": pa.float64(),
        "size_usd": pa.float64(),
        "ts": pa.int64(),
        "received_at": pa.int64(),
        "cascade_score": pa.int8(),
    }
    return pa.schema([(name, types[name]) for name in COLUMNS])


def write_csv(pages: Iterator[list[Liquidation]], out: Path) -> int:
    written = 0
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for events in pages:
            # repr() of a float round-trips exactly, so import reads back the same bits.
            writer.writerows(
                [repr(v) if isinstance(v, float) else v for v in event_row(e)] for e in events
            )
            written += len(events)
    return written


def write_parquet(pages: Iterator[list[Liquidation]], out: Path) -> int:
    pa, pq = pyarrow_module(), parquet_module()
    schema = parquet_schema()
    written = 0
    with pq.ParquetWriter(out, schema) as writer:
        for events in pages:
            columns = {name: [getattr(e, name) for e in events] for name in COLUMNS}
            writer.write_table(pa.Table.from_pydict(columns, schema=schema))
            written += len(events)
    return written


def run(args: argparse.Namespace) -> int:
    if args.start is not None and args.end is not None and args.end <= args.start:
        print(f"purpleflea export: --end ({args.end}) must be after --start", file=sys.stderr)
        return 2
    db_path = args.data_dir / DB_NAME
    if not db_path.is_file():
        print(f"purpleflea export: no history store at {db_path}", file=sys.stderr)
        return 2
    pages = iter_events(
        db_path,
        markets=tuple(m.upper() for m in args.market or ()),
        start=args.start,
        end=args.end,
    )
    write = write_csv if args.format == "csv" else write_parquet
    try:
        written = write(pages, args.out)
    except sqlite3.Error as exc:
        print(f"purpleflea export: {exc}", file=sys.stderr)
        return 2
    print(f"exported {written:,} events to {args.out} ({args.format})")
    return 0
