"""The shared simulator recordings, made side by side in worker processes.

pytest runs the tests in one process, on one core of this machine's two; the recordings the
simulator tests share (``tests/sim/conftest.py``) take two minutes of a core between them, and
each is independent of the others. After collection, :meth:`Background.want` notes the ones the
session's tests read; the first fixture that asks for one starts them all in two worker
processes, so the rest are being made while the tests read the first. The simulator is
deterministic (same config -> same bytes): a worker's recording is the one the test would have
made itself.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult, Pool
from typing import Any, Generic, TypeVar, cast

from purpleflea.sim import SimConfig
from purpleflea.sim.history import history_config
from tests.sim.recorded import BlockRecording, Recording, record, record_blocks

T = TypeVar("T")

#: The crash episode runs 45 minutes; its test reads the 5 after it too.
CRASH_MINUTES = 50
#: test_basis reads the calm served market's first ten minutes.
CALM_MINUTES = 10


def served_crash_run(seed: int) -> Recording:
    """The served market of ``seed`` (its crash episode starts at once): its first
    :data:`CRASH_MINUTES`."""
    return record(SimConfig.served(seed=seed), CRASH_MINUTES)


def served_calm_run(seed: int) -> Recording:
    """The served market of ``seed`` without its crash episode: its first :data:`CALM_MINUTES`."""
    return record(SimConfig.served(seed=seed, crash_start_ms=None), CALM_MINUTES)


def history_month_run(seed: int) -> BlockRecording:
    """A month (30 days) of ``history_config(seed=seed, n_markets=5)`` in its 5-minute blocks."""
    return record_blocks(history_config(seed=seed, n_markets=5), 30)


@dataclass(frozen=True)
class Kind(Generic[T]):
    """One kind of recording: the session fixture that serves it, how a seed's is made (a
    module-level function, so a worker process can import it), and the seeds the suite's
    tests read (a seed not listed is still made, when first asked for)."""

    fixture: str
    make: Callable[[int], T]
    seeds: tuple[int, ...]


SERVED_CRASH = Kind("served_crash", served_crash_run, seeds=(0, 1))
SERVED_CALM = Kind("served_calm", served_calm_run, seeds=(0, 1, 2))
HISTORY_MONTH = Kind("history_month", history_month_run, seeds=(0, 1))
KINDS: tuple[Kind[Recording] | Kind[BlockRecording], ...] = (
    SERVED_CRASH,
    SERVED_CALM,
    HISTORY_MONTH,
)


class Background:
    """Recordings by (kind, seed), each made once a session in a worker process."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"background workers must be >= 1, got {workers}")
        self._workers = workers
        self._pool: Pool | None = None
        self._wanted: list[tuple[Kind[Any], int]] = []
        self._started: dict[tuple[str, int], AsyncResult[object]] = {}

    def want(self, fixtures: Iterable[str]) -> None:
        """Note every seed of each kind the named fixtures serve (other names are ignored), in
        the order named (the order the tests will ask for them), to start with the first."""
        for name in dict.fromkeys(fixtures):
            self._wanted += [(k, seed) for k in KINDS if k.fixture == name for seed in k.seeds]

    def _start(self, kind: Kind[Any], seed: int) -> AsyncResult[object]:
        key = (kind.fixture, seed)
        if key not in self._started:
            if self._pool is None:
                # Not at collection: the workers would take a core from the tests before these.
                # spawn: a fork would copy pytest's threads and event loops half-way.
                self._pool = multiprocessing.get_context("spawn").Pool(self._workers)
            self._started[key] = self._pool.apply_async(kind.make, (seed,))
        return self._started[key]

    def get(self, kind: Kind[T], seed: int) -> T:
        """``kind``'s recording of ``seed``: waits for it, having started it and every wanted
        one (in order) if nothing had."""
        found = self._start(kind, seed)
        for wanted, other in self._wanted:
            self._start(wanted, other)
        return cast(T, found.get())

    def close(self) -> None:
        """Stop the workers, also one still making a recording no test reads any more."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
        self._started.clear()


#: The session's recordings (tests/conftest.py notes the wanted ones after collection).
BACKGROUND = Background(workers=max(1, min(2, os.cpu_count() or 1)))
