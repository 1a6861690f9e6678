"""What the cascade engine is told besides the stored events, kept beside the store for a crash.

A restart after a crash continues the newest checkpoint of the engine (:mod:`.engine_state`)
and replays the events stored after it. Live, the engine was also told, between those events:

- each market side's fuel ratio (:meth:`CascadeEngine.set_fuel`, from the heatmap at each
  snapshot), which no store row holds: the heatmap's model is rebuilt at a start, not
  continued, and its running average of each side's fuel is in no file;
- each listing's open interest (:meth:`CascadeEngine.set_open_interest`), of which the store
  keeps market totals sampled to 0.5 % moves (the open interest recorder), not the listings;
- the ticks on the wall clock, which move a followed side's buckets and may end its cascade;
  only the ticks that ended one leave a stored alert (a tick while no cascade is followed
  changes nothing: not written).

None of these can be derived from what the store holds, so each is written here as it is
told, with the position it was told at: the last seq handed out then (every event scored
before it has a seq at or below it, every event after it one above). A replay applies each
record before the first stored event above its position, in the order written.

The journal is a file beside the store, ``<store file>.engine.journal``, of length-prefixed
msgpack frames (:class:`EngineJournal`), appended with one ``write`` per snapshot or tick (in
the OS at once: a SIGKILL loses nothing written; fsynced at each checkpoint only, so a power
loss may take its tail as it may take the store's). Each checkpoint begins a new file (the
one before it is kept as ``.prev``) starting with a marker that names the checkpoint (a
random number also in the state file): a replay reads from the marker of the state it
continued, and with no such marker (a state written by an older version, or a journal lost)
none of it. So the files hold the records of two checkpoint intervals at most.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import struct
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, Protocol

import msgspec

from purpleflea.engine.heatmap_feed import FuelSink
from purpleflea.model import Side

log = logging.getLogger("purpleflea.engine_journal")

#: The journal's name after the engine state file's: ``purpleflea.sqlite.engine.journal``.
SUFFIX = ".journal"
PREVIOUS = ".prev"

_LENGTH = struct.Struct("<I")
#: A frame's first item: a marker's (a told frame's is a position, never below 0).
MARK = -1
#: Each told item's first field.
_FUEL_LONG, _FUEL_SHORT, _OPEN_INTEREST, _TICK = 0, 1, 2, 3


class Fuel(NamedTuple):
    position: int
    market: str
    side: Side
    ratio: float


class OpenInterest(NamedTuple):
    position: int
    market: str
    usd: float
    instrument: str


class Tick(NamedTuple):
    position: int
    now_ms: int


Told = Fuel | OpenInterest | Tick

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode


class Unreadable(ValueError):
    """A frame that is not one this module writes."""


def new_nonce() -> int:
    """A checkpoint's name in the journal (63 random bits: msgpack's signed integers)."""
    return secrets.randbits(63)


class KeepsJournal(Protocol):
    """A journal the pipeline writes to: :class:`EngineJournal` (files beside a SQLite store)
    or :class:`~purpleflea.server.engine_state_postgres.PostgresEngineJournal` (a table of a
    PostgreSQL store's database). ``begin``, ``told`` and ``flush`` run on the engine's
    thread and never wait for a disk or a database."""

    counters: Counter[str]
    since_begin: int

    @property
    def recording(self) -> bool: ...

    def begin(self, nonce: int, seq: int) -> None: ...

    def told(self, record: Told) -> None: ...

    def flush(self, *, tick: bool = False) -> None:
        """After a snapshot's records (``tick``: after a tick's, about once a second)."""
        ...

    async def written(self) -> None:
        """Wait until what was handed over to be written is written."""
        ...

    async def finish(self) -> None:
        """A stop: write everything told, then close."""
        ...

    async def records_after(self, nonce: int) -> list[Told] | None: ...


class JournalFrames:
    """What the engine is told, encoded as frames in a buffer (the same for a file and a
    table): a marker ``[-1, nonce, seq]`` or the things told at one position, ``[position,
    item, ...]``, each item ``[0 | 1, market, ratio]`` (a long or short side's fuel), ``[2,
    market, usd, instrument]`` or ``[3, now_ms]`` (a tick), each frame a 4-byte length and
    msgpack. A name is written out the first time a checkpoint's records hold it and by its
    number (the order names first appeared) after that: a snapshot's three calls take ~48
    bytes instead of ~112."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._names: dict[str, int] = {}
        self._frame: list[object] = []  # [position, item, ...] not yet encoded
        #: Fuel and open interest told since the last :meth:`begin` (ticks not counted: a
        #: quiet engine ticks every second): a checkpoint is due with any, as with events.
        self.since_begin = 0
        #: Records told and bytes written (the journal's growth).
        self.records = 0
        self.bytes = 0
        #: ``journal_write_errors``: journals not begun or writes failed (the tracker's
        #: counters while it runs: ``purpleflea_engine_journal_write_failures_total``).
        self.counters: Counter[str] = Counter()

    @property
    def recording(self) -> bool:
        """Whether what the engine is told is written (from the first ``begin`` on)."""
        raise NotImplementedError

    def told(self, record: Told) -> None:
        """The engine was told ``record`` (buffered until :meth:`flush`)."""
        if not self.recording:
            return
        if self._frame and self._frame[0] != record.position:
            self._end_frame()
        frame = self._frame
        if not frame:
            frame.append(record.position)
        if isinstance(record, Fuel):
            side = _FUEL_LONG if record.side == "long" else _FUEL_SHORT
            frame.append((side, self._name(record.market), record.ratio))
        elif isinstance(record, OpenInterest):
            market, instrument = self._name(record.market), self._name(record.instrument)
            frame.append((_OPEN_INTEREST, market, record.usd, instrument))
        else:
            frame.append((_TICK, record.now_ms))
        self.records += 1
        if not isinstance(record, Tick):
            self.since_begin += 1

    def _name(self, name: str) -> int | str:
        """``name``'s number in this file, or ``name`` itself the first time (numbered then)."""
        number = self._names.get(name)
        if number is None:
            self._names[name] = len(self._names)
            return name
        return number

    def _end_frame(self) -> None:
        if self._frame:
            self._add_frame(self._frame)
            self._frame = []

    def _add_frame(self, frame: list[object]) -> None:
        data = _encode(frame)
        self._buffer += _LENGTH.pack(len(data))
        self._buffer += data


class EngineJournal(JournalFrames):
    """The journal files beside the engine state file ``state_file``: the frames of
    :class:`JournalFrames`, each file begun by its checkpoint's marker (a name is numbered
    from the file's start)."""

    def __init__(self, state_file: str | Path) -> None:
        super().__init__()
        state_file = Path(state_file)
        self.path = state_file.with_name(state_file.name + SUFFIX)
        self.previous = self.path.with_name(self.path.name + PREVIOUS)
        self._fd: int | None = None

    @property
    def recording(self) -> bool:
        """Whether what the engine is told is written (from the first :meth:`begin` on)."""
        return self._fd is not None

    def begin(self, nonce: int, seq: int) -> None:
        """A checkpoint named ``nonce`` was exported with the store ending at ``seq``: the
        current file becomes the previous one and a new one starts with its marker. On the
        engine's thread, right at the export (nothing told between them). An ``OSError``
        leaves the journal not recording (no records without their checkpoint's marker)."""
        self.close()
        self._names.clear()
        self.since_begin = 0
        try:
            if self.path.exists():
                os.replace(self.path, self.previous)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
        except OSError as exc:
            self.counters["journal_write_errors"] += 1
            log.warning("%s: could not start the engine journal: %s", self.path, exc)
            return
        self._add_frame([MARK, nonce, seq])
        self.flush()

    def sync(self) -> None:
        """fsync the current file (its marker before the checkpoint's state is written)."""
        fd = self._fd
        if fd is not None:
            os.fsync(fd)

    def flush(self, *, tick: bool = False) -> None:
        """Hand what is buffered to the OS (it then outlives the process). A failure (a full
        disk) stops the journal until the next checkpoint begins another: a replay of records
        with a gap would tell the engine part of what it was told."""
        self._end_frame()
        fd, buffer = self._fd, self._buffer
        if fd is None or not buffer:
            buffer.clear()
            return
        try:
            written = os.write(fd, buffer)
            while written < len(buffer):
                written += os.write(fd, memoryview(buffer)[written:])
        except OSError as exc:
            self.counters["journal_write_errors"] += 1
            log.warning(
                "%s: could not write the engine journal (%s): stopped until the next checkpoint",
                self.path,
                exc,
            )
            buffer.clear()
            self.close()
            # The marker's records are incomplete now: a replay must not use them.
            self.path.unlink(missing_ok=True)
            return
        buffer.clear()
        self.bytes += written

    def close(self) -> None:
        self.flush()
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    async def written(self) -> None:
        """Each :meth:`flush` handed its records to the OS already."""

    async def finish(self) -> None:
        self.close()

    async def records_after(self, nonce: int) -> list[Told] | None:
        """:meth:`after`, read from a worker thread."""
        return await asyncio.to_thread(self.after, nonce)

    def after(self, nonce: int) -> list[Told] | None:
        """The records written after the marker ``nonce``, in order (the previous file and then
        the current one), or None when neither holds that marker. A torn last frame (a write
        cut short) or an unreadable one ends its file's records. A file that cannot be read
        (a folder in its place, a disk's EIO) is passed over with a warning: the marker may
        be in the other; when it was in the one read before, its records have a gap (None)."""
        found: list[Told] | None = None
        for path in (self.previous, self.path):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                if found is not None:
                    # The marker's file was made the previous one by the next checkpoint's
                    # begin, whose file is gone: removed by a failed write (a full disk, which
                    # failed that checkpoint's state too) or never made. Its records are lost:
                    # a gap.
                    return None
                continue
            except OSError as exc:
                log.warning("%s: cannot be read (%s): not replayed", path, exc)
                if found is not None:
                    return None
                continue
            found = records(frames(data, str(path)), nonce, found, str(path))
        return found


def records(
    run: list[list[object]], nonce: int, found: list[Told] | None, where: str
) -> list[Told] | None:
    """``found`` (None: the marker ``nonce`` not met yet) with the records of the frames
    ``run`` after that marker; names are numbered from the run's first frame on. A frame
    that is not one this module writes ends the run (logged)."""
    names: list[str] = []
    for frame in run:
        try:
            if frame[0] == MARK:
                if frame[1] == nonce:
                    found = []
            elif found is not None:
                found += items(frame, names)
            else:
                items(frame, names)  # numbers the names it introduces
        except (ValueError, IndexError, TypeError) as exc:  # ValueError: Unreadable, float()
            log.warning("%s: unreadable frame (%s): the rest ignored", where, exc)
            break
    return found


def frames(data: bytes, where: str) -> list[list[object]]:
    """The frames of ``data`` (length-prefixed msgpack lists), up to a torn last frame (a
    write cut short) or an unreadable one (logged: the rest ignored)."""
    out: list[list[object]] = []
    at = 0
    while at + _LENGTH.size <= len(data):
        (size,) = _LENGTH.unpack_from(data, at)
        end = at + _LENGTH.size + size
        if end > len(data):
            break
        try:
            frame = _decode(data[at + _LENGTH.size : end])
            if not isinstance(frame, list) or not frame:
                raise Unreadable("not a frame")
        except (msgspec.DecodeError, Unreadable) as exc:
            log.warning("%s: unreadable at byte %d (%s): the rest ignored", where, at, exc)
            break
        out.append(frame)
        at = end
    return out


def items(frame: list[object], names: list[str]) -> list[Told]:
    """The records of one told frame, ``names`` the file's so far (extended)."""

    def name(value: object) -> str:
        if isinstance(value, str):
            names.append(value)
            return value
        if isinstance(value, int) and 0 <= value < len(names):
            return names[value]
        raise Unreadable(f"name {value!r} not introduced")

    position = frame[0]
    if not isinstance(position, int) or position < 0:
        raise Unreadable(f"position {position!r}")
    out: list[Told] = []
    for item in frame[1:]:
        if not isinstance(item, list) or not item:
            raise Unreadable(f"item {item!r}")
        kind = item[0]
        if kind in (_FUEL_LONG, _FUEL_SHORT) and len(item) == 3:
            side: Side = "long" if kind == _FUEL_LONG else "short"
            out.append(Fuel(position, name(item[1]), side, float(item[2])))
        elif kind == _OPEN_INTEREST and len(item) == 4:
            market = name(item[1])
            out.append(OpenInterest(position, market, float(item[2]), name(item[3])))
        elif kind == _TICK and len(item) == 2 and isinstance(item[1], int):
            out.append(Tick(position, item[1]))
        else:
            raise Unreadable(f"item {item!r}")
    return out


class JournaledFuel:
    """The heatmap's hooks into the engine, each call told to ``journal`` once the engine
    took it, at ``position()`` (the last seq handed out)."""

    def __init__(self, engine: FuelSink, journal: KeepsJournal, position: Callable[[], int]):
        self.engine = engine
        self.journal = journal
        self.position = position

    def set_fuel(self, market: str, side: Side, ratio: float) -> None:
        self.engine.set_fuel(market, side, ratio)
        if self.journal.recording:
            self.journal.told(Fuel(self.position(), market, side, ratio))
        else:
            self._unkept()

    def set_open_interest(self, market: str, usd: float, instrument: str = "") -> None:
        self.engine.set_open_interest(market, usd, instrument)
        if self.journal.recording:
            self.journal.told(OpenInterest(self.position(), market, usd, instrument))
        else:
            self._unkept()

    def _unkept(self) -> None:
        """The engine was told what neither its last state nor the journal keeps (the journal
        off: not begun, or stopped by a failed write): a checkpoint is due, which begins it
        again, as for records told (with only snapshots coming, none was, and it stayed off)."""
        self.journal.since_begin += 1
