"""Recorded liquidation history in and out: parse files into events, format events as rows.

Pure: text rows in, :class:`~purpleflea.model.Liquidation` events (``seq`` 0, assigned by the
importer) and :class:`BadRow` reasons out. The ``import`` and ``export`` commands do the I/O.

Formats read:

- ``tardis``: Tardis.dev normalized ``liquidations`` CSV (header ``exchange, symbol,
  timestamp, local_timestamp, id, side, price, amount``; times in µs; ``side`` is the
  liquidation *order* side, so ``buy`` means a short was liquidated), plain or gzip. Each
  venue's ``history.py`` reads the rows of its Tardis exchange ids (amount unit, market name,
  event id) with the venue's own normalizer rules; only rows whose ``amount`` unit is known
  without an instrument list are read (BitMEX's: XBTUSD and the XBT futures), other rows are
  bad rows that say so.
- a venue's own recorder CSV (``binance-csv``, see the venue's ``history.py``): no header,
  detected from its first row.
- ``purpleflea-csv``: our own export (:data:`COLUMNS` header), read back exactly.

Ids are stable, so importing a file twice stores it once, and where a venue can rebuild the
live normalizer's id from a recorded row it does (by calling the same code), so a recorded and
a live copy of one event dedupe too (Binance from symbol, time and side, COIN-M with its
contracts; Bybit from all its fields, numbers matched by value where the frame spelled them
otherwise; Deribit, dYdX and Kraken Futures from the trade id Tardis keeps in ``id``; see each
venue's ``history.py`` and docs/agents.md). Other Tardis rows get ``{exchange}:{symbol}:{id or
timestamp}:{order side}:{amount}``, ``amount`` in its shortest form (``4500.0`` -> ``4500``).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from purpleflea.model import Liquidation, Side, VenueLiquidation, names_problem
from purpleflea.venues import registry
from purpleflea.venues._ids import told_apart
from purpleflea.venues._rows import (
    RowError,
    canonical_quantity,
    integer,
    positive,
    tardis_event_id,
    timestamp_ms,
)
from purpleflea.venues.venue import PriceFallback, RecorderFormat, TardisReader, TardisRow

#: A format name: ``tardis``, a venue recorder's (:data:`RECORDER_FORMATS`), ``purpleflea-csv``.
Format = str

#: Venues' own recorder CSV formats, by name.
RECORDER_FORMATS: dict[str, RecorderFormat] = registry.recorder_formats()
FORMATS: tuple[str, ...] = ("tardis", *RECORDER_FORMATS, "purpleflea-csv")

#: Our export's columns, in :class:`~purpleflea.model.Liquidation` field order.
COLUMNS: tuple[str, ...] = Liquidation.__struct_fields__
#: The columns an export must have: one written before events carried ``coverage`` is read
#: with each event's exchange's coverage.
REQUIRED_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if c != "coverage")
TARDIS_COLUMNS = ("exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price")

#: Tardis exchange ids we can size without an instrument list, and their venue's reader.
TARDIS_EXCHANGES: dict[str, TardisReader] = registry.tardis_readers()

_TARDIS_SIDES: dict[str, Side] = {"sell": "long", "buy": "short"}


class FileFormatError(ValueError):
    """The file is not of the format it is read as (its header lacks the format's columns):
    nothing in it can be read, so there are no bad rows to fix or skip."""


@dataclass(frozen=True)
class BadRow:
    """A rejected row: ``source:line`` and the reason, for the import report."""

    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


#: Rejected rows a parse keeps to report (every one is counted in ``Parsed.bad_rows``). Kept
#: all, a 6 KB gzip file of 3.1 million one-letter lines held 1.28 GB of them.
KEPT_BAD = 1_000


@dataclass
class Parsed:
    """What one file yielded: events in file order, rejected rows (the first
    :data:`KEPT_BAD` of ``bad_rows``), and rows of which the live feed stores no event
    (``ignored``: an order that filled nothing, a Deribit option, a Binance symbol not quoted
    in USD)."""

    events: list[Liquidation] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)
    bad_rows: int = 0
    ignored: int = 0
    rows: int = 0
    #: Event id -> the id an earlier version gave the same Tardis row (the generic
    #: :func:`~purpleflea.venues._rows.tardis_event_id`, before the row rebuilt the live id):
    #: an event stored under it is already stored.
    earlier_ids: dict[str, str] = field(default_factory=dict)

    def reject(self, bad: BadRow) -> None:
        """Count a rejected row; keep it while fewer than :data:`KEPT_BAD` are kept."""
        self.bad_rows += 1
        if len(self.bad) < KEPT_BAD:
            self.bad.append(bad)


# -- a venue's recorder CSV ---------------------------------------------------------------


def _event(found: VenueLiquidation, received_at: int) -> Liquidation:
    """A recorded event as stored (``seq`` 0 until the importer assigns it)."""
    if found.quantity is None or found.size_usd is None or found.ts is None:
        raise RowError(f"{found.exchange} {found.symbol!r}: size or time unknown")
    problem = names_problem(found.market, found.symbol, found.exchange, found.id)
    if problem is not None:
        raise RowError(problem)
    return Liquidation(
        id=found.id,
        seq=0,
        exchange=found.exchange,
        symbol=found.symbol,
        market=found.market,
        side=found.side,
        price=found.price,
        quantity=found.quantity,
        size_usd=found.size_usd,
        ts=found.ts,
        received_at=received_at,
        coverage=registry.coverage_of(found.exchange),
    )


def parse_recorder_csv(
    fmt: str, lines: Iterable[str], *, source: str, price_fallback: PriceFallback = "none"
) -> Parsed:
    """Events of a venue recorder's CSV (:data:`RECORDER_FORMATS`), in file order."""
    read = RECORDER_FORMATS[fmt].read
    parsed = Parsed()
    for line, row in _rows(lines):
        parsed.rows += 1
        try:
            found = read(row, price_fallback)
            # The recorder kept no receive time; the trade time is the closest we have.
            event = None if found is None else _event(found, received_at=found.ts or 0)
        except ValueError as exc:  # RowError, or FrameError from the venue's size checks
            parsed.reject(BadRow(source, line, str(exc)))
            continue
        if event is None:
            parsed.ignored += 1
        else:
            parsed.events.append(event)
    return parsed


# -- tardis normalized liquidations -------------------------------------------------------


def _tardis_row(row: dict[str, str]) -> tuple[Liquidation, str] | None:
    """The row's event and the generic id earlier versions gave it, None for a row the live
    feed reports no event of."""
    tardis_exchange = row["exchange"].strip()
    read = TARDIS_EXCHANGES.get(tardis_exchange)
    if read is None:
        raise RowError(
            f"exchange {tardis_exchange!r} is not supported: its amount is in contracts whose "
            f"size needs the instrument list (supported: {', '.join(TARDIS_EXCHANGES)})"
        )
    symbol = row["symbol"].strip().upper()
    if not symbol:
        raise RowError("symbol is empty")
    order_side = row["side"].strip().lower()
    side = _TARDIS_SIDES.get(order_side)
    if side is None:
        raise RowError(f"side (liquidation order side) must be buy or sell, got {order_side!r}")
    price_text = row["price"].strip()
    price = positive("price", price_text)
    amount_text = row["amount"].strip()
    amount = positive("amount", amount_text)
    ts = timestamp_ms("timestamp", integer("timestamp", row["timestamp"].strip()) // 1000)
    local = row["local_timestamp"].strip()
    received_at = integer("local_timestamp", local) // 1000 if local else ts
    trade_id = row["id"].strip()
    ref = trade_id or row["timestamp"].strip()
    tardis_row = TardisRow(
        symbol, order_side, side, price, amount, amount_text, price_text, ts, ref, trade_id
    )
    found = read(tardis_row)
    if found is None:
        return None
    return _event(found, received_at), tardis_event_id(found.exchange, tardis_row)


def parse_tardis(lines: Iterable[str], *, source: str) -> Parsed:
    """Events of a Tardis normalized liquidations CSV (header required), in file order.

    The rows of one exchange message share its ``local_timestamp`` and follow each other; an id
    repeated among them is numbered as the live normalizer numbers a row repeated within one
    push (:func:`~purpleflea.venues._ids.told_apart`): an exchange that gives liquidations no id
    sends two of the same size, price and millisecond as two equal rows, and Tardis writes both.
    """
    parsed = Parsed()
    message: list[Liquidation] = []
    message_time: str | None = None
    for line, fields in _records(lines, source, (*TARDIS_COLUMNS, "amount"), parsed):
        try:
            read = _tardis_row(fields)
        except ValueError as exc:  # RowError, or FrameError from a venue's size checks
            parsed.reject(BadRow(source, line, str(exc)))
            continue
        if read is None:
            parsed.ignored += 1
            continue
        event, earlier_id = read
        if earlier_id != event.id:
            parsed.earlier_ids[event.id] = earlier_id
        local = fields["local_timestamp"].strip()
        if local != message_time:
            parsed.events.extend(told_apart(message))
            message, message_time = [], local
        message.append(event)
    parsed.events.extend(told_apart(message))
    return parsed


# -- our own export -----------------------------------------------------------------------


def event_row(event: Liquidation) -> tuple[object, ...]:
    """One event as a row of :data:`COLUMNS` (floats keep every bit through ``repr``)."""
    return tuple(getattr(event, name) for name in COLUMNS)


def event_from_fields(fields: Mapping[str, Any]) -> Liquidation:
    """An event from a :data:`COLUMNS` mapping: typed (Parquet) or text (CSV) values; without
    ``coverage`` (an export older than it) the event gets its exchange's."""
    if "coverage" not in fields:
        exchange = fields.get("exchange")
        try:
            fields = {**fields, "coverage": registry.coverage_of(str(exchange))}
        except KeyError as exc:
            raise RowError(f"no coverage column and {exc.args[0]}") from None
    try:
        # Lax mode reads numbers written as text; every field and its type is still checked.
        event = msgspec.convert(fields, Liquidation, strict=False)
    except msgspec.ValidationError as exc:
        raise RowError(str(exc)) from None
    # An export's names are read back as written, so a file from anyone could carry any
    # text (a market of control characters was stored and served to every user).
    problem = names_problem(event.market, event.symbol, event.exchange, event.id)
    if problem is not None:
        raise RowError(problem)
    return event


def parse_purpleflea_csv(lines: Iterable[str], *, source: str) -> Parsed:
    """Events of our CSV export, exactly as exported (``seq`` kept; the importer reassigns)."""
    return _parse_with_header(lines, source, REQUIRED_COLUMNS, event_from_fields)


# -- plumbing -----------------------------------------------------------------------------


def _rows(lines: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank CSV row."""
    reader = csv.reader(lines)
    for row in reader:
        if row and any(cell.strip() for cell in row):
            yield reader.line_num, row


#: Characters of a header shown when it lacks a column.
SHOWN_HEADER = 300


def lacking_columns(where: str, missing: list[str], names: list[str]) -> FileFormatError:
    """The error for a file whose columns (``names``, shown cut to :data:`SHOWN_HEADER`
    characters: a hostile header runs to millions of columns) lack ``missing``."""
    shown = repr(names)
    if len(shown) > SHOWN_HEADER:
        shown = f"{shown[:SHOWN_HEADER]}... ({len(names):,} columns)"
    return FileFormatError(f"{where} lacks column(s) {', '.join(missing)}: {shown}")


def _records(
    lines: Iterable[str], source: str, required: tuple[str, ...], parsed: Parsed
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, fields by column) of the rows under a header that has ``required``; a
    row of the wrong width is a bad row in ``parsed``. A header without ``required`` raises
    :class:`FileFormatError`."""
    rows = _rows(lines)
    header_line, header = next(rows, (1, []))
    names = [name.strip() for name in header]
    missing = [name for name in required if name not in names]
    if missing:
        raise lacking_columns(f"its header (line {header_line})", missing, names)
    for line, row in rows:
        parsed.rows += 1
        if len(row) != len(names):
            parsed.reject(BadRow(source, line, f"expected {len(names)} columns, got {len(row)}"))
            continue
        yield line, dict(zip(names, row, strict=True))


def _parse_with_header(
    lines: Iterable[str],
    source: str,
    required: tuple[str, ...],
    convert: Callable[[dict[str, str]], Liquidation],
) -> Parsed:
    parsed = Parsed()
    for line, fields in _records(lines, source, required, parsed):
        try:
            parsed.events.append(convert(fields))
        except ValueError as exc:  # RowError, or FrameError from a venue's size checks
            parsed.reject(BadRow(source, line, str(exc)))
    return parsed


def detect_format(first_line: str) -> Format:
    """The format of a text file from its first line (header or first row)."""
    names = [name.strip() for name in first_line.strip().split(",")]
    if set(REQUIRED_COLUMNS) <= set(names):
        return "purpleflea-csv"
    if set(TARDIS_COLUMNS) <= set(names):
        return "tardis"
    for recorder in RECORDER_FORMATS.values():
        if recorder.detect(names):
            return recorder.name
    raise ValueError(
        "cannot tell the format from the first line (not a Tardis or Purple Flea header, nor a "
        f"row of {', '.join(RECORDER_FORMATS)}): {first_line.strip()[:120]!r}; pass --format"
    )


__all__ = [
    "COLUMNS",
    "FORMATS",
    "KEPT_BAD",
    "RECORDER_FORMATS",
    "REQUIRED_COLUMNS",
    "TARDIS_COLUMNS",
    "TARDIS_EXCHANGES",
    "BadRow",
    "Format",
    "Parsed",
    "PriceFallback",
    "RowError",
    "canonical_quantity",
    "detect_format",
    "event_from_fields",
    "event_row",
    "parse_purpleflea_csv",
    "parse_recorder_csv",
    "parse_tardis",
]
