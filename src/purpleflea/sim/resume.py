"""A simulation's state between blocks, so a restarted live feed continues the same market.

:func:`capture` takes everything that carries the market forward (every market's price, its
volatility and impact state, the open positions, the flows, the random generator) at a block
boundary; :meth:`purpleflea.sim.Simulator.from_state` builds a simulator that continues it
at a new start time, as if the market had paused while the server was down. :func:`save` and
:func:`load` keep it in one ``.npz`` file (written atomically) beside the store.

What does not carry over: the truth of cascades in progress (runs restart empty) and the
trailing events of positions liquidated just before the capture (their engine's last orders),
exactly as after the warm-up of a fresh simulator.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

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


def save(path: Path, state: SimState) -> None:
    """Write ``state`` to ``path`` atomically (a reader sees the old file or the new one)."""
    header = {
        "version": _VERSION,
        "seed": state.seed,
        "epoch": state.epoch,
        "n_markets": state.n_markets,
        "now_ms": state.now_ms,
        "h_common": state.h_common,
        "next_cohort": state.next_cohort,
        "rng": state.rng,
        "crash_start_ms": state.crash_start_ms,
    }
    arrays: dict[str, npt.NDArray[Any]] = {"marks": state.marks}
    arrays.update({f"m_{k}": v for k, v in state.markets.items()})
    arrays.update({f"b_{k}": v for k, v in state.book.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("wb") as handle:
            np.savez(handle, header=np.array(json.dumps(header)), **arrays)  # type: ignore[arg-type]
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)  # a half-written file would hold the space it took
        raise


def load(path: Path) -> SimState | None:
    """The state saved at ``path``; None when there is no such file.

    Raises ValueError naming the file when it exists but is not a saved simulator state.
    """
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            if header.get("version") != _VERSION:
                raise ValueError(f"version {header.get('version')!r}, expected {_VERSION}")
            return SimState(
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
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a saved simulator state ({exc})") from exc
