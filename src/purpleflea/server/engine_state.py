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
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable

import msgspec

from purpleflea.server.engine_journal import EngineJournal
from purpleflea.store.file_guard import file_identity, write_durably

log = logging.getLogger("purpleflea.engine_state")

#: The state file's name after the store file's: ``purpleflea.sqlite.engine``.
SUFFIX = ".engine"
#: The checkpoint before the newest: ``purpleflea.sqlite.engine.prev``.
PREVIOUS = ".prev"
_VERSION = 1


@runtime_checkable
class KeepsState(Protocol):
    """A scorer whose state can be written down and continued (the cascade engine)."""

    def export_state(self) -> dict[str, object]: ...

    def restore_state(self, saved: dict[str, object]) -> None: ...


class _Saved(msgspec.Struct, kw_only=True):
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


class EngineState:
    """The engine state files beside the SQLite store file ``store_file``."""

    def __init__(self, store_file: str | Path) -> None:
        self.store_file = Path(store_file)
        self.path = self.store_file.with_name(self.store_file.name + SUFFIX)
        self.previous = self.path.with_name(self.path.name + PREVIOUS)
        #: What the engine is told besides the stored events, for a replay after a crash.
        self.journal = EngineJournal(self.path)

    @classmethod
    def beside(cls, store_file: str | Path) -> EngineState | None:
        """None for ``:memory:`` (nothing outlives the process)."""
        return None if str(store_file) == ":memory:" else cls(store_file)

    def save(self, engine: KeepsState, last_seq: int, anchor: Anchor | None = None) -> None:
        """Write ``engine``'s state, taken when the store ends at ``last_seq``."""
        self.write(engine.export_state(), last_seq, anchor)

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
        saved = _Saved(
            version=_VERSION,
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
        for saved, path in await asyncio.to_thread(self._usable, last_seq, within):
            if anchor_at is not None and saved.anchor is not None:
                held = await anchor_at(saved.last_seq)
                if tuple(saved.anchor) != held:
                    log.info(
                        "%s: written at seq %d after event %s (seq %d), the store holds %s "
                        "there: another store's history: removed",
                        path,
                        saved.last_seq,
                        saved.anchor[1] or "(none)",
                        saved.anchor[0],
                        f"event {held[1]} (seq {held[0]})" if held[1] else "no event",
                    )
                    await asyncio.to_thread(path.unlink, missing_ok=True)
                    continue
            try:
                await asyncio.to_thread(engine.restore_state, saved.engine)
            except ValueError as exc:
                log.warning("%s (seq %d): %s", path, saved.last_seq, exc)
                continue
            return Continued(saved.engine, saved.last_seq, saved.journal)
        return None

    def _usable(self, last_seq: int, within: int) -> list[tuple[_Saved, Path]]:
        """The states that may be continued, the newest first; the others removed."""
        usable: list[tuple[_Saved, Path]] = []
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
                saved = msgspec.msgpack.decode(data, type=_Saved)
            except msgspec.DecodeError as exc:
                log.warning("%s: unreadable (%s): removed", path, exc)
                path.unlink(missing_ok=True)
                continue
            if saved.version != _VERSION or saved.store != identity:
                log.info("%s: written beside another store file (or version): removed", path)
                path.unlink(missing_ok=True)
            elif saved.last_seq > last_seq:
                log.info(
                    "%s: written at seq %d, the store ends at %d (it lost its last commits): "
                    "removed",
                    path,
                    saved.last_seq,
                    last_seq,
                )
                path.unlink(missing_ok=True)
            elif last_seq - saved.last_seq > within:
                log.info(
                    "%s: written at seq %d, %d seqs before the store's end (more than the %d "
                    "a start replays)",
                    path,
                    saved.last_seq,
                    last_seq - saved.last_seq,
                    within,
                )
            else:
                usable.append((saved, path))
        return sorted(usable, key=lambda found: -found[0].last_seq)
