"""The cascade engine's state, kept beside a SQLite store across a clean restart.

A restart used to rebuild the engine by replaying the newest stored events (the warm), and
the warmed engine was not the one that ran before: live, the engine had also been told the
heatmap's fuel at every snapshot (the warm: never), every open-interest snapshot per listing
(the warm: the stored rows, sampled to 0.5 % moves), and it had ticked on the wall clock
(the warm: never, so cascades a tick had exhausted were still followed). A restart 23 minutes
into the simulated crash had the warmed engine follow 28 cascades the live one never started.

So a clean stop writes what the engine knows (:meth:`CascadeEngine.export_state`) to
``<store file>.engine``, with the store's last seq and the store file's identity, and the
next start continues from it when the store still ends at that seq: the engine is then the
one that stopped. The file is consumed at start (removed once read), so a crash afterwards
never brings back a stale state; after a crash, or with a state of another config, the start
falls back to the warm (:meth:`Pipeline._warm`). Written atomically (a temporary file, fsync,
rename): a stop interrupted while writing leaves the previous file or none.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import msgspec

from purpleflea.store.file_guard import file_identity

log = logging.getLogger("purpleflea.engine_state")

#: The state file's name after the store file's: ``purpleflea.sqlite.engine``.
SUFFIX = ".engine"
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


class EngineState:
    """The engine state file beside the SQLite store file ``store_file``."""

    def __init__(self, store_file: str | Path) -> None:
        self.store_file = Path(store_file)
        self.path = self.store_file.with_name(self.store_file.name + SUFFIX)

    @classmethod
    def beside(cls, store_file: str | Path) -> EngineState | None:
        """None for ``:memory:`` (nothing outlives the process)."""
        return None if str(store_file) == ":memory:" else cls(store_file)

    def save(self, engine: KeepsState, last_seq: int) -> None:
        """Write ``engine``'s state, taken when the store ends at ``last_seq``."""
        saved = _Saved(
            version=_VERSION,
            last_seq=last_seq,
            store=file_identity(self.store_file),
            engine=engine.export_state(),
        )
        data = msgspec.msgpack.encode(saved)
        temporary = self.path.with_name(self.path.name + ".tmp")
        with open(temporary, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)

    def load(self, engine: KeepsState, last_seq: int) -> dict[str, object] | None:
        """Continue ``engine`` from the file when it was written with the store ending at
        ``last_seq`` (the store file it was written beside); the state it continued from, or
        None when it did not. The file is removed either way: it describes this moment
        only."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        try:
            saved = msgspec.msgpack.decode(data, type=_Saved)
        except msgspec.DecodeError as exc:
            log.warning("%s: unreadable (%s): warming the cascade engine instead", self.path, exc)
            return None
        identity = file_identity(self.store_file)
        if saved.version != _VERSION or saved.last_seq != last_seq or saved.store != identity:
            log.info(
                "%s: written at seq %d, the store ends at %d (or is another file): warming "
                "the cascade engine instead",
                self.path,
                saved.last_seq,
                last_seq,
            )
            return None
        try:
            engine.restore_state(saved.engine)
        except ValueError as exc:
            log.warning("%s: %s: warming the cascade engine instead", self.path, exc)
            return None
        return saved.engine
