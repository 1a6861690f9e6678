"""The CPU meter that REST requests are charged by (purpleflea.cputime)."""

from __future__ import annotations

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
