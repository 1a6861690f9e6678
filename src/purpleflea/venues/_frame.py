"""What every normalizer shares: its error type, frame decoding and value checks.

A normalizer never lets a ``KeyError``, ``TypeError`` or decoder error escape: everything
that is wrong with a frame becomes a :class:`FrameError` naming the exchange and the
problem, so the connection layer can count it and carry on. A frame of many liquidations
whose rows are read one by one (:func:`rows_events`) loses only the rows that are wrong: the
rest travel in a :class:`PartialFrame`.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Generic, TypeVar

import msgspec

from purpleflea.model import VenueLiquidation

T = TypeVar("T")
_Row = TypeVar("_Row")

#: Exchange timestamps outside these bounds (ms) are corrupt, not data: 2009-01-01 .. 2100-01-01.
_MIN_TS_MS = 1_230_768_000_000
_MAX_TS_MS = 4_102_444_800_000

#: A ms timestamp within the bounds :func:`timestamp_ms` checks, for msgspec to check while
#: decoding (a hot path that cannot afford the Python call).
TimestampMs = Annotated[int, msgspec.Meta(ge=_MIN_TS_MS, lt=_MAX_TS_MS)]

#: The most bytes one frame may hold: websockets' ``max_size`` on our connections, and what
#: a compressed frame may inflate to (:func:`gunzip`).
MAX_FRAME_BYTES = 2**24

_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")
_ONE_MS = datetime.fromisoformat("1970-01-01T00:00:00.001+00:00") - _EPOCH


class FrameError(ValueError):
    """A frame from ``exchange`` could not be normalized; ``reason`` says why."""

    def __init__(self, exchange: str, reason: str) -> None:
        super().__init__(f"{exchange} frame: {reason}")
        self.exchange = exchange
        self.reason = reason


class PartialFrame(FrameError):
    """Some rows of a frame of many could not be normalized; ``events`` are the others'.

    One push carries many liquidations (OKX's ``data`` of every swap, Deribit's trades of
    every future in 100 ms, Bitget's rows of every symbol, a Bybit batch of 500 ms): a row
    that cannot be read costs that row, not the push. ``reason`` names the rows skipped; the
    connection counts the frame as malformed and still delivers ``events``. A frame whose
    shape is wrong (a field of the wrong JSON type anywhere in it) is a plain FrameError.
    """

    def __init__(self, exchange: str, reason: str, events: list[VenueLiquidation]) -> None:
        super().__init__(exchange, reason)
        self.events = events


#: Reads one row (its index and value) into its events: one, several (Deribit's ``MT``) or
#: none; raises FrameError naming what is wrong with it.
ReadRow = Callable[[int, _Row], "VenueLiquidation | Sequence[VenueLiquidation] | None"]


def rows_events(
    rows: Sequence[_Row], read: ReadRow[_Row]
) -> tuple[list[VenueLiquidation], list[str]]:
    """The events of ``rows`` read one at a time, and the reasons of the rows that raised
    FrameError (skipped); :func:`all_or_partial` turns both into the frame's answer."""
    events: list[VenueLiquidation] = []
    skipped: list[str] = []
    for i, row in enumerate(rows):
        try:
            found = read(i, row)
        except FrameError as exc:
            skipped.append(exc.reason)
            continue
        if found is None:
            continue
        if isinstance(found, VenueLiquidation):
            events.append(found)
        else:
            events.extend(found)
    return events, skipped


def all_or_partial(
    exchange: str, events: list[VenueLiquidation], skipped: list[str], rows: int
) -> list[VenueLiquidation]:
    """``events`` when no row was skipped; else :class:`PartialFrame` carrying them and
    naming the skipped rows (the first three reasons), or a plain FrameError when there are
    none to carry (a frame of one row says that row's reason alone)."""
    if not skipped:
        return events
    if rows == 1:
        raise FrameError(exchange, skipped[0])
    shown = "; ".join(skipped[:3])
    more = f"; {len(skipped) - 3} more" if len(skipped) > 3 else ""
    reason = f"{len(skipped)} of {rows} rows skipped: {shown}{more}"
    if not events:
        raise FrameError(exchange, reason)
    raise PartialFrame(exchange, reason, events)


class FrameDecoder(Generic[T]):
    """Decodes one exchange's JSON frames into a typed struct, raising only FrameError."""

    __slots__ = ("_decoder", "exchange")

    def __init__(self, exchange: str, into: type[T]) -> None:
        self.exchange = exchange
        self._decoder: msgspec.json.Decoder[T] = msgspec.json.Decoder(into)

    def __call__(self, frame: bytes | str) -> T:
        try:
            return self._decoder.decode(frame)
        except msgspec.ValidationError as exc:
            raise FrameError(self.exchange, f"unexpected shape: {exc}") from None
        except msgspec.DecodeError as exc:
            raise FrameError(self.exchange, f"not valid JSON: {exc}") from None
        except RecursionError:  # msgspec's nesting limit: the frame is no venue's
            raise FrameError(self.exchange, "JSON nested too deeply") from None


def is_text_pong(frame: bytes | str) -> bool:
    """Whether ``frame`` is the bare-text ``pong`` some exchanges answer a text ``ping`` with.

    OKX, BitMEX and Bitget reply with the four letters, which are not JSON.
    """
    text = frame.strip() if isinstance(frame, str) else frame.strip().decode("latin-1")
    return text == "pong"


def gunzip(exchange: str, frame: bytes) -> bytes:
    """Inflate a gzip-compressed binary frame (HTX); plain frames pass through.

    At most :data:`MAX_FRAME_BYTES` come out, as websockets takes at most that many in: gzip
    packs a run of one byte about 1000:1, so a corrupt or hostile frame within the wire limit
    could otherwise inflate to gigabytes and block the event loop while it does."""
    if frame[:2] != b"\x1f\x8b":
        return frame
    parts: list[bytes] = []
    left = MAX_FRAME_BYTES
    rest = frame
    try:
        while rest:  # one gzip member after another, as gzip.decompress reads them
            inflate = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
            part = inflate.decompress(rest, left + 1)
            if len(part) > left:
                raise FrameError(exchange, f"gzip frame inflates past {MAX_FRAME_BYTES} bytes")
            if not inflate.eof:
                raise FrameError(exchange, "corrupt gzip frame: it ends inside a member")
            parts.append(part)
            left -= len(part)
            rest = inflate.unused_data
    except zlib.error as exc:
        raise FrameError(exchange, f"corrupt gzip frame: {exc}") from None
    return b"".join(parts)


def number(exchange: str, where: str, value: float | int | str) -> float:
    """A finite float from a JSON number or numeric string."""
    if isinstance(value, str):
        try:
            result = float(value)
        except ValueError:
            raise FrameError(exchange, f"{where} is not a number: {value!r}") from None
    else:
        try:
            result = float(value)
        except OverflowError:  # a JSON integer with hundreds of digits
            raise FrameError(exchange, f"{where} is out of range: {value!r}") from None
    if not math.isfinite(result):
        raise FrameError(exchange, f"{where} is not finite: {value!r}")
    return result


def positive(exchange: str, where: str, value: float | int | str) -> float:
    """A finite number > 0 (prices, fill sizes)."""
    result = number(exchange, where, value)
    if result <= 0:
        raise FrameError(exchange, f"{where} must be > 0: {value!r}")
    return result


def non_negative(exchange: str, where: str, value: float | int | str) -> float:
    """A finite number >= 0 (accumulated fills, which are 0 for an unfilled order)."""
    result = number(exchange, where, value)
    if result < 0:
        raise FrameError(exchange, f"{where} must be >= 0: {value!r}")
    return result


def timestamp_ms(exchange: str, where: str, value: int | float | str) -> int:
    """An epoch-milliseconds timestamp within plausible bounds (a whole-number float or a
    numeric string is read as the integer it spells)."""
    if isinstance(value, str):
        try:
            result = int(value)
        except ValueError:
            raise FrameError(exchange, f"{where} is not an integer timestamp: {value!r}") from None
    elif isinstance(value, float):
        if not value.is_integer():
            raise FrameError(exchange, f"{where} is not an integer timestamp: {value!r}")
        result = int(value)
    else:
        result = value
    if not _MIN_TS_MS <= result < _MAX_TS_MS:
        raise FrameError(exchange, f"{where} is not a plausible ms timestamp: {value!r}")
    return result


def iso_ms(exchange: str, where: str, value: str) -> int:
    """Epoch ms of an ISO-8601 UTC time such as ``2023-04-04T00:29:19.353Z`` (dYdX)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise FrameError(exchange, f"{where} is not an ISO-8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise FrameError(exchange, f"{where} has no time zone: {value!r}")
    # Integer arithmetic keeps the milliseconds exact (a float timestamp would round).
    return timestamp_ms(exchange, where, (parsed - _EPOCH) // _ONE_MS)


def ms_iso(ms: int) -> str:
    """``1700000000123`` -> ``2023-11-14T22:13:20.123Z``: :func:`iso_ms` the other way, for
    REST queries that take an ISO-8601 time (dYdX, Kraken Futures)."""
    # Integer arithmetic keeps the milliseconds exact (a float timestamp would round).
    moment = _EPOCH + _ONE_MS * ms
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def finite_product(exchange: str, where: str, value: float) -> float:
    """Guard a computed size: huge-but-finite inputs can still overflow to inf."""
    if not math.isfinite(value) or value < 0:
        raise FrameError(exchange, f"{where} computes to {value!r}")
    return value
