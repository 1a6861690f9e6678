"""A simulation's state between blocks, so a restarted live feed continues the same market.

:func:`capture` takes everything that carries the market forward (every market's price, its
volatility and impact state, the open positions, the flows, the random generator) at a block
boundary; :meth:`purpleflea.sim.Simulator.from_state` builds a simulator that continues it
at a new start time, as if the market had paused while the server was down. :func:`save`
writes it in full to one ``.npz`` file (atomically) beside the store; :class:`StateSaver`
then appends only what changed to a log beside that file (:mod:`purpleflea.sim.statelog`),
and :func:`load` reads the two back.

What does not carry over: the truth of cascades in progress (runs restart empty) and the
trailing events of positions liquidated just before the capture (their engine's last orders),
exactly as after the warm-up of a fresh simulator.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import numpy.typing as npt

from purpleflea.sim import statelog

if TYPE_CHECKING:
    from purpleflea.sim.process import Simulator

#: Book columns holding absolute times (ms); shifted on resume, NEVER stays NEVER.
BOOK_TIMES = ("opened_ms", "close_ms", "reopen_ms", "gone_ms")
BOOK_VALUES = ("qty", "side", "entry", "lev", "mmr", "liq", "cohort_id")
#: Per-market state arrays of the simulator (attribute names without the underscore).
MARKET_ARRAYS = (
    "x",
    "x_trend",
    "perm",
    "trans",
    "pend",
    "h",
    "opened",
    "closed",
    "liquidated",
    "basis",
    "quoted_basis",
    "share_noise",
    "oi_level",
    "jump_pending",
)
# 2: the open-interest level; 3: 5x the slots (an older file starts a fresh market)
_VERSION = 3


@dataclass(frozen=True, slots=True)
class SimState:
    """A simulator's state at the block boundary ``now_ms`` (see the module docstring)."""

    seed: int
    epoch: int
    n_markets: int
    now_ms: int
    h_common: float
    next_cohort: int
    marks: npt.NDArray[np.float64]  # every market's mark at now_ms
    markets: dict[str, npt.NDArray[Any]]  # MARKET_ARRAYS
    book: dict[str, npt.NDArray[Any]]  # BOOK_TIMES + BOOK_VALUES
    rng: str  # the bit generator's state, JSON
    crash_start_ms: int | None  # the scheduled crash episode (sim time), if any

    def crash_after_pause(self, start_ms: int) -> int | None:
        """The crash episode's start for a market continued at ``start_ms`` (it moves with the
        pause, so an episode in progress goes on where it was)."""
        if self.crash_start_ms is None:
            return None
        return self.crash_start_ms + start_ms - self.now_ms


def capture(sim: Simulator, into: SimState | None = None) -> SimState:
    """A copy of ``sim``'s state; ``sim`` must be at a block boundary (between blocks).
    ``into``: an earlier capture nothing reads any more, whose arrays are reused
    (:meth:`~purpleflea.sim.Simulator.capture_state`)."""
    return sim.capture_state(into)


def log_path(path: Path) -> Path:
    """The change log kept beside the full state saved at ``path`` (:class:`StateSaver`)."""
    return path.with_suffix(".log")


def save(path: Path, state: SimState) -> int:
    """Write ``state`` to ``path`` in full, atomically (a reader sees the old file or the new
    one), and start its change log afresh; the bytes written.

    The full state names a new ``token`` that its log repeats: a process stopped between the
    two writes leaves the older log, which names another token and is not applied.
    """
    token = secrets.token_hex(8)
    header = {**_scalars(state), "version": _VERSION, "log": token}
    arrays: dict[str, npt.NDArray[Any]] = {"marks": state.marks}
    arrays.update({f"m_{k}": v for k, v in state.markets.items()})
    arrays.update({f"b_{k}": v for k, v in state.book.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    with _replacing(path) as handle:
        np.savez(handle, header=np.array(json.dumps(header)), **arrays)  # type: ignore[arg-type]
        handle.flush()
        written = handle.tell()
    head = statelog.start(token)
    with _replacing(log_path(path)) as handle:
        handle.write(head)
    return written + len(head)


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[BinaryIO]:
    """A file written beside ``path`` that replaces it when the block ends without error."""
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("wb") as handle:
            yield handle
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)  # a half-written file would hold the space it took
        raise


def load(path: Path) -> SimState | None:
    """The state saved at ``path`` (with the changes its log holds); None when there is no
    such file.

    Raises ValueError naming the file when it exists but is not a saved simulator state.
    """
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            if header.get("version") != _VERSION:
                raise ValueError(f"version {header.get('version')!r}, expected {_VERSION}")
            state = SimState(
                seed=int(header["seed"]),
                epoch=int(header["epoch"]),
                n_markets=int(header["n_markets"]),
                now_ms=int(header["now_ms"]),
                h_common=float(header["h_common"]),
                next_cohort=int(header["next_cohort"]),
                marks=data["marks"],
                markets={k: data[f"m_{k}"] for k in MARKET_ARRAYS},
                book={k: data[f"b_{k}"] for k in BOOK_TIMES + BOOK_VALUES},
                rng=str(header["rng"]),
                crash_start_ms=header["crash_start_ms"],
            )
        token = header.get("log")  # a file saved before the log was kept has none
        changes = log_path(path)
        if token is not None and changes.exists():
            for record in statelog.records(changes.read_bytes(), str(token)):
                state = apply(state, record)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a saved simulator state ({exc})") from exc
    return state


def changes(before: SimState, after: SimState) -> bytes:
    """A log record taking ``before`` to ``after`` (two states of one market): every scalar,
    the marks and the per-market arrays (each block moves nearly all of them: 31 kB for 275
    markets), and the book's rows that differ (a few hundred of its 180,685 between saves)."""
    differ = np.zeros(len(after.book["qty"]), dtype=np.bool_)
    for k, column in after.book.items():
        old = before.book[k]
        if old.shape != column.shape or old.dtype != column.dtype:
            raise ValueError(f"book column {k}: {old.dtype}{old.shape} then {column.dtype}")
        # Bit patterns, not values: NaN equals itself here, and any change is one.
        differ |= _bits(column) != _bits(old)
    rows = np.flatnonzero(differ).astype(np.int32)
    arrays: dict[str, npt.NDArray[Any]] = {"marks": after.marks, "rows": rows}
    arrays.update({f"m_{k}": v for k, v in after.markets.items()})
    arrays.update({f"b_{k}": v[rows] for k, v in after.book.items()})
    return statelog.encode(_scalars(after), arrays)


def apply(state: SimState, record: bytes) -> SimState:
    """``state`` with a :func:`changes` record applied (its book arrays changed in place).

    Raises ValueError when the record does not fit ``state``."""
    scalars, arrays = statelog.decode(record)
    try:
        rows = arrays["rows"]
        if rows.size and (rows.min() < 0 or rows.max() >= len(state.book["qty"])):
            raise ValueError("a row beyond the book")
        for k, column in state.book.items():
            column[rows] = arrays[f"b_{k}"]
        markets = {k: arrays[f"m_{k}"] for k in MARKET_ARRAYS}
        for k, values in markets.items():
            if values.shape != state.markets[k].shape:
                raise ValueError(f"market array {k}: shape {values.shape}")
        return SimState(
            seed=int(scalars["seed"]),
            epoch=int(scalars["epoch"]),
            n_markets=int(scalars["n_markets"]),
            now_ms=int(scalars["now_ms"]),
            h_common=float(scalars["h_common"]),
            next_cohort=int(scalars["next_cohort"]),
            marks=arrays["marks"],
            markets=markets,
            book=state.book,
            rng=str(scalars["rng"]),
            crash_start_ms=scalars["crash_start_ms"],
        )
    except KeyError as exc:
        raise ValueError(f"a state record lacks {exc}") from exc


class StateSaver:
    """Keeps a running simulator's state at ``path``, writing only what changed.

    The first save writes the full state (:func:`save`, 16 MB for 275 markets); each later
    one appends to the log beside it (:func:`log_path`) the record of what changed since the
    save before (:func:`changes`: about 0.1 MB), until the log would outgrow the full state:
    then the full state is written again and the log starts over. :func:`load` reads the full
    state and applies the log's whole records, so a process killed at any moment leaves the
    state of its last completed save, as one file written in full each time did.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._written: SimState | None = None  # what a load would return now (our copy)
        self._full_bytes = 0
        self._log_bytes = 0

    def save(self, state: SimState) -> int:
        """Keep ``state`` (it may change after this returns); the bytes written. An error
        (OSError) leaves the last state saved for a load, and the next save writes in full."""
        try:
            if self._written is None:
                return self._save_full(state)
            record = statelog.frame(changes(self._written, state))
            if self._log_bytes + len(record) > self._full_bytes:
                return self._save_full(state)
            with log_path(self.path).open("ab") as handle:
                handle.write(record)
            self._written = apply(self._written, record[_FRAME_HEAD:])
            self._log_bytes += len(record)
            return len(record)
        except BaseException:
            self._written = None  # a torn record ends the log: the next save starts a new one
            raise

    def _save_full(self, state: SimState) -> int:
        written = save(self.path, state)
        self._written = _copied(state)
        self._full_bytes, self._log_bytes = written, 0
        return written


#: The bytes before a framed record's payload (its length and CRC).
_FRAME_HEAD = len(statelog.frame(b""))


def _copied(state: SimState) -> SimState:
    return dataclasses.replace(
        state,
        marks=state.marks.copy(),
        markets={k: v.copy() for k, v in state.markets.items()},
        book={k: v.copy() for k, v in state.book.items()},
    )


def _bits(column: npt.NDArray[Any]) -> npt.NDArray[Any]:
    return column.view(np.int64) if column.dtype == np.float64 else column


def _scalars(state: SimState) -> dict[str, Any]:
    return {
        "seed": state.seed,
        "epoch": state.epoch,
        "n_markets": state.n_markets,
        "now_ms": state.now_ms,
        "h_common": state.h_common,
        "next_cohort": state.next_cohort,
        "rng": state.rng,
        "crash_start_ms": state.crash_start_ms,
    }
