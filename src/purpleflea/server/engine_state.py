"""The cascade engine's state, kept beside a SQLite store across a restart, a crash included.

A restart used to rebuild the engine by replaying the newest stored events (the warm), and
the warmed engine was not the one that ran before: live, the engine had also been told the
heatmap's fuel at every snapshot (the warm: never), every open-interest snapshot per listing
(the warm: the stored rows, sampled to 0.5 % moves), and it had ticked on the wall clock
(the warm: never, so cascades a tick had exhausted were still followed). A restart 23 minutes
into the simulated crash had the warmed engine follow 28 cascades the live one never started.

So the running tracker writes what the engine knows (:meth:`CascadeEngine.export_state`) to
``<store file>.engine`` now and then (a checkpoint, :meth:`Pipeline._checkpoint`) and at a
clean stop, each tagged with the store's last seq at that moment and the store file's
identity; the checkpoint before it is kept as ``<store file>.engine.prev``. A start continues
from the newest one whose seq the store still holds and replays the events stored after it
(:meth:`Pipeline._warm`): after a clean stop there are none, and the engine is the one that
stopped; after a crash (SIGKILL) the engine is the one that ran: what it was told since the
checkpoint besides the stored events (the heatmap's fuel and open interest, the ticks) is
replayed from the journal beside it (:mod:`.engine_journal`), which each checkpoint begins
anew with a marker it names (``journal``). A start writes a checkpoint of the engine it
continued (or warmed), so a replay never spans a start. A
state past the end of the store (a power loss took the store's last commits) describes events
the store lost: it is removed, never continued later when new seqs pass it. A state also names
the newest event stored at its seq (its seq and id, the anchor): one whose anchor the store
does not hold describes another history (another store copied over the file, which keeps its
inode) and is removed too. With neither, or one of another config, the start warms the engine
from the store instead.

Written atomically and durably: a temporary file, fsync, renames, fsync of the folder; a
write interrupted at any point leaves the previous states (or one of them) readable.

A PostgreSQL store keeps the same two states, with the same checks, in its own database
(:mod:`.engine_state_postgres`): the pipeline sees either through :class:`KeepsEngine`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal, NamedTuple, Protocol, runtime_checkable

import msgspec

from purpleflea.server.engine_journal import EngineJournal, KeepsJournal
from purpleflea.store.file_guard import file_identity, write_durably

log = logging.getLogger("purpleflea.engine_state")

#: The state file's name after the store file's: ``purpleflea.sqlite.engine``.
SUFFIX = ".engine"
#: The checkpoint before the newest: ``purpleflea.sqlite.engine.prev``.
PREVIOUS = ".prev"
VERSION = 1


@runtime_checkable
class KeepsState(Protocol):
    """A scorer whose state can be written down and continued (the cascade engine)."""

    def export_state(self) -> dict[str, object]: ...

    def restore_state(self, saved: dict[str, object]) -> None: ...


class Saved(msgspec.Struct, kw_only=True):
    version: int
    last_seq: int
    store: tuple[int, int] | None
    engine: dict[str, object]
    #: The seq and id of the newest event stored at or below ``last_seq`` when the state was
    #: taken ((0, ""): none); None in a state written before anchors were (not checked).
    anchor: tuple[int, str] | None = None
    #: The checkpoint's marker in the journal (:mod:`.engine_journal`); None: none (a clean
    #: stop's state, or one written before the journal).
    journal: int | None = None


#: The anchor of a store at a seq: the seq and id of its newest event at or below it.
Anchor = tuple[int, str]


class Continued(NamedTuple):
    """The state an engine was continued from and the store's last seq when it was taken,
    and its marker in the journal (None: it has none)."""

    engine: dict[str, object]
    seq: int
    journal: int | None = None


class KeepsEngine(Protocol):
    """Where the engine's state and journal are kept: files beside a SQLite store
    (:class:`EngineState`) or tables of a PostgreSQL store's database
    (:class:`~purpleflea.server.engine_state_postgres.PostgresEngineState`)."""

    @property
    def journal(self) -> KeepsJournal:
        """What the engine is told besides the stored events, for a replay after a crash."""
        ...

    @property
    def where(self) -> str:
        """Where, for the log (a file's path, a database's table)."""
        ...

    async def put(
        self,
        exported: dict[str, object],
        last_seq: int,
        anchor: Anchor | None = None,
        *,
        journal: int | None = None,
    ) -> float:
        """Keep an exported state as the newest (the newest before it the previous); the CPU
        seconds the write took on the thread that encoded it. Raises ``OSError`` or
        :class:`~purpleflea.store.base.StoreUnavailable` when it could not."""
        ...

    async def load(
        self,
        engine: KeepsState,
        last_seq: int,
        *,
        within: int,
        anchor_at: Callable[[int], Awaitable[Anchor]] | None = None,
    ) -> Continued | None: ...

    async def close(self) -> None: ...


Verdict = Literal["use", "remove", "skip"]


def verdict(
    saved: Saved, where: str, identity: tuple[int, int] | None, last_seq: int, within: int
) -> Verdict:
    """Whether a state read from ``where`` may be continued over a store that ends at
    ``last_seq``: ``use``; ``remove`` (of another store or version, or past the store's end:
    never continued); ``skip`` (more than ``within`` seqs behind it). Logged."""
    if saved.version != VERSION or saved.store != identity:
        log.info("%s: written beside another store file (or version): removed", where)
        return "remove"
    if saved.last_seq > last_seq:
        log.info(
            "%s: written at seq %d, the store ends at %d (it lost its last commits): removed",
            where,
            saved.last_seq,
            last_seq,
        )
        return "remove"
    if last_seq - saved.last_seq > within:
        log.info(
            "%s: written at seq %d, %d seqs before the store's end (more than the %d a start "
            "replays)",
            where,
            saved.last_seq,
            last_seq - saved.last_seq,
            within,
        )
        return "skip"
    return "use"


async def continue_from(
    usable: list[tuple[Saved, str]],
    engine: KeepsState,
    anchor_at: Callable[[int], Awaitable[Anchor]] | None,
    remove: Callable[[str], Awaitable[None]],
) -> Continued | None:
    """Restore ``engine`` from the first of ``usable`` (the newest first, each with where it
    was read) whose anchor the store holds; one of another history is ``remove``d, one the
    engine refuses passed over."""
    for saved, where in usable:
        if anchor_at is not None and saved.anchor is not None:
            held = await anchor_at(saved.last_seq)
            if tuple(saved.anchor) != held:
                log.info(
                    "%s: written at seq %d after event %s (seq %d), the store holds %s "
                    "there: another store's history: removed",
                    where,
                    saved.last_seq,
                    saved.anchor[1] or "(none)",
                    saved.anchor[0],
                    f"event {held[1]} (seq {held[0]})" if held[1] else "no event",
                )
                await remove(where)
                continue
        try:
            await asyncio.to_thread(engine.restore_state, saved.engine)
        except ValueError as exc:
            log.warning("%s (seq %d): %s", where, saved.last_seq, exc)
            continue
        return Continued(saved.engine, saved.last_seq, saved.journal)
    return None


class EngineState:
    """The engine state files beside the SQLite store file ``store_file``."""

    def __init__(self, store_file: str | Path) -> None:
        self.store_file = Path(store_file)
        self.path = self.store_file.with_name(self.store_file.name + SUFFIX)
        self.previous = self.path.with_name(self.path.name + PREVIOUS)
        #: What the engine is told besides the stored events, for a replay after a crash.
        self.journal = EngineJournal(self.path)

    @property
    def where(self) -> str:
        return str(self.path)

    async def close(self) -> None:
        """Nothing held open (the journal's file is closed by its :meth:`finish`)."""

    async def put(
        self,
        exported: dict[str, object],
        last_seq: int,
        anchor: Anchor | None = None,
        *,
        journal: int | None = None,
    ) -> float:
        """:meth:`write` from a worker thread; the CPU seconds it took there."""

        def write() -> float:
            began = time.thread_time()
            self.write(exported, last_seq, anchor, journal=journal)
            return time.thread_time() - began

        return await asyncio.to_thread(write)

    @classmethod
    def beside(cls, store_file: str | Path) -> EngineState | None:
        """None for ``:memory:`` (nothing outlives the process)."""
        return None if str(store_file) == ":memory:" else cls(store_file)

    def write(
        self,
        exported: dict[str, object],
        last_seq: int,
        anchor: Anchor | None = None,
        *,
        journal: int | None = None,
    ) -> None:
        """Write an engine's exported state, taken when the store ended at ``last_seq`` (its
        newest event then: ``anchor``), as the newest; the newest before it becomes the
        previous. ``journal``: the marker the journal began with at the export
        (:meth:`EngineJournal.begin`), fsynced first. Blocking (fsyncs): the caller exports
        on the engine's thread and writes from a worker thread."""
        saved = Saved(
            version=VERSION,
            last_seq=last_seq,
            store=file_identity(self.store_file),
            engine=exported,
            anchor=anchor,
            journal=journal,
        )
        if journal is not None:
            self.journal.sync()
        write_durably(self.path, msgspec.msgpack.encode(saved), previous=self.previous)

    async def load(
        self,
        engine: KeepsState,
        last_seq: int,
        *,
        within: int,
        anchor_at: Callable[[int], Awaitable[Anchor]] | None = None,
    ) -> Continued | None:
        """Continue ``engine`` from the newest state written beside this store file at a seq
        the store still holds (at most ``last_seq``), and no more than ``within`` seqs before
        it (the events after it are replayed); what it continued from, or None when it did
        not. States past ``last_seq``, of another file, of another history (their anchor is
        not ``anchor_at`` their seq) or unreadable are removed. The files are read and
        removed from a worker thread."""
        usable = await asyncio.to_thread(self._usable, last_seq, within)

        async def remove(where: str) -> None:
            await asyncio.to_thread(Path(where).unlink, missing_ok=True)

        return await continue_from(
            [(saved, str(path)) for saved, path in usable], engine, anchor_at, remove
        )

    def _usable(self, last_seq: int, within: int) -> list[tuple[Saved, Path]]:
        """The states that may be continued, the newest first; the others removed."""
        usable: list[tuple[Saved, Path]] = []
        identity = file_identity(self.store_file)
        for path in (self.path, self.previous):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            except OSError as exc:  # a folder in its place, a disk's EIO: the next one
                log.warning("%s: cannot be read (%s): not continued", path, exc)
                continue
            try:
                saved = msgspec.msgpack.decode(data, type=Saved)
            except msgspec.DecodeError as exc:
                log.warning("%s: unreadable (%s): removed", path, exc)
                path.unlink(missing_ok=True)
                continue
            found = verdict(saved, str(path), identity, last_seq, within)
            if found == "remove":
                path.unlink(missing_ok=True)
            elif found == "use":
                usable.append((saved, path))
        return sorted(usable, key=lambda found: -found[0].last_seq)
