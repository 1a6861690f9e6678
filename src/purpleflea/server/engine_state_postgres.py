"""The cascade engine's state and journal in a PostgreSQL store's own database.

Beside a SQLite store they are files (:mod:`.engine_state`, :mod:`.engine_journal`). A
PostgreSQL store has no file to put them beside, and a standby that takes the sequencer lock
over runs on another machine: it could not read a file the failed node wrote anyway. So they
are two tables of the store's schema (:mod:`purpleflea.store.postgres`), and a restart of the
ingest node and a standby's takeover both continue the engine that ran, as a SQLite store's
restart does, instead of warming one from the stored events.

``engine_state``: the newest state (``slot`` 0) and the one before it (``slot`` 1), each the
msgpack of :class:`~.engine_state.Saved`, replaced in one transaction (the newest becomes the
previous). The same checks as the files': the version; the seq it was taken at is not past
the store's end and not more than a start replays before it; the anchor (the newest event
stored at its seq) is the one the store holds there; an unreadable one is removed and the one
before it continued. There is no store identity to compare (a file's inode): the rows live in
the database whose events they describe, and a restored backup brings its own.

``engine_journal``: the frames of :class:`~.engine_journal.JournalFrames`, a row per batch,
each checkpoint's records begun by a marker row. The engine is told ~200 snapshots a second
at 275 markets; a round trip per snapshot on the engine's loop would cost what the snapshot
does, so a snapshot's records wait in memory and are written by one task, at most once a
second (at the tick, or when a snapshot finds the last write a second old), in one
transaction (one ``INSERT`` of every chunk handed over). A crash (SIGKILL, a machine lost)
loses what was told since the last write: at most ~1 s of fuel and open interest, and the
tick of that second; the events of that second are in the store and are replayed. Each marker
removes the rows before the newest marker already there, so the table holds the records of
two checkpoint intervals at most, as the two files do. A failed write (the database gone, the
lock lost) stops the journal until the next checkpoint and removes the rows of its marker
and those before (at once, or at the next tick that can write): a replay of records with a
gap would tell the engine part of what it was told.

Every write checks the store's ``write_guard`` (the sequencer lock) in its transaction: a
node that lost the lock writes neither, so a superseded node's clean stop cannot replace the
state of the standby that took over.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
import psycopg

from purpleflea.server.engine_journal import (
    MARK,
    JournalFrames,
    Told,
    frames,
    records,
)
from purpleflea.server.engine_state import (
    VERSION,
    Anchor,
    Continued,
    KeepsState,
    Saved,
    continue_from,
    verdict,
)
from purpleflea.store import postgres
from purpleflea.store.base import StoreUnavailable
from purpleflea.store.factory import redacted

if TYPE_CHECKING:
    from purpleflea.store.postgres import PostgresStore

log = logging.getLogger("purpleflea.engine_state")

T = TypeVar("T")

_NEWEST, _PREVIOUS = 0, 1
_SLOTS = {_NEWEST: "newest", _PREVIOUS: "previous"}

Connection = psycopg.AsyncConnection[tuple[Any, ...]]


class PostgresEngineState:
    """The engine's state and journal in the database of ``store`` (see the module
    docstring), on a connection of their own (opened on first use, replaced when the server
    dropped it); ``journal_interval_s``: the journal is written at most this often."""

    def __init__(self, store: PostgresStore, *, journal_interval_s: float = 1.0) -> None:
        self.store = store
        self.where = f"PostgreSQL store {redacted(store.url)!r}, table engine_state"
        self.journal = PostgresEngineJournal(self, interval_s=journal_interval_s)
        self._connection: Connection | None = None
        self._lock = asyncio.Lock()

    async def _connected(self) -> Connection:
        connection = self._connection
        if connection is not None and not (connection.closed or connection.broken):
            return connection
        try:
            connection = await psycopg.AsyncConnection.connect(
                self.store.url,
                autocommit=False,
                application_name="purpleflea-engine-state",
                # As the store's: a database that stops answering held it ~130 s a try.
                **postgres.connect_options(),
            )
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"{self.where}: cannot connect: {exc}") from exc
        self._connection = connection
        return connection

    async def run(self, work: Callable[[Connection], Awaitable[T]], *, write: bool) -> T:
        """``work`` in one transaction, after the store's write guard when it writes. A
        connection dropped while idle is found so at its ``BEGIN``: nothing ran, it runs once
        more on a new one. Any other failure is :class:`StoreUnavailable`."""
        async with self._lock:
            for attempt in (1, 2):
                connection = await self._connected()
                begun = False
                try:
                    async with connection.transaction():
                        begun = True
                        guard = self.store.write_guard
                        if write and guard is not None:
                            await guard(connection)
                        return await work(connection)
                except psycopg.Error as exc:
                    if connection.broken and not begun and attempt == 1:
                        continue
                    raise StoreUnavailable(f"{self.where}: {exc}") from exc
            raise AssertionError("unreachable")

    async def put(
        self,
        exported: dict[str, object],
        last_seq: int,
        anchor: Anchor | None = None,
        *,
        journal: int | None = None,
    ) -> float:
        """Keep ``exported`` as the newest state, the newest before it as the previous, in
        one transaction; ``journal``'s marker is written first. The CPU seconds of the
        encoding (on a worker thread)."""

        def encode() -> tuple[bytes, float]:
            began = time.thread_time()
            saved = Saved(
                version=VERSION,
                last_seq=last_seq,
                store=None,
                engine=exported,
                anchor=anchor,
                journal=journal,
            )
            return msgspec.msgpack.encode(saved), time.thread_time() - began

        body, cpu = await asyncio.to_thread(encode)
        if journal is not None:
            await self.journal.written()  # its marker before the state that names it

        async def replace(connection: Connection) -> None:
            await connection.execute("DELETE FROM engine_state WHERE slot = %s", (_PREVIOUS,))
            await connection.execute(
                "UPDATE engine_state SET slot = %s WHERE slot = %s", (_PREVIOUS, _NEWEST)
            )
            await connection.execute(
                "INSERT INTO engine_state (slot, body) VALUES (%s, %s)", (_NEWEST, body)
            )

        await self.run(replace, write=True)
        return cpu

    async def load(
        self,
        engine: KeepsState,
        last_seq: int,
        *,
        within: int,
        anchor_at: Callable[[int], Awaitable[Anchor]] | None = None,
    ) -> Continued | None:
        """As :meth:`.engine_state.EngineState.load`, from the rows: the newest at a seq the
        store holds; those past it, of another version or history, or unreadable removed.
        The database unreachable: None (the start warms the engine)."""

        async def read(connection: Connection) -> list[tuple[Any, ...]]:
            cursor = await connection.execute("SELECT slot, body FROM engine_state ORDER BY slot")
            return await cursor.fetchall()

        try:
            rows = await self.run(read, write=False)
        except StoreUnavailable as exc:
            log.warning("%s: cannot be read (%s): not continued", self.where, exc)
            return None
        usable: list[tuple[Saved, str]] = []
        slots: dict[str, int] = {}
        for slot, body in rows:
            where = f"{self.where}, slot {slot} ({_SLOTS.get(slot, 'unknown')})"
            slots[where] = slot
            try:
                saved = await asyncio.to_thread(msgspec.msgpack.decode, body, type=Saved)
            except msgspec.DecodeError as exc:
                log.warning("%s: unreadable (%s): removed", where, exc)
                await self._remove(slot)
                continue
            found = verdict(saved, where, None, last_seq, within)
            if found == "remove":
                await self._remove(slot)
            elif found == "use":
                usable.append((saved, where))
        usable.sort(key=lambda found: -found[0].last_seq)

        async def remove(where: str) -> None:
            await self._remove(slots[where])

        return await continue_from(usable, engine, anchor_at, remove)

    async def _remove(self, slot: int) -> None:
        async def delete(connection: Connection) -> None:
            await connection.execute("DELETE FROM engine_state WHERE slot = %s", (slot,))

        try:
            await self.run(delete, write=True)
        except StoreUnavailable as exc:  # passed over now; checked again at the next start
            log.warning("%s: slot %d not removed: %s", self.where, slot, exc)

    async def close(self) -> None:
        await self.journal.finish()
        async with self._lock:
            if self._connection is not None:
                await self._connection.close()
                self._connection = None


class PostgresEngineJournal(JournalFrames):
    """The journal's rows in ``state``'s database (see the module docstring)."""

    def __init__(self, state: PostgresEngineState, *, interval_s: float = 1.0) -> None:
        super().__init__()
        self.state = state
        self.interval_s = interval_s
        self.where = f"PostgreSQL store {redacted(state.store.url)!r}, table engine_journal"
        self._nonce: int | None = None
        #: Chunks handed over, not yet written: (nonce, marker, frames).
        self._pending: list[tuple[int, bool, bytes]] = []
        self._handed_at = 0.0
        self._writer: asyncio.Task[None] | None = None
        #: Markers whose records a write failed to keep: their rows are removed.
        self._broken: set[int] = set()
        #: Writes (transactions) and chunks written.
        self.writes = 0

    @property
    def recording(self) -> bool:
        return self._nonce is not None

    def begin(self, nonce: int, seq: int) -> None:
        """A checkpoint named ``nonce`` was exported with the store ending at ``seq``: the
        records so far are handed over, then its marker (written at once)."""
        self._hand_over()
        self._names.clear()
        self.since_begin = 0
        self._nonce = nonce
        self._add_frame([MARK, nonce, seq])
        self._pending.append((nonce, True, bytes(self._buffer)))
        self._buffer.clear()
        self._start_writer()

    def flush(self, *, tick: bool = False) -> None:
        """After a snapshot: the records wait unless the last hand-over is ``interval_s``
        old; after a tick they are handed over (written by the writer task, not here)."""
        if not self.recording:
            if tick and self._broken:  # a failed write's rows: removed once it works again
                self._start_writer()
            return
        if tick or time.monotonic() - self._handed_at >= self.interval_s:
            self._hand_over()
            self._start_writer()

    def _hand_over(self) -> None:
        self._end_frame()
        if self._buffer and self._nonce is not None:
            self._pending.append((self._nonce, False, bytes(self._buffer)))
        self._buffer.clear()
        self._handed_at = time.monotonic()

    def _start_writer(self) -> None:
        if (self._pending or self._broken) and (self._writer is None or self._writer.done()):
            self._writer = asyncio.get_running_loop().create_task(
                self._write(), name="engine-journal"
            )

    async def _write(self) -> None:
        """Write what was handed over, a transaction per round, until nothing is left. A
        failure stops the journal until the next marker (counted, logged); its marker's rows
        are removed in the next round, or at a later tick while that fails too."""
        while self._pending or self._broken:
            batch, self._pending = self._pending, []
            broken = set(self._broken)

            async def insert(
                connection: Connection,
                batch: list[tuple[int, bool, bytes]] = batch,
                broken: set[int] = broken,
            ) -> None:
                if broken:
                    # The rows before them too: a state whose replay spans the broken
                    # interval (the one before it, when that checkpoint's state was not
                    # written) would otherwise be told its own interval's records alone.
                    await connection.execute(
                        "DELETE FROM engine_journal WHERE id <= "
                        "(SELECT max(id) FROM engine_journal WHERE nonce = ANY(%s))",
                        (list(broken),),
                    )
                for nonce, marker, body in batch:
                    if marker:  # the newest interval before this one is kept, no older
                        await connection.execute(
                            "DELETE FROM engine_journal WHERE id < "
                            "(SELECT coalesce(max(id), 0) FROM engine_journal WHERE marker)"
                        )
                    await connection.execute(
                        "INSERT INTO engine_journal (nonce, marker, body) VALUES (%s, %s, %s)",
                        (nonce, marker, body),
                    )

            try:
                await self.state.run(insert, write=True)
            except Exception as exc:  # the database gone, the lock lost: not across the loop
                if not batch:
                    return  # only removing a failed write's rows: again at the next tick
                self._failed(batch, exc)
                continue
            self._broken -= broken
            self.writes += 1
            self.bytes += sum(len(body) for _, _, body in batch)

    def _failed(self, batch: list[tuple[int, bool, bytes]], exc: Exception) -> None:
        failed = {nonce for nonce, _, _ in batch}
        self.counters["journal_write_errors"] += 1
        log.warning(
            "%s: could not write the engine journal (%s): stopped until the next checkpoint",
            self.where,
            exc,
        )
        self._broken |= failed
        # A later marker's chunks are whole yet; the failed markers' records end here.
        self._pending = [chunk for chunk in self._pending if chunk[0] not in failed]
        if self._nonce in failed:
            self._nonce = None
            self._buffer.clear()
            self._frame = []

    async def written(self) -> None:
        """Wait until what was handed over is written (or failed)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def finish(self) -> None:
        """A stop: everything told written, then the journal stops until a next begin."""
        if self.recording:
            self._hand_over()
            self._start_writer()
        await self.written()
        self._nonce = None

    async def records_after(self, nonce: int) -> list[Told] | None:
        """The records written after the marker ``nonce``, in order, or None when the table
        holds no such marker (or cannot be read)."""

        async def read(connection: Connection) -> list[tuple[Any, ...]]:
            cursor = await connection.execute(
                "SELECT marker, body FROM engine_journal WHERE id >= "
                "(SELECT min(id) FROM engine_journal WHERE marker AND nonce = %s) ORDER BY id",
                (nonce,),
            )
            return await cursor.fetchall()

        try:
            rows = await self.state.run(read, write=False)
        except StoreUnavailable as exc:
            log.warning("%s: cannot be read (%s): not replayed", self.where, exc)
            return None
        if not rows:
            return None
        return await asyncio.to_thread(self._decode, nonce, rows)

    def _decode(self, nonce: int, rows: list[tuple[Any, ...]]) -> list[Told] | None:
        """Each marker's rows are one run of frames (its names numbered from it)."""
        runs: list[bytearray] = []
        for marker, body in rows:
            if marker or not runs:
                runs.append(bytearray())
            runs[-1] += body
        found: list[Told] | None = None
        for run in runs:
            found = records(frames(bytes(run), self.where), nonce, found, self.where)
        return found
