"""``purpleflea import``: recorded liquidation history into the store.

The module is ``importer`` because ``import`` is a Python keyword; :func:`register` adds the
subcommand under the name ``import``.

Each file is all-or-nothing: if any row is bad, nothing of that file is stored (every bad row
is reported as ``file:line: reason``) unless ``--skip-bad`` stores the good rows. Events are
deduplicated by id, within the file and against the store, so importing a file again adds
nothing; against the store an event is also found under the id an earlier version gave its
row, and under a live id its row rebuilds only by value (the venue's ``LiveIdMatch``).
``seq`` continues from the store's last one under the data folder's writer lock, so an import
and a running server (which holds the lock) never hand out the same seq.

Seq order is time order for every reader (a stream's resume, ``GET /v1/liquidations`` pages,
backtests), and the schema has no mark for an event stored out of it. So a file whose new
events of an exchange and market are older (by more than the backtest's ``LATE_MS``, 60 s) than
the newest the store holds for them is refused, naming the file and each overlap: appended at
later seqs, they would reach every reader out of time order. The store is the one before the
command: the files of one command are checked first, then appended together, merged by time
(two recordings of the same hours go in as their union, in either order). Otherwise import
older files first, or into another data folder.

A data folder holds one market (docs/live.md): a folder the simulator made (its state file, or
simulated events) takes no import, refused in one line before anything is read; imported there,
recorded events (real Hyperliquid history too) became one history with the simulated market's.

A recording holds no connection sessions, so no uptime is known for its hours: each imported
exchange-hour is recorded with its events, first and last ``ts`` and coverage tag, and
``GET /v1/coverage`` lists it under ``imported`` (docs/coverage.md).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import csv
import gzip
import hashlib
import heapq
import io
import shutil
import sys
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TextIO

import msgspec

from purpleflea import history_io
from purpleflea.backtest.runner import LATE_MS
from purpleflea.clock import utc_iso
from purpleflea.commands.export import parquet_module
from purpleflea.formatting import printable
from purpleflea.history_io import BadRow, Parsed, PriceFallback
from purpleflea.model import Liquidation
from purpleflea.progress import Progress
from purpleflea.stopping import interrupting_in_place
from purpleflea.store.coverage import imported_hours, imported_statements, open_coverage_store
from purpleflea.store.seqmark import BadSeqMark, StoreReplaced, mark_floor
from purpleflea.store.sqlite import SQLiteStore
from purpleflea.venues import registry

DB_NAME = "purpleflea.sqlite"
FORMAT_CHOICES = ("auto", *history_io.FORMATS, "parquet")
#: Bad rows printed per file (all are counted).
SHOWN_BAD = 10
#: The longest line a CSV file may have (a liquidation row is ~100-300 bytes). Lines were read
#: whole: a 300 MB line (a 300 KB gzip file) took 670 MB before any row was judged, and a
#: gzip bomb of one endless line took what memory there was.
MAX_LINE = 1 << 20
#: What reading a file may raise when its bytes, not this code, are at fault: a truncated
#: gzip (EOFError) or a corrupt one (zlib.error, gzip.BadGzipFile, an OSError), a field over
#: the csv module's 128 KiB (csv.Error); each was a traceback.
UNREADABLE = (OSError, ValueError, UnicodeDecodeError, EOFError, zlib.error, csv.Error)
_BATCH = 5_000
#: How to find a recorded event's live copy stored under another id, by exchange.
LIVE_ID_MATCHES = registry.live_id_matches()


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "import",
        help="import recorded liquidation history (Tardis CSV, Binance recorder CSV, exports)",
        description=(
            "Import liquidation files into the history store. A file with bad rows is not "
            "imported at all unless --skip-bad; re-importing a file adds nothing."
        ),
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument(
        "--format",
        choices=FORMAT_CHOICES,
        default="auto",
        help="file format (default auto: Parquet by magic bytes, CSV by its first line); "
        "tardis = Tardis normalized liquidations CSV (plain or .gz), binance-csv = Binance "
        "forceOrder recorder CSV, purpleflea-csv/parquet = `purpleflea export` output",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=Path("data"), help="storage folder (default ./data)"
    )
    parser.add_argument(
        "--skip-bad", action="store_true", help="import the good rows of files with bad rows"
    )
    parser.add_argument(
        "--price-fallback",
        choices=("none", "order"),
        default="none",
        help="binance-csv rows whose average_price is missing ('None'): 'none' (default) "
        "rejects them; 'order' uses the order price p instead, which is the bankruptcy-side "
        "limit, somewhat worse than the real fill, so size_usd is approximate",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


@dataclass
class FileReport:
    """What importing one file did."""

    path: Path
    format: str
    rows: int = 0
    new: int = 0
    stored_before: int = 0
    repeated_in_file: int = 0
    ignored: int = 0
    #: The first ``history_io.KEPT_BAD`` rejected rows, of ``bad_rows``.
    bad: list[BadRow] = field(default_factory=list)
    bad_rows: int = 0
    imported: bool = False
    #: Why no row of the file could be read (its format, its bytes), when none could.
    unreadable: str | None = None
    #: New events older than what the store holds for their exchange and market: the file
    #: is not imported (see the module docstring).
    late: list[Overlap] = field(default_factory=list)
    #: Bytes written to the file after its first read, left for its next import (a
    #: recorder still writing it; read again past HELD_EVENTS, see :class:`ReadSpan`).
    left_out: int = 0


@dataclass(frozen=True)
class Overlap:
    """A file's new events of one exchange and market older than the store's newest."""

    exchange: str
    market: str
    #: How many, and the oldest one's time.
    events: int
    oldest_ms: int
    #: The newest stored event's time for the same exchange and market.
    stored_ms: int

    def __str__(self) -> str:
        return (
            f"{self.exchange} {self.market}: {self.events:,} event(s) from "
            f"{utc_iso(self.oldest_ms)}, the store holds it up to {utc_iso(self.stored_ms)}"
        )


# -- reading ------------------------------------------------------------------------------


class ReadSpan:
    """The bytes of a CSV file one read took, from its start: how many and their digest.

    A read given a new span (``size`` None) records them; a read given a recorded span takes
    those bytes only, and raises :class:`FileChanged` unless they are the same. A file a
    recorder is still writing is read again as the first read saw it: the lines added since
    are newer than the first read's and are left for the file's next import.
    """

    def __init__(self) -> None:
        self.size: int | None = None
        self.digest = b""


class FileChanged(Exception):
    """The bytes a file's first read took are not there any more."""


class _Counting(io.RawIOBase):
    """A read-only byte stream that remembers how far it has read (for the progress bar),
    at most ``limit`` bytes, and the digest of what it read."""

    def __init__(self, inner: BinaryIO, limit: int | None = None) -> None:
        self._inner = inner
        self._limit = limit
        self._hash = hashlib.blake2b(digest_size=16)
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = len(buffer)
        if self._limit is not None:
            want = min(want, self._limit - self.position)
        data = self._inner.read(want) if want > 0 else b""
        buffer[: len(data)] = data
        self._hash.update(data)
        self.position += len(data)
        return len(data)

    def digest(self) -> bytes:
        """The digest of the bytes read so far."""
        return self._hash.digest()


def _text_lines(raw: _Counting, head: bytes, bar: Progress | None) -> Iterator[str]:
    stream: BinaryIO = io.BufferedReader(raw)
    if head[:2] == b"\x1f\x8b":
        stream = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
    text: TextIO = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    done = 0
    number = 0
    while line := _bounded_line(text, number + 1):
        yield line
        if bar is not None and number % 2_000 == 0:
            bar.advance(raw.position - done)
            done = raw.position
        number += 1
    if bar is not None:
        bar.advance(raw.position - done)


class LineTooLong(ValueError):
    """A line of a CSV file is longer than :data:`MAX_LINE`: not a liquidation file."""


def _bounded_line(text: TextIO, number: int) -> str:
    """The next line of ``text`` ("" at its end), at most :data:`MAX_LINE` characters."""
    line = text.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise LineTooLong(
            f"line {number:,} is longer than {MAX_LINE:,} characters: not a liquidation CSV"
        )
    return line


def _first_line(path: Path, head: bytes) -> str:
    opener = gzip.open if head[:2] == b"\x1f\x8b" else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        return str(handle.readline(MAX_LINE))


def _read_parquet(path: Path, bar: Progress | None) -> Parsed:
    pq = parquet_module()
    parsed = Parsed()
    source = str(path)
    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names
    missing = [name for name in history_io.REQUIRED_COLUMNS if name not in names]
    if missing:
        raise history_io.lacking_columns("its schema", missing, names)
    present = [name for name in history_io.COLUMNS if name in names]
    for batch in parquet.iter_batches(batch_size=_BATCH, columns=present):
        for row in batch.to_pylist():
            parsed.rows += 1
            try:
                parsed.events.append(history_io.event_from_fields(row))
            except history_io.RowError as exc:
                parsed.reject(BadRow(source, parsed.rows, f"row {parsed.rows}: {exc}"))
        if bar is not None:
            bar.advance(batch.num_rows)
    return parsed


def resolve_format(path: Path, requested: str) -> str:
    """The file's format: ``requested``, or detected from its first bytes/line."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if requested != "auto":
        return requested
    if head == b"PAR1":
        return "parquet"
    return history_io.detect_format(_first_line(path, head))


def read_file(
    path: Path,
    fmt: str,
    *,
    price_fallback: PriceFallback = "none",
    progress: bool = False,
    span: ReadSpan | None = None,
    name: str | None = None,
) -> Parsed:
    """Parse one file of a resolved format (see :func:`resolve_format`); ``span`` records
    the bytes a CSV file's read takes, or reads the ones recorded (:class:`ReadSpan`).
    ``name`` is what its bad rows and progress name it (default ``path``: a pipe's copy is
    named by the pipe, :func:`spooled`)."""
    source = str(path) if name is None else name
    if fmt == "parquet":
        total = parquet_module().ParquetFile(path).metadata.num_rows
        with (
            Progress(total, f"reading {source}", unit="rows") if progress else nullcontext() as bar
        ):
            return _read_parquet(path, bar)
    limit = None if span is None else span.size
    with path.open("rb") as handle:
        head = handle.read(2)
        handle.seek(0)
        raw = _Counting(handle, limit)
        total = path.stat().st_size if limit is None else limit
        with Progress(total, f"reading {source}", unit="B") if progress else nullcontext() as bar:
            parsed = _parse_lines(fmt, _text_lines(raw, head, bar), source, price_fallback)
    if span is not None:
        if span.size is None:
            span.size, span.digest = raw.position, raw.digest()
        elif (raw.position, raw.digest()) != (span.size, span.digest):
            raise FileChanged(
                f"its bytes: the {span.size:,} its first read took are not there any more"
            )
    return parsed


def _parse_lines(
    fmt: str, lines: Iterator[str], source: str, price_fallback: PriceFallback
) -> Parsed:
    if fmt == "tardis":
        return history_io.parse_tardis(lines, source=source)
    if fmt in history_io.RECORDER_FORMATS:
        return history_io.parse_recorder_csv(
            fmt, lines, source=source, price_fallback=price_fallback
        )
    if fmt == "purpleflea-csv":
        return history_io.parse_purpleflea_csv(lines, source=source)
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMAT_CHOICES)}")


# -- writing ------------------------------------------------------------------------------


def _time_ordered(fmt: str, events: list[Liquidation]) -> list[Liquidation]:
    """Recordings get seqs in time order; our exports keep their own (seq) order."""
    if fmt in ("purpleflea-csv", "parquet"):
        return events
    return sorted(events, key=lambda event: event.ts)


def _stored_under_earlier_id(store: SQLiteStore, ids: list[str], parsed: Parsed) -> set[str]:
    """Ids of ``ids`` whose event an earlier version imported under the id it gave the row
    then (Tardis rows that now rebuild the live id), so importing a file again adds nothing."""
    earlier = {i: parsed.earlier_ids[i] for i in ids if i in parsed.earlier_ids}
    found = store.stored_ids(list(earlier.values()))
    return {i for i, earlier_id in earlier.items() if earlier_id in found}


def _stored_under_another_id(
    store: SQLiteStore, events: list[Liquidation], taken: set[str]
) -> set[str]:
    """Ids of ``events`` whose live copy is stored (or ``taken`` by an earlier file of the
    command) under an id the recorded row could not rebuild exactly (a price the frame padded
    to its tick: ``82396.90`` live, ``82396.9`` recorded), as the exchange's
    :class:`~purpleflea.venues.venue.LiveIdMatch` tells."""
    found: set[str] = set()
    ordered: list[str] | None = None  # ``taken`` sorted, once a rule needs it
    for event in events:
        rule = LIVE_ID_MATCHES.get(event.exchange)
        if rule is None:
            continue
        if ordered is None:
            ordered = sorted(taken)
        prefix = rule.prefix(event.id)
        candidates = [*store.ids_starting_with(prefix), *_starting_with(ordered, prefix)]
        if any(rule.same(event.id, stored) for stored in candidates):
            found.add(event.id)
    return found


def _starting_with(ordered: list[str], prefix: str) -> list[str]:
    """The ids of the sorted ``ordered`` that start with ``prefix`` (they sort together)."""
    at = bisect.bisect_left(ordered, prefix)
    found = []
    while at < len(ordered) and ordered[at].startswith(prefix):
        found.append(ordered[at])
        at += 1
    return found


def _older_than_stored(store: SQLiteStore, events: list[Liquidation]) -> list[Overlap]:
    """Each exchange and market whose ``events`` include some older, by more than
    ``LATE_MS``, than the newest event the store holds for it."""
    newest: dict[tuple[str, str], int | None] = {}
    late: dict[tuple[str, str], list[int]] = {}
    for event in events:
        key = (event.exchange, event.market)
        if key not in newest:
            newest[key] = store.newest_ts(*key)
        stored = newest[key]
        if stored is not None and event.ts < stored - LATE_MS:
            late.setdefault(key, []).append(event.ts)
    return [
        Overlap(key[0], key[1], len(times), min(times), newest[key] or 0)
        for key, times in sorted(late.items())
    ]


def _new_events(
    store: SQLiteStore,
    report: FileReport,
    parsed: Parsed,
    skip_bad: bool,
    taken: set[str],
) -> list[Liquidation]:
    """The file's events to append (none when the file is refused: bad rows without
    ``skip_bad``, or new events older than the store's newest of their exchange and market);
    ``taken``: ids an earlier file of the same command brings, counted as already stored."""
    report.rows, report.ignored, report.bad = parsed.rows, parsed.ignored, parsed.bad
    report.bad_rows = parsed.bad_rows
    if parsed.bad_rows and not skip_bad:
        return []
    unique: dict[str, Liquidation] = {}
    for event in parsed.events:
        unique.setdefault(event.id, event)
    report.repeated_in_file = len(parsed.events) - len(unique)
    stored = store.stored_ids(list(unique)) | (taken & unique.keys())
    stored |= _stored_under_earlier_id(store, [i for i in unique if i not in stored], parsed)
    stored |= _stored_under_another_id(
        store, [e for i, e in unique.items() if i not in stored], taken
    )
    report.stored_before = len(stored)
    fresh = _time_ordered(report.format, [e for i, e in unique.items() if i not in stored])
    report.late = _older_than_stored(store, fresh)
    if report.late:
        return []
    report.imported = True
    return fresh


async def _append(
    store: SQLiteStore,
    files: list[tuple[FileReport, list[Liquidation]]],
    floor: int,
) -> None:
    """Append the files' new events as one history, merged by time: each file's own order is
    kept (a recording's is time order, an export's its seq order) and the files interleave by
    ``ts``, so two recordings of the same hours (two recorders of one stream, each missing
    some events) are stored in time order rather than the second refused as going back.
    Each batch's hours are recorded as imported (``GET /v1/coverage`` lists them) in the
    transaction that stores it."""
    owner = {event.id: report for report, events in files for event in events}
    merged = heapq.merge(*(events for _, events in files), key=lambda event: event.ts)
    # After a seq mark above the store (``floor``): those seqs may have been published
    # (store/seqmark.py).
    seq = max(await store.last_seq(), floor)
    batch: list[Liquidation] = []
    for event in merged:
        seq += 1
        batch.append(msgspec.structs.replace(event, seq=seq))
        if len(batch) == _BATCH:
            await _store_batch(store, batch, owner)
            batch = []
    if batch:
        await _store_batch(store, batch, owner)


async def _store_batch(
    store: SQLiteStore,
    batch: list[Liquidation],
    owner: dict[str, FileReport],
) -> None:
    # The imported hours in the events' own transaction: recorded after it, a kill between
    # the two left stored events no hour counted, which a second run skips as stored.
    stored = store.append_now(batch, also=lambda new: imported_statements(imported_hours(new)))
    for event in stored:
        owner[event.id].new += 1


#: New events one command holds in memory for its merged append (~550 bytes each: ~1.1 GB).
#: Past it, the files accepted are read a second time, a group of files overlapping in time
#: at once (:func:`_overlapping`), so memory is bounded by the largest such group, not the
#: command: a year of daily files held 5.5 GB for each 10 million events.
HELD_EVENTS = 2_000_000


def _overlapping(spans: list[tuple[int, int, FileReport]]) -> list[list[FileReport]]:
    """The accepted files in groups whose new events overlap in time, the groups in time
    order: a group's merged append never goes back before the one before it."""
    groups: list[list[FileReport]] = []
    end = 0
    for first, last, report in sorted(spans, key=lambda span: span[0]):
        if groups and first <= end:
            groups[-1].append(report)
            end = max(end, last)
        else:
            groups.append([report])
            end = last
    return groups


def _identity(path: Path) -> tuple[int, int, int]:
    """What tells a file changed between two reads: its inode, size and modification time."""
    stat = path.stat()
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _fresh_again(
    store: SQLiteStore, report: FileReport, parsed: Parsed | None, skip_bad: bool, taken: set[str]
) -> list[Liquidation] | None:
    """A file accepted at the first read, read again: its events the store does not hold now
    (events of the groups appended before it are stored now, so they drop out) nor ``taken``
    by the files before it in its group (the first read's rules: the same id, or the same
    event under another id, LIVE_ID_MATCHES). Counted on a copy; the report takes its
    ``stored_before`` from it (the first read, past :data:`HELD_EVENTS`, kept no id of the
    command's earlier files). None, and the report says so, when the file is refused now: it
    changed since the first read (``parsed`` None: a Parquet file's inode, size or
    modification time differ), or its rows are refused now. A CSV file is read again over
    the bytes its first read took (:class:`ReadSpan`), not as it is now: the lines a
    recorder added since are newer than the first read's, and appended with this group they
    would go ahead of the later groups' events, which would be refused as older than the
    store, for good."""
    again = FileReport(report.path, report.format)
    if parsed is None:
        report.imported = False
        report.unreadable = (
            "changed since it was first read (its size or modification time); import it "
            "again once it is whole"
        )
        return None
    fresh = _new_events(store, again, parsed, skip_bad, taken)
    if again.imported:
        report.stored_before = again.stored_before
        return fresh
    why = (
        f"{again.bad_rows:,} bad row(s) now"
        if again.bad_rows and not skip_bad
        else f"{len(again.late)} market(s) now older than the store"
    )
    report.imported = False
    report.unreadable = f"changed since it was first read ({why}); import it again"
    return None


#: The copies of pipes (:func:`spooled`) in the data folder, while an import runs.
SPOOL_GLOB = ".import-*.spool"


def spooled(path: Path, data_dir: Path) -> Path:
    """A pipe's bytes (``/dev/stdin``, a FIFO: anything not a regular file) copied into a
    file of ``data_dir``, which the caller removes: a file is read more than once (its
    format from its first bytes, then its rows, and again past :data:`HELD_EVENTS`), and a
    pipe gives its bytes once: read in place, the format's detection took them (the format
    could not be told; given, the rows' read found the pipe not seekable). The data folder,
    not the system's temporary one: what a pipe brings is about to be stored there anyway,
    and /tmp is often memory."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=data_dir, prefix=".import-", suffix=".spool", delete=False
    ) as copy:
        try:
            with path.open("rb") as pipe:
                shutil.copyfileobj(pipe, copy, 1 << 20)
        except BaseException:
            Path(copy.name).unlink(missing_ok=True)
            raise
    return Path(copy.name)


def _remove_spools(data_dir: Path) -> None:
    """The pipes' copies an import killed outright (SIGKILL, a crash) left: an import holds
    the data folder's lock, so none of them is another's."""
    for left in data_dir.glob(SPOOL_GLOB):
        left.unlink(missing_ok=True)


class SimulatedFolder(ValueError):
    """The data folder holds the simulator's market: no recorded history goes into it."""


async def import_files(
    paths: Sequence[Path],
    data_dir: Path,
    *,
    fmt: str = "auto",
    skip_bad: bool = False,
    price_fallback: PriceFallback = "none",
    progress: bool = False,
) -> list[FileReport]:
    """Import ``paths`` into the store of ``data_dir`` (the caller holds the writer lock).

    Every file is read and checked against the store as it was before the command; then the
    new events of the files accepted are appended together, merged by time (:func:`_append`):
    the order the files are given in does not matter. A path that is no regular file (a
    pipe) is read from a copy (:func:`spooled`), removed at the end."""
    db_path = data_dir / DB_NAME
    from purpleflea.server.folder_source import (  # noqa: PLC0415
        imported_exchanges,
        simulated_market,
    )
    from purpleflea.server.sources import SIM_STATE_FILE  # noqa: PLC0415

    simulated = simulated_market(data_dir, db_path)
    if simulated is not None and (
        # Simulated events an import put there (an export of `sim --days` history) make
        # an import's folder, not the simulator's: the rest of that import, or a run again
        # after an interrupted one, belongs in it.
        (data_dir / SIM_STATE_FILE).exists() or not imported_exchanges(db_path)
    ):
        # Stored beside the simulated market, recorded events became one history with it,
        # and `serve` (the simulator, both default to ./data) continued on top of them.
        raise SimulatedFolder(
            f"data dir {data_dir} holds a simulated market ({simulated}); recorded history "
            "imported there would be one history with it: import into another --data-dir "
            "(or remove this one to start over)"
        )
    _remove_spools(data_dir)
    # Read before any file: a damaged mark stops the command in one line (BadSeqMark), not
    # with a traceback after every file was read.
    floor = mark_floor(db_path)
    store = SQLiteStore(db_path)
    # Makes the imported hours' table, which each batch's transaction writes (_store_batch).
    coverage = open_coverage_store(str(db_path))
    reports: list[FileReport] = []
    accepted: list[tuple[FileReport, list[Liquidation]]] = []
    spans: list[tuple[int, int, FileReport]] = []
    held = 0
    taken: set[str] = set()
    #: Each file's :func:`_identity` before its first read, to tell whether a Parquet file
    #: changed; a CSV file's second read takes the bytes its first read took (ReadSpan).
    identities: dict[int, tuple[int, int, int]] = {}
    read_spans: dict[int, ReadSpan] = {}
    #: The file each report's path is read from: itself, or a pipe's copy (spooled).
    files: dict[int, Path] = {}

    def read(report: FileReport) -> Parsed:
        span = None if report.format == "parquet" else read_spans.setdefault(id(report), ReadSpan())
        return read_file(
            files[id(report)],
            report.format,
            price_fallback=price_fallback,
            progress=progress,
            span=span,
            name=str(report.path),
        )

    try:
        for path in paths:
            report = FileReport(path, fmt)
            reports.append(report)
            try:
                file = files[id(report)] = path if path.is_file() else spooled(path, data_dir)
                report.format = resolve_format(file, fmt)
                identities[id(report)] = _identity(file)
                parsed = read(report)
            except history_io.FileFormatError as exc:
                report.unreadable = f"not a {report.format} file: {exc}"
                continue
            except UNREADABLE as exc:
                report.unreadable = str(exc) or type(exc).__name__
                continue
            fresh = _new_events(store, report, parsed, skip_bad, taken)
            if report.imported and fresh:
                # The span of all the file's events, not of ``fresh``: read again (past
                # HELD_EVENTS) a file also appends those ``taken`` left out at its first read
                # (held by a file before it in the command), and a span without them put its
                # group before that file's, whose events were then refused as older than the
                # store.
                times = [e.ts for e in parsed.events]
                spans.append((min(times), max(times), report))
                held += len(fresh)
                if held <= HELD_EVENTS:
                    accepted.append((report, fresh))
                    taken.update(event.id for event in fresh)
                else:
                    # From here on the files are read again (below), a group at a time, each
                    # against the store and its group's earlier files: neither the events
                    # nor their ids are held (~130 bytes an id: 1.3 GB for 10M new events).
                    # A later file's first read counts only what the store held; its read
                    # again gives its report's stored_before.
                    accepted.clear()
                    taken.clear()
            del parsed
        if held <= HELD_EVENTS:
            await _append(store, accepted, floor)
        else:
            for cluster in _overlapping(spans):
                cluster.sort(key=reports.index)  # command order: who keeps a repeated id
                again = []
                in_group: set[str] = set()  # ids the group's earlier files bring
                for r in cluster:
                    try:
                        before = _identity(files[id(r)])
                        read_again: Parsed | None = read(r)
                        if r.format != "parquet":  # the bytes its first read took, checked
                            r.left_out = max(0, before[1] - (read_spans[id(r)].size or 0))
                        elif before != identities[id(r)] or _identity(files[id(r)]) != before:
                            read_again = None  # changed before or while it was read again
                    except FileChanged as exc:
                        r.imported = False
                        r.unreadable = f"changed since it was first read ({exc}); import it again"
                        continue
                    except UNREADABLE as exc:  # removed or changed since the first read
                        r.imported = False
                        r.unreadable = f"could not be read again: {str(exc) or type(exc).__name__}"
                        continue
                    fresh_again = _fresh_again(store, r, read_again, skip_bad, in_group)
                    del read_again
                    if fresh_again is not None:
                        in_group.update(event.id for event in fresh_again)
                        again.append((r, fresh_again))
                await _append(store, again, floor)
    finally:
        await coverage.close()
        await store.close()
        for report in reports:
            copy = files.get(id(report))
            if copy is not None and copy != report.path:  # a pipe's (spooled)
                copy.unlink(missing_ok=True)
    return reports


# -- report -------------------------------------------------------------------------------


def describe(report: FileReport) -> list[str]:
    """The human report of one file: a summary line, then its bad rows (at most 10), every
    character that is not printable written as its escape (``\\x1b``): a reason may quote
    the file, and the file may come from anyone."""
    return [printable(line) for line in _describe(report)]


def _describe(report: FileReport) -> list[str]:
    name = str(report.path)
    lines: list[str] = []
    if report.imported:
        extra = ""
        if report.repeated_in_file:
            extra += f", {report.repeated_in_file} repeated in the file"
        if report.ignored:
            extra += (
                f", {report.ignored} ignored (no stored live event: nothing filled, an option, "
                "a quote not in USD)"
            )
        if report.bad_rows:
            extra += f", {report.bad_rows} bad rows skipped"
        if report.left_out:
            extra += (
                f"; {report.left_out:,} bytes written to it since its first read left out "
                "(import it again for them)"
            )
        lines.append(
            f"{name} ({report.format}): {report.rows:,} rows -> {report.new:,} new, "
            f"{report.stored_before:,} already stored{extra}"
        )
    elif report.unreadable is not None:  # no rows to fix or skip: --skip-bad cannot help
        lines.append(f"{name}: NOT imported: {report.unreadable}")
    elif report.late:
        lines.append(
            f"{name}: NOT imported: {sum(o.events for o in report.late):,} new event(s) are "
            "older than the store's newest of their exchange and market; appended after them "
            "they would reach streams, history pages and backtests out of time order (seq "
            "order). Import older files first, or into another --data-dir"
        )
        lines.extend(f"  {overlap}" for overlap in report.late[:SHOWN_BAD])
        if len(report.late) > SHOWN_BAD:
            lines.append(f"  ... and {len(report.late) - SHOWN_BAD:,} more")
        return lines
    else:
        lines.append(
            f"{name}: NOT imported, {report.bad_rows:,} bad row(s) of {report.rows:,} "
            "(fix them, or pass --skip-bad to import the good rows)"
        )
    lines.extend(f"  {bad}" for bad in report.bad[:SHOWN_BAD])
    if report.bad_rows > SHOWN_BAD:
        lines.append(f"  ... and {report.bad_rows - SHOWN_BAD:,} more")
    return lines


def run(args: argparse.Namespace) -> int:
    from purpleflea.store.lock import DataDirBusy, exclusive  # noqa: PLC0415

    # A pipe (`export ... | import /dev/stdin`) is no regular file but is read (spooled).
    missing = [str(path) for path in args.files if not path.exists()]
    if missing:
        print(f"purpleflea import: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    folders = [str(path) for path in args.files if path.is_dir()]
    if folders:
        print(
            f"purpleflea import: a folder, not a file: {', '.join(folders)} (give its files, "
            "e.g. folder/*.csv.gz)",
            file=sys.stderr,
        )
        return 2
    try:
        # Interrupted, the batches stored so far stay (each is one transaction) and a run
        # again skips their ids: it completes the import.
        with exclusive(args.data_dir, "purpleflea import"), interrupting_in_place():
            reports = asyncio.run(
                import_files(
                    args.files,
                    args.data_dir,
                    fmt=args.format,
                    skip_bad=args.skip_bad,
                    price_fallback=args.price_fallback,
                    progress=not args.no_progress,
                )
            )
    except (DataDirBusy, BadSeqMark, StoreReplaced, SimulatedFolder) as exc:
        print(f"purpleflea import: {exc}", file=sys.stderr)
        return 2
    for report in reports:
        for line in describe(report):
            print(line)
    new = sum(r.new for r in reports)
    before = sum(r.stored_before for r in reports)
    print(f"total: {new:,} new, {before:,} already stored")
    return 0 if all(r.imported for r in reports) else 1
