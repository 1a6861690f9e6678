"""``purpleflea export``: stored liquidations to CSV or Parquet, straight from the store.

Reads through the :class:`~purpleflea.store.Store` interface, so the history can live in the
data folder's SQLite file (opened read-only, without the writer lock: a running server can keep
writing) or in PostgreSQL (``--store postgresql://...``, as ``purpleflea serve`` names it).
Events come in pages of ascending ``seq``, so memory stays flat however large the store, and
the export is the history as of its start: events stored meanwhile are left for the next one.
Columns are the event schema's fields in order (``id, seq, exchange, symbol, market, side,
price, quantity, size_usd, ts, received_at, cascade_score, coverage``); ``purpleflea import``
reads both files back.
"""

from __future__ import annotations

import argparse
import csv
import glob
import importlib
import os
import secrets
import sqlite3
import stat
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

from purpleflea.clock import utc_iso
from purpleflea.commands.when import TIME_HELP, time_arg
from purpleflea.formatting import printable
from purpleflea.history_io import COLUMNS, event_row
from purpleflea.model import Liquidation, market_name, names_problem
from purpleflea.stopping import run_stoppable
from purpleflea.store.base import Query, Store
from purpleflea.store.factory import is_postgres, open_store, redacted

DB_NAME = "purpleflea.sqlite"
PAGE = 10_000


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "export",
        help="export stored liquidations to CSV or Parquet",
        description="Write stored liquidations (ascending seq) to a CSV or Parquet file.",
    )
    parser.add_argument("--format", choices=("csv", "parquet"), required=True)
    parser.add_argument(
        "--out", type=Path, required=True, help="file to write (missing folders are created)"
    )
    parser.add_argument("--market", action="append", help="only this market (repeatable)")
    parser.add_argument("--start", type=time_arg, help=f"events with ts >= this: {TIME_HELP}")
    parser.add_argument("--end", type=time_arg, help=f"events with ts < this: {TIME_HELP}")
    parser.add_argument(
        "--data-dir", type=Path, default=Path("data"), help="storage folder (default ./data)"
    )
    parser.add_argument(
        "--store",
        metavar="URL",
        help="history store: postgresql://user@host:5432/db, as given to `purpleflea serve` "
        "(default: the SQLite file in --data-dir)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


async def iter_events(
    store: Store,
    *,
    markets: tuple[str, ...] = (),
    start: int | None = None,
    end: int | None = None,
    page: int = PAGE,
) -> AsyncIterator[list[Liquidation]]:
    """Pages of ``store``'s events as of the call, ascending ``seq``, at most ``page`` each."""
    if page < 1:
        raise ValueError(f"export page size must be at least 1, got {page}")
    # Pinned first: a server may append while the export runs, and the filtered walk below
    # reads each page twice, so its page boundaries must not move in between.
    last = await store.last_seq()
    if not markets and start is None and end is None:
        after = 0
        while True:
            events = [e for e in await store.since(after, page) if e.seq <= last]
            if not events:
                return
            yield events
            after = events[-1].seq
    # Store.query does the filtering (with each backend's index choices) but pages newest
    # first. Walking back once keeps only each page's seq bound (one int per page, so memory
    # stays flat); the pages are then read again oldest first. The oldest one is in hand.
    query = Query(markets=markets, start_ms=start, end_ms=end, limit=page)
    bound = last + 1
    bounds: list[int] = []
    result = await store.query(msgspec.structs.replace(query, before_seq=bound))
    while result.next_cursor is not None:
        bounds.append(bound)
        bound = result.events[-1].seq  # the page's next_cursor in seq order
        result = await store.query(msgspec.structs.replace(query, before_seq=bound))
    if result.events:
        yield result.events[::-1]
    for upper in reversed(bounds):
        result = await store.query(msgspec.structs.replace(query, before_seq=upper))
        yield result.events[::-1]


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
        "coverage": pa.string(),
        "cascade_score": pa.int8(),
    }
    return pa.schema([(name, types[name]) for name in COLUMNS])


async def with_progress(
    pages: AsyncIterator[list[Liquidation]], last_seq: int
) -> AsyncIterator[list[Liquidation]]:
    """``pages`` as they come, drawing on stderr how far (in seqs up to ``last_seq``, as
    ``backtest`` counts) the export has read."""
    from purpleflea.progress import Progress  # noqa: PLC0415

    with Progress(last_seq, "export", unit="seq") as bar:
        async for events in pages:
            bar.advance(events[-1].seq - bar.done)
            yield events
        # Read to the end: an --end (or a market) before the last seq stops the pages early.
        bar.advance(bar.total - bar.done)


class Refused:
    """The events an export leaves out: their names are ones the names check refuses
    (:func:`~purpleflea.model.names_problem`: terminal escapes, invisible characters, a
    spreadsheet formula), stored before ingest and import checked them. Written into a CSV
    they reached a spreadsheet or a terminal as they were."""

    def __init__(self) -> None:
        self.count = 0
        self.first: str | None = None  # the first one's problem

    async def servable(
        self, pages: AsyncIterator[list[Liquidation]]
    ) -> AsyncIterator[list[Liquidation]]:
        """``pages`` without those events (a page left empty is not yielded)."""
        async for events in pages:
            kept = []
            for event in events:
                problem = names_problem(event.market, event.symbol, event.exchange, event.id)
                if problem is None:
                    kept.append(event)
                    continue
                self.count += 1
                if self.first is None:
                    self.first = f"seq {event.seq}: {problem}"
            if kept:
                yield kept

    def line(self) -> str:
        """What the command says about them (every character printable)."""
        return printable(
            f"purpleflea export: {self.count:,} events not exported: their names are refused "
            f"since ingest and import check them (stored before that), first {self.first}"
        )


async def write_csv(pages: AsyncIterator[list[Liquidation]], out: Path) -> int:
    written = 0
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        async for events in pages:
            # repr() of a float round-trips exactly, so import reads back the same bits.
            writer.writerows(
                [repr(v) if isinstance(v, float) else v for v in event_row(e)] for e in events
            )
            written += len(events)
    return written


async def write_parquet(pages: AsyncIterator[list[Liquidation]], out: Path) -> int:
    pa, pq = pyarrow_module(), parquet_module()
    schema = parquet_schema()
    written = 0
    with pq.ParquetWriter(out, schema) as writer:
        async for events in pages:
            columns = {name: [getattr(e, name) for e in events] for name in COLUMNS}
            writer.write_table(pa.Table.from_pydict(columns, schema=schema))
            written += len(events)
    return written


def _read_errors(url: str) -> tuple[type[Exception], ...]:
    """What opening or reading ``url`` raises when the store, not this code, is at fault."""
    # OSError covers a missing SQLite file and an unreachable PostgreSQL (ConnectionError).
    errors: tuple[type[Exception], ...] = (sqlite3.Error, OSError, ValueError)
    if is_postgres(url):
        import psycopg  # noqa: PLC0415 - only a PostgreSQL export loads the driver

        errors = (*errors, psycopg.Error)
    return errors


async def _export(args: argparse.Namespace, url: str, refused: Refused) -> tuple[int, str]:
    """Events written, and why none when a time window matched none (else "")."""
    # The store opens before the output file is created: a wrong store leaves no empty file.
    store = await open_store(url, read_only=True)
    try:
        pages = iter_events(
            store,
            markets=tuple(args.market or ()),
            start=args.start,
            end=args.end,
        )
        last_seq = await store.last_seq()
        if not args.no_progress and last_seq:
            pages = with_progress(pages, last_seq)
        pages = refused.servable(pages)
        write = write_csv if args.format == "csv" else write_parquet
        if args.out.is_dir():
            example = args.out / f"liquidations.{args.format}"
            raise ValueError(f"--out {args.out}: a folder: name the file to write (e.g. {example})")
        written = await _written_whole(write, pages, args.out)
        if written or (args.start is None and args.end is None):
            return written, ""
        times = await store.event_times()
        if times is None:
            return written, ": the store holds no events"
        first, last = (utc_iso(ms) for ms in times)
        markets = ", ".join(args.market or ())
        what, of_all = (f"no event of {markets}", " (all markets)") if markets else ("none", "")
        return written, (
            f": {what} in that window; the store's events{of_all} run from {first} to {last}"
        )
    finally:
        await store.close()


async def _written_whole(
    write: Callable[[AsyncIterator[list[Liquidation]], Path], Awaitable[int]],
    pages: AsyncIterator[list[Liquidation]],
    out: Path,
) -> int:
    """``write`` into a hidden file beside ``out``, renamed to ``out`` once it is whole: an
    export stopped midway (Ctrl-C, SIGTERM, a store error) left a shorter file at ``out``
    that read as a whole export (its CSV cut at a row). Stopped, the partial file is removed
    and a file already at ``out`` is left as it was. A symbolic link is kept: the file it
    names is the one written. Each export has a partial file of its own
    (:func:`_own_partial`): two exports to one ``out`` at once each write a whole file, and
    ``out`` is the one renamed last."""
    if out.exists() and not out.is_file():  # /dev/stdout, a pipe: written as it goes
        return await write(pages, out)
    given = out
    if out.is_symlink():  # written into the file it names (the rename would replace the link)
        out = out.resolve()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)  # `--out exports/day1.csv` just works
        _remove_dead_partials(out)
        # The mode of the file it replaces, from its first byte: an owner's chmod 600 was lost
        # to the umask's 644 (the file written over in place kept its mode).
        partial = _own_partial(out, 0o600 if out.exists() else 0o666)
    except OSError as exc:  # named as given: its error named the hidden partial file
        raise ValueError(
            f"--out {given}: cannot write a file there: {exc.strerror or exc}"
        ) from None
    try:
        if out.exists():
            partial.chmod(stat.S_IMODE(out.stat().st_mode))
        written = await write(pages, partial)
        partial.replace(out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return written


def _own_partial(out: Path, mode: int) -> Path:
    """A new empty file beside ``out`` (the same folder: the rename is atomic) that no other
    export writes: ``.NAME.<pid>-<random>.partial``, created exclusively with ``mode`` (less
    the umask)."""
    partial = out.with_name(f".{out.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
    return partial


def _remove_dead_partials(out: Path) -> None:
    """Remove the partial files of ``out`` left by exports killed outright (SIGKILL, a
    crash: no exit path ran), each named after its process (:func:`_own_partial`): those
    of processes that no longer run. A live export's file, or one that cannot be told, stays."""
    for leftover in out.parent.glob(f".{glob.escape(out.name)}.*-*.partial"):
        pid = leftover.name[len(out.name) + 2 :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            leftover.unlink(missing_ok=True)
        except OSError:  # alive under another user
            continue


def _is_stdout(out: Path) -> bool:
    """Whether ``out`` is the file this process's stdout writes to (``/dev/stdout``, or its
    file by name)."""
    try:
        mine, named = os.fstat(sys.stdout.fileno()), out.stat()
    except (OSError, ValueError, AttributeError):  # no stdout file (captured, closed)
        return False
    return (mine.st_dev, mine.st_ino) == (named.st_dev, named.st_ino)


def run(args: argparse.Namespace) -> int:
    if args.start is not None and args.end is not None and args.end <= args.start:
        print(f"purpleflea export: --end ({args.end}) must be after --start", file=sys.stderr)
        return 2
    try:  # an exchange symbol (BTCUSDT) would export nothing, silently
        args.market = [market_name(m) for m in args.market or ()]
    except ValueError as exc:
        print(f"purpleflea export: --market: {exc}", file=sys.stderr)
        return 2
    url = args.store if args.store is not None else str(args.data_dir / DB_NAME)
    refused = Refused()
    try:
        written, why_none = run_stoppable(_export(args, url, refused))
    except BrokenPipeError:
        # `--out /dev/stdout | head`: the reader left; stop as the other commands do (cli.py),
        # not "purpleflea export: [Errno 32] Broken pipe" and status 2.
        raise
    except _read_errors(url) as exc:
        # File and URL errors name their input already; a database error names only itself.
        where = "" if isinstance(exc, OSError | ValueError) else f"store {redacted(url)}: "
        print(f"purpleflea export: {where}{exc}", file=sys.stderr)
        return 2
    # Written to stdout (`--out /dev/stdout | purpleflea import /dev/stdin`), the report line
    # on stdout ended up after the CSV, a bad row for whoever reads it.
    said = sys.stderr if _is_stdout(args.out) else sys.stdout
    print(f"exported {written:,} events to {args.out} ({args.format}){why_none}", file=said)
    if refused.count:
        print(refused.line(), file=sys.stderr)
    return 0
