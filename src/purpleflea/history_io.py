"""Recorded liquidation history in and out: parse files into events, format events as rows.

Pure: text rows in, :class:`~purpleflea.model.Liquidation` events (``seq`` 0, assigned by the
importer) and :class:`BadRow` reasons out. The ``import`` and ``export`` commands do the I/O.

Formats read:

- ``binance-csv``: the Binance USD-M ``!forceOrder@arr`` recorder CSV of shared/data/real
  (no header; ``symbol, side, order_type, time_in_force, original_quantity, price,
  average_price, order_status, last_filled_quantity, filled_accumulated_quantity,
  trade_time_ms, usd_size [, tier]``). The recorder removed ``USDT`` from the symbol, so
  the Binance symbol is rebuilt: a column that already ends with a USD quote (``ETHUSDC``,
  ``BTCUSDT``: some recordings kept full symbols) is kept; ``ETH_250627`` (a dated future)
  becomes ``ETHUSDT_250627``; anything else gets ``USDT`` appended (``1000PEPE`` ->
  ``1000PEPEUSDT``). ``side`` is the *order* side (SELL closes a long: a long was
  liquidated); ``size_usd`` is recomputed as ``filled_accumulated_quantity * average_price``
  (the ``usd_size`` column uses the order price, and one recording wrote some in millions).
  Rows that filled nothing are not liquidation prints and are ignored, as live.
- ``tardis``: Tardis.dev normalized ``liquidations`` CSV (header ``exchange, symbol,
  timestamp, local_timestamp, id, side, price, amount``; times in µs; ``side`` is the
  liquidation *order* side, so ``buy`` means a short was liquidated), plain or gzip.
  Only exchanges whose ``amount`` unit is known without an instrument list are accepted (see
  :data:`TARDIS_EXCHANGES`); other rows are bad rows that say so.
- ``purpleflea-csv``: our own export (:data:`COLUMNS` header), read back exactly.

Ids are stable, so importing a file twice stores it once: Binance rows get the id the live
normalizer gives the same event (``binance_usdm:{symbol}:{T}:{S}``: the stream pushes at most
one forced order per symbol per second, so symbol and trade time identify it), so a recorded
and a live copy of one event dedupe too. Other Tardis rows get ``{exchange}:{symbol}:{id or
timestamp}:{side}:{amount}``, ``amount`` in its shortest form (``4500.0`` -> ``4500``).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import msgspec

from purpleflea.model import Liquidation, Side
from purpleflea.venues import symbols

Format = Literal["tardis", "binance-csv", "purpleflea-csv"]
PriceFallback = Literal["none", "order"]

FORMATS: tuple[str, ...] = ("tardis", "binance-csv", "purpleflea-csv")

#: Our export's columns, in :class:`~purpleflea.model.Liquidation` field order.
COLUMNS: tuple[str, ...] = Liquidation.__struct_fields__
TARDIS_COLUMNS = ("exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price")

_ORDER_SIDES: dict[str, Side] = {"SELL": "long", "BUY": "short"}
_TARDIS_SIDES: dict[str, Side] = {"sell": "long", "buy": "short"}
_USD_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD")
# Exchange timestamps outside 2009-01-01 .. 2100-01-01 (ms) are corrupt, not data.
_MIN_TS_MS = 1_230_768_000_000
_MAX_TS_MS = 4_102_444_800_000


class RowError(ValueError):
    """One row cannot become an event; the message says which field and why."""


@dataclass(frozen=True)
class BadRow:
    """A rejected row: ``source:line`` and the reason, for the import report."""

    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


@dataclass
class Parsed:
    """What one file yielded: events in file order, rejected rows, rows that are not prints."""

    events: list[Liquidation] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)
    ignored: int = 0
    rows: int = 0


# -- shared value checks ------------------------------------------------------------------


def _number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RowError(f"{name} is not a number: {text!r}") from None
    if not math.isfinite(value):
        raise RowError(f"{name} is not finite: {text!r}")
    return value


def _positive(name: str, text: str) -> float:
    value = _number(name, text)
    if value <= 0:
        raise RowError(f"{name} must be > 0, got {text!r}")
    return value


def _integer(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise RowError(f"{name} is not an integer: {text!r}") from None


def _timestamp_ms(name: str, value: int) -> int:
    if not _MIN_TS_MS <= value <= _MAX_TS_MS:
        raise RowError(f"{name} is not a time between 2009 and 2100 in ms: {value}")
    return value


def canonical_quantity(text: str) -> str:
    """``4500.0`` -> ``4500``, ``0.0140`` -> ``0.014``: one spelling per quantity.

    Recorders write quantities through a float (``4500.0``); ids must not depend on that.
    """
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise RowError(f"quantity is not a number: {text!r}") from None
    if not value.is_finite():
        raise RowError(f"quantity is not finite: {text!r}")
    return format(value.normalize(), "f")


# -- binance recorder CSV -----------------------------------------------------------------


def binance_usdm_id(symbol: str, ts: int, order_side: str) -> str:
    """The id :func:`purpleflea.venues.binance.normalize_usdm` gives the same event."""
    return f"binance_usdm:{symbol}:{ts}:{order_side}"


def binance_symbol(column: str) -> str:
    """The Binance USD-M symbol of a recorder ``symbol`` column (``USDT`` removed by it)."""
    pair, underscore, expiry = column.partition("_")
    if any(pair.endswith(quote) and len(pair) > len(quote) for quote in _USD_QUOTES):
        return column
    return f"{pair}USDT{underscore}{expiry}"


def binance_market(symbol: str) -> symbols.Market:
    """Market of a Binance USD-M symbol, as the live normalizer names it."""
    pair, _, expiry = symbol.partition("_")
    split = symbols.strip_quote(pair, _USD_QUOTES)
    if split is None:
        raise RowError(f"symbol {symbol!r} has no USD quote (USDT, USDC, ...)")
    date = symbols.from_yymmdd(expiry) if expiry else None
    return symbols.dated(split[0], date) if date else symbols.perpetual(split[0])


def _binance_row(row: list[str], price_fallback: PriceFallback) -> Liquidation | None:
    if len(row) not in (12, 13):
        raise RowError(f"expected 12 columns (13 with tier), got {len(row)}")
    column, order_side = row[0].strip(), row[1].strip()
    if not column:
        raise RowError("symbol is empty")
    side = _ORDER_SIDES.get(order_side)
    if side is None:
        raise RowError(f"side (order side) must be BUY or SELL, got {order_side!r}")
    filled_text = row[9].strip()
    filled = _number("filled_accumulated_quantity", filled_text)
    if filled < 0:
        raise RowError(f"filled_accumulated_quantity must be >= 0, got {filled_text!r}")
    if filled == 0:
        return None  # an order that filled nothing is not a liquidation print
    if row[6].strip() == "None":
        if price_fallback != "order":
            raise RowError(
                "average_price is 'None' (a recorder bug): the fill price is unknown; "
                "pass --price-fallback order to use the order price instead"
            )
        price = _positive("price", row[5])
    else:
        price = _positive("average_price", row[6])
    ts = _timestamp_ms("trade_time_ms", _integer("trade_time_ms", row[10].strip()))
    symbol = binance_symbol(column)
    market = binance_market(symbol)
    size_usd = filled * price
    return Liquidation(
        id=binance_usdm_id(symbol, ts, order_side),
        seq=0,
        exchange="binance_usdm",
        symbol=symbol,
        market=market.name,
        side=side,
        price=price / market.multiplier,
        quantity=filled * market.multiplier,
        size_usd=size_usd,
        ts=ts,
        # The recorder kept no receive time; the trade time is the closest we have.
        received_at=ts,
    )


def parse_binance_csv(
    lines: Iterable[str], *, source: str, price_fallback: PriceFallback = "none"
) -> Parsed:
    """Events of a Binance ``forceOrder`` recorder CSV (module docstring), in file order."""
    parsed = Parsed()
    for line, row in _rows(lines):
        parsed.rows += 1
        try:
            event = _binance_row(row, price_fallback)
        except RowError as exc:
            parsed.bad.append(BadRow(source, line, str(exc)))
            continue
        if event is None:
            parsed.ignored += 1
        else:
            parsed.events.append(event)
    return parsed


# -- tardis normalized liquidations -------------------------------------------------------


@dataclass(frozen=True)
class TardisVenue:
    """How a Tardis exchange's rows become ours: our exchange id and ``amount``'s unit."""

    exchange: str
    #: ``coins`` (base asset), ``usd`` (inverse: USD), ``binance_coinm`` (contracts of
    #: 100 USD for BTC, 10 USD otherwise), or ``by_quote`` (USD when quoted in USD, else coins).
    unit: Literal["coins", "usd", "binance_coinm", "by_quote"]


#: Tardis exchange ids we can size without an instrument list.
TARDIS_EXCHANGES: dict[str, TardisVenue] = {
    "binance-futures": TardisVenue("binance_usdm", "coins"),
    "binance-delivery": TardisVenue("binance_coinm", "binance_coinm"),
    "bybit": TardisVenue("bybit", "by_quote"),
    "deribit": TardisVenue("deribit", "by_quote"),
}


def _tardis_market(venue: TardisVenue, symbol: str) -> tuple[symbols.Market, str]:
    """Market and quote (``USD`` for inverse) of a Tardis symbol."""
    if venue.exchange == "binance_usdm":
        return binance_market(symbol), "USDT"
    if venue.exchange == "deribit":
        # BTC-PERPETUAL, BTC-27DEC24 (inverse, amount in USD); BTC_USDC-PERPETUAL (linear).
        base, _, rest = symbol.partition("-")
        coin, _, quote = base.partition("_")
        date = symbols.from_ddmonyy(rest)
        market = symbols.dated(coin, date) if date else symbols.perpetual(coin)
        return market, quote or "USD"
    if venue.exchange == "binance_coinm":
        pair, _, expiry = symbol.partition("_")
        base = pair[:-3] if pair.endswith("USD") else pair
        date = symbols.from_yymmdd(expiry)
        return (symbols.dated(base, date) if date else symbols.perpetual(base)), "USD"
    return symbols.concatenated(symbol)


def _tardis_row(row: dict[str, str]) -> Liquidation:
    tardis_exchange = row["exchange"].strip()
    venue = TARDIS_EXCHANGES.get(tardis_exchange)
    if venue is None:
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
    price = _positive("price", row["price"])
    amount_text = row["amount"].strip()
    amount = _positive("amount", amount_text)
    ts = _timestamp_ms("timestamp", _integer("timestamp", row["timestamp"].strip()) // 1000)
    local = row["local_timestamp"].strip()
    received_at = _integer("local_timestamp", local) // 1000 if local else ts
    market, quote = _tardis_market(venue, symbol)
    if venue.unit == "coins" or (venue.unit == "by_quote" and quote != "USD"):
        quantity, size_usd = amount, amount * price
    else:
        contract = 1.0
        if venue.unit == "binance_coinm":
            contract = 100.0 if symbol.startswith("BTCUSD_") else 10.0
        size_usd = amount * contract
        quantity = size_usd / price
    if venue.exchange == "binance_usdm":
        # The id the live normalizer and the recorder import give the same event.
        event_id = binance_usdm_id(symbol, ts, order_side.upper())
    else:
        ref = row["id"].strip() or row["timestamp"].strip()
        event_id = f"{venue.exchange}:{symbol}:{ref}:{order_side}:{canonical_quantity(amount_text)}"
    return Liquidation(
        id=event_id,
        seq=0,
        exchange=venue.exchange,
        symbol=symbol,
        market=market.name,
        side=side,
        price=price / market.multiplier,
        quantity=quantity * market.multiplier,
        size_usd=size_usd,
        ts=ts,
        received_at=received_at,
    )


def parse_tardis(lines: Iterable[str], *, source: str) -> Parsed:
    """Events of a Tardis normalized liquidations CSV (header required), in file order."""
    return _parse_with_header(lines, source, (*TARDIS_COLUMNS, "amount"), _tardis_row)


# -- our own export -----------------------------------------------------------------------


def event_row(event: Liquidation) -> tuple[object, ...]:
    """One event as a row of :data:`COLUMNS` (floats keep every bit through ``repr``)."""
    return tuple(getattr(event, name) for name in COLUMNS)


def event_from_fields(fields: Mapping[str, Any]) -> Liquidation:
    """An event from a :data:`COLUMNS` mapping: typed (Parquet) or text (CSV) values."""
    try:
        # Lax mode reads numbers written as text; every field and its type is still checked.
        return msgspec.convert(fields, Liquidation, strict=False)
    except msgspec.ValidationError as exc:
        raise RowError(str(exc)) from None


def parse_purpleflea_csv(lines: Iterable[str], *, source: str) -> Parsed:
    """Events of our CSV export, exactly as exported (``seq`` kept; the importer reassigns)."""
    return _parse_with_header(lines, source, COLUMNS, event_from_fields)


# -- plumbing -----------------------------------------------------------------------------


def _rows(lines: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank CSV row."""
    reader = csv.reader(lines)
    for row in reader:
        if row and any(cell.strip() for cell in row):
            yield reader.line_num, row


def _parse_with_header(
    lines: Iterable[str],
    source: str,
    required: tuple[str, ...],
    convert: Callable[[dict[str, str]], Liquidation],
) -> Parsed:
    parsed = Parsed()
    rows = _rows(lines)
    header_line, header = next(rows, (1, []))
    names = [name.strip() for name in header]
    missing = [name for name in required if name not in names]
    if missing:
        parsed.bad.append(
            BadRow(source, header_line, f"header lacks column(s) {', '.join(missing)}: {names}")
        )
        return parsed
    for line, row in rows:
        parsed.rows += 1
        if len(row) != len(names):
            parsed.bad.append(
                BadRow(source, line, f"expected {len(names)} columns, got {len(row)}")
            )
            continue
        try:
            parsed.events.append(convert(dict(zip(names, row, strict=True))))
        except RowError as exc:
            parsed.bad.append(BadRow(source, line, str(exc)))
    return parsed


def detect_format(first_line: str) -> Format:
    """The format of a text file from its first line (header or first row)."""
    names = [name.strip() for name in first_line.strip().split(",")]
    if set(COLUMNS) <= set(names):
        return "purpleflea-csv"
    if set(TARDIS_COLUMNS) <= set(names):
        return "tardis"
    if len(names) in (12, 13) and names[1] in _ORDER_SIDES:
        return "binance-csv"
    raise ValueError(
        "cannot tell the format from the first line (not a Tardis or Purple Flea header, nor a "
        f"Binance recorder row): {first_line.strip()[:120]!r}; pass --format"
    )
