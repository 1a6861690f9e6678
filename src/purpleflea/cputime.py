"""The CPU one piece of async work used: its steps on the event loop and its calls on threads.

A REST request runs partly on the event loop (parsing, decoding rows, encoding the answer),
interleaved with every other request and stream, and partly on the store's reader threads.
Wall time counts the waits behind others; the process's CPU counts everyone's. Each part is
measured on its own thread's CPU clock (``time.thread_time``) instead:

- :func:`metered` runs a coroutine one step at a time, adding what each step took on the
  loop's thread (the time between steps, when other tasks run, is not counted);
- :func:`counting` wraps a call made on another thread for the coroutine (a store read), the
  meter taken from the coroutine's context (:func:`current`) before the call leaves it.

Tasks the coroutine starts on their own (``asyncio.gather`` of coroutines) inherit the meter
for their threaded calls; their own steps on the loop are not counted.

Time in the cyclic garbage collector is not counted either. A collection runs inside whichever
step or read crossed its threshold and walks the whole process's heap, so it is nobody's own
work: a full pass over 2.5 million objects took 0.10-0.20 s of CPU here, and a REST request it
landed in was charged 2-6 requests extra for it (``server/auth.py``: 25 ms a request past 50 ms).
Nor are its pauses on the wall clock (:func:`collector_pauses`), which the wall-time charge
leaves out: under load such a pass stretched a request past its free second.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")


class CpuMeter:
    """Seconds of CPU counted so far."""

    __slots__ = ("_lock", "seconds")

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        """Count ``seconds`` more. Threads add at once (reads side by side on the store's
        reader threads, beside the loop's steps): a bare ``+=`` let a thread switch between
        its read and its write of the total lose another thread's whole share."""
        with self._lock:
            self.seconds += seconds


class _Collector(threading.local):
    """Per thread: the CPU it spent in the cyclic garbage collector while metering, and how
    many metered blocks it is in now (passes outside them are not timed: two clock reads are
    ~3 us, against a young pass's few tens)."""

    spent = 0.0
    started = 0.0
    metering = 0


_collector = _Collector()


class _Pauses:
    """The process's wall-clock time in the garbage collector (every thread waits for it)."""

    seconds = 0.0
    started = 0.0


def _on_collection(phase: str, info: dict[str, Any]) -> None:
    # A pass runs start to stop on one thread, holding the GIL: its own clock times it, and
    # no other pass runs meanwhile.
    if phase == "start":
        _Pauses.started = time.perf_counter()
    else:
        _Pauses.seconds += time.perf_counter() - _Pauses.started
    state = _collector
    if not state.metering:
        return
    if phase == "start":
        state.started = time.thread_time()
    else:
        state.spent += time.thread_time() - state.started


def collector_pauses() -> float:
    """Seconds of wall clock this process has spent in the garbage collector so far: what a
    request's wall time should not be charged for, as its CPU is not (the loop stands still
    for every request at once while a pass runs)."""
    return _Pauses.seconds


gc.callbacks.append(_on_collection)  # once: a module is imported once per process


@contextlib.contextmanager
def _own_time(meter: CpuMeter) -> Iterator[None]:
    """Add the CPU this thread spends in the block to ``meter``, less its garbage collection."""
    state = _collector
    state.metering += 1
    started = time.thread_time() - state.spent
    try:
        yield
    finally:
        meter.add(time.thread_time() - state.spent - started)
        state.metering -= 1


_meter: ContextVar[CpuMeter | None] = ContextVar("purpleflea_cpu_meter", default=None)


def current() -> CpuMeter | None:
    """The meter of the work running in this context, if it is metered."""
    return _meter.get()


@contextlib.contextmanager
def counting(meter: CpuMeter | None) -> Iterator[None]:
    """Add the CPU this thread spends in the block to ``meter`` (None: nothing), its time in
    the garbage collector left out."""
    if meter is None:
        yield
        return
    with _own_time(meter):
        yield


def on_thread(function: Callable[..., T], *args: Any) -> Callable[[], T]:
    """``function(*args)`` as a call for another thread, counted to the caller's meter."""
    meter = current()

    def run() -> T:
        with counting(meter):
            return function(*args)

    return run


class _Metered:
    """An awaitable driving ``work`` step by step, each step timed on this thread's clock."""

    __slots__ = ("_meter", "_work")

    def __init__(self, work: Awaitable[Any], meter: CpuMeter) -> None:
        self._work = work
        self._meter = meter

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, meter, state = self._work.__await__(), self._meter, _collector
        token = _meter.set(meter)
        try:
            sent: Any = None
            thrown: BaseException | None = None
            while True:
                # As _own_time, written out: it runs for every step of every request.
                state.metering += 1
                started = time.thread_time() - state.spent
                try:
                    waiting = coro.send(sent) if thrown is None else coro.throw(thrown)
                except StopIteration as done:
                    return done.value
                finally:
                    meter.add(time.thread_time() - state.spent - started)
                    state.metering -= 1
                sent, thrown = None, None
                try:
                    sent = yield waiting
                except GeneratorExit:
                    coro.close()
                    raise
                except BaseException as exc:  # cancellation included: passed to the coroutine
                    thrown = exc
        finally:
            _meter.reset(token)


async def metered(work: Awaitable[T], meter: CpuMeter) -> T:
    """Await ``work``, adding the CPU it uses (loop steps and :func:`counting` calls) to
    ``meter``."""
    result: T = await _Metered(work, meter)
    return result
