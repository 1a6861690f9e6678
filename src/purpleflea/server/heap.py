"""The cyclic garbage collector in a long-running server: fewer and shorter pauses, and what
they cost in ``/v1/metrics``.

Python's collector stops the event loop while it runs. With its default thresholds the tracker
under bench/e2e.py's load (2,000 events/s to 50 clients, bursts, 1,000 clients) ran a full
collection every 8-9 s, each 69-83 ms (a ``gc`` callback in the tracker, 2026-12-06: 10-11 per
90 s run), because everything the server built at startup (catalogs, the cascade engine warmed
from the store, the heatmap, caches) is walked again each time although it lives as long as
the process. Every liquidation waiting in such a pause is late by it.

:func:`settle_startup_heap`, called once the server has started, moves everything alive then
into the permanent generation (``gc.freeze``) and collects young objects after 50,000 net
allocations instead of 700: most of what the server allocates per event is freed by reference
counting at once, and cycles are still collected, in larger and rarer batches. On the same
runs: no full collection after startup, young ones 1,366-1,543 -> 18 per run, the collector's
total time 1.1-1.3 s -> 0.1 s, peak memory alike (164-165 vs 158-174 MB). End-to-end
percentiles did not move beyond this 2-core machine's noise (bench/e2e.py --pin, two
alternating pairs: (a) p99 26.5-27.1 ms settled vs 24.2-29.5 ms with the defaults): the pauses
were rare enough to sit above p99, in the maximum (crash ingest at 20,000/s, one run each:
max lag 43 vs 58 ms). The cost: the served simulator with 100 clients (bench/memory.py)
holds 237 MB after 3 minutes instead of 217.

Only ``purpleflea serve`` and the stream workers call it: a process that starts many servers
(the test suite) would pin every one of them in memory.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

#: Net allocations between young collections (Python's default is 700). Against 10,000 on the
#: same load (bench/e2e.py --pin, two runs each): young pauses median 3.2-3.4 ms and at most
#: 8.7 ms, against 0.6 ms and 7.7 ms but three middle collections of up to 21 ms a run.
YOUNG_THRESHOLD = 50_000
#: Young collections per middle one, middle per full (defaults 10 and 10).
MIDDLE_THRESHOLD = 20
OLD_THRESHOLD = 100

_GENERATIONS = (0, 1, 2)
#: Seconds ``gc_frozen_objects`` reuses its count. Counting walks every frozen object: 9-10 ms
#: for a served heap (``purpleflea serve --source none``), which was most of a ``/v1/metrics``
#: answer's cost (6.65 ms of server CPU each against 0.49 ms for ``/v1/health``,
#: bench/metrics_flood.py). The count only falls, as frozen objects are freed; a minute old is
#: fresh enough for a gauge scraped every 15 s.
FROZEN_COUNT_TTL_S = 60.0


class CollectorStats:
    """Collections and the time the loop stood still in them, per generation (a ``gc``
    callback: once per collection, a clock read and two additions)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.collections = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = [0.0, 0.0, 0.0]
        self._started = 0.0
        self._clock = clock
        self._frozen: tuple[float, int] | None = None  # (counted at, count)

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = int(info["generation"])
        took = time.perf_counter() - self._started
        self.collections[generation] += 1
        self.seconds[generation] += took
        self.longest[generation] = max(self.longest[generation], took)

    def metrics(self) -> list[tuple[str, str, str, list[tuple[str, float]]]]:
        """``/v1/metrics`` families (see :data:`purpleflea.server.api.MetricSource`)."""

        def per_generation(values: list[float]) -> list[tuple[str, float]]:
            return [(f'{{generation="{g}"}}', float(values[g])) for g in _GENERATIONS]

        return [
            (
                "gc_collections_total",
                "counter",
                "Cyclic garbage collections by generation (2 is a full collection).",
                per_generation([float(n) for n in self.collections]),
            ),
            (
                "gc_pause_seconds_total",
                "counter",
                "Time the process stood still collecting garbage, by generation.",
                per_generation(self.seconds),
            ),
            (
                "gc_pause_seconds_max",
                "gauge",
                "The longest single collection so far, by generation.",
                per_generation(self.longest),
            ),
            (
                "gc_frozen_objects",
                "gauge",
                "Objects alive at startup and moved out of the collector's sight "
                "(0: the process did not settle its heap; counted at most once a minute).",
                [("", float(self.frozen_objects()))],
            ),
        ]

    def frozen_objects(self) -> int:
        """``gc.get_freeze_count()``, counted again once :data:`FROZEN_COUNT_TTL_S` old."""
        now = self._clock()
        if self._frozen is None or now - self._frozen[0] >= FROZEN_COUNT_TTL_S:
            self._frozen = (now, gc.get_freeze_count())
        return self._frozen[1]


_stats: CollectorStats | None = None


def collector_stats() -> CollectorStats:
    """This process's one :class:`CollectorStats`, installed on first use (servers built
    again and again in one process share it instead of stacking callbacks)."""
    global _stats  # noqa: PLW0603 (one per process, like the collector itself)
    if _stats is None:
        _stats = CollectorStats()
        gc.callbacks.append(_stats)
    return _stats


def settle_startup_heap() -> None:
    """Once startup is done: collect, freeze what is alive, raise the thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)


def leave_heap_to_exit() -> None:
    """The process is ending (``purpleflea serve`` stopped): everything alive out of the
    collector's sight, so that the interpreter's teardown, whose collections walked it again
    (73,000 objects of a server stopped in its startup), only frees it. Measured on a stop
    during the startup: 0.22-0.27 s of CPU from the last line of Python to the exit, 3.6-5.7 s
    of the stop at load 15-16; frozen, 0.01-0.03 s."""
    gc.freeze()
