"""The CPU meter that REST requests are charged by (purpleflea.cputime)."""

from __future__ import annotations

import asyncio
import gc
import threading
import time

import pytest

from purpleflea import cputime


def test_threads_counting_to_one_meter_at_once_lose_none_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request's reads run side by side (``asyncio.gather`` of reads, each on a reader
    thread), so their threads add to its meter at once: each one's CPU must count."""
    local = threading.local()

    def clock() -> float:
        # Each thread's clock reads 0, then 1: one second per block. Reading it lets the
        # other threads run, as the interpreter may switch threads at any call.
        calls = getattr(local, "calls", 0)
        local.calls = calls + 1
        time.sleep(0.002)
        return float(calls % 2)

    monkeypatch.setattr(cputime.time, "thread_time", clock)
    meter = cputime.CpuMeter()
    threads_n = 8
    start = threading.Barrier(threads_n)

    def read() -> None:
        start.wait()
        with cputime.counting(meter):
            pass

    threads = [threading.Thread(target=read) for _ in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert meter.seconds == threads_n


def _collection_cpu_s() -> float:
    started = time.thread_time()
    gc.collect()
    return time.thread_time() - started


def test_a_garbage_collection_is_not_counted_to_the_work_it_lands_in() -> None:
    """A pass of the cyclic collector walks the whole process's heap; it runs in whichever
    step or read crossed its threshold, so the request that happens to be running is not
    charged for it (here ``gc.collect`` stands in for a pass the interpreter starts)."""
    heap = [[n] for n in range(1_000_000)]  # alive: a full pass walks each of them
    assert _collection_cpu_s() > 0.01  # what the meter would wrongly count
    meter = cputime.CpuMeter()

    async def step_then_read() -> None:
        gc.collect()
        await asyncio.sleep(0)
        with cputime.counting(cputime.current()):  # as a store read on a reader thread
            gc.collect()

    asyncio.run(cputime.metered(step_then_read(), meter))
    assert meter.seconds < 0.005, meter.seconds
    del heap


def test_the_work_itself_still_counts_beside_a_collection() -> None:
    meter = cputime.CpuMeter()

    async def busy() -> None:
        started = time.thread_time()
        while time.thread_time() - started < 0.03:
            pass
        gc.collect()

    asyncio.run(cputime.metered(busy(), meter))
    assert 0.03 <= meter.seconds < 0.035 + 0.005, meter.seconds


def test_the_collector_s_pauses_are_kept_for_the_wall_clock_charge() -> None:
    """A request's wall time is charged past a second (``server/auth.py``); a pass of the
    collector stops every request at once for its length, so it is kept apart to subtract."""
    heap = [[n] for n in range(1_000_000)]
    before = cputime.collector_pauses()
    spent = _collection_cpu_s()
    assert cputime.collector_pauses() - before >= spent - 0.001 > 0.01
    del heap
