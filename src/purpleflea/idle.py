"""A timeout on each wait for a stream's next message, without a timer per wait.

Used wherever a wait for a peer's message is bounded: the SDK stream's idle timeout and its
wait for the server's first frame, the server's wait for a client's subscribe message. Not
``asyncio.wait_for`` nor ``asyncio.timeout``: a message read in the turn of the event loop in
which the deadline falls due (a loop held past it: a long synchronous step, a starved
process) wakes its wait only in the next turn, and both end the wait first, as a timeout
(``wait_for`` since Python 3.12, where it is ``asyncio.timeout``; 3.11's ran the wait in a
task of its own and happened to look a turn later). This looks again a turn later.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

#: What the event loop takes for "now" when it runs a timer: a timer fires once the clock is
#: within this of its time (asyncio's own rule, ``BaseEventLoop._clock_resolution``).
_CLOCK_RESOLUTION = time.get_clock_info("monotonic").resolution


class IdleTimeout:
    """``await idle.wait(aw, timeout)``: what ``aw`` returns, or :class:`TimeoutError` once
    that wait has lasted ``timeout`` seconds; as ``async with asyncio.timeout(timeout)``
    around each wait, time between waits not counted, a cancel from elsewhere still a cancel.

    One timer serves every wait: it is armed when a wait starts and none is pending, and when
    it fires it either ends a wait that has lasted ``timeout`` or re-arms for the running
    wait's own deadline (no wait running: it lapses), looking once more a loop turn later
    before it ends a wait (a message read in this turn wakes the wait in the next). A wait
    then costs a clock read and a few attribute sets, where ``asyncio.timeout`` schedules and
    cancels a timer and runs a context manager: 6.9 us a wait on a loaded 2-core machine,
    most of what the SDK added to a bare ``recv()`` on a paced single-event frame (9.5 us,
    now 2.2; bench/results/sdk_receive.md). One wait at a time.
    """

    def __init__(self) -> None:
        self._timer: asyncio.Handle | None = None
        #: The task waiting (None between waits), the wait's deadline (loop time), and how
        #: many cancels the task had pending when it began (the ones that are not this timer's).
        self._task: asyncio.Task[object] | None = None
        self._deadline = 0.0
        self._cancelling = 0
        #: This timer cancelled the running wait.
        self._expired = False

    async def wait(self, aw: Awaitable[T], timeout: float) -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is None:  # pragma: no cover (a coroutine awaited outside a task)
            raise RuntimeError("IdleTimeout.wait must run inside a task")
        self._deadline = loop.time() + timeout
        self._task = task
        self._cancelling = task.cancelling()
        if self._timer is None:
            self._timer = loop.call_at(self._deadline, self._fire)
        try:
            result = await aw
        except asyncio.CancelledError as exc:
            if self._settle(task):
                raise TimeoutError from exc
            raise
        except BaseException:
            self._settle(task)
            raise
        self._settle(task)
        return result

    def close(self) -> None:
        """Cancel the pending timer (the stream is done with it)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self, looked: bool = False) -> None:
        """End the running wait if it has lasted the timeout, judged again one loop turn
        later: a loop held past the deadline (the consumer's synchronous work, a starved
        process) wakes with the message in the socket and this timer due in one turn, and
        asyncio reads the socket first but wakes the wait only in the next turn. Ended at
        once, a wait whose message had come was a timeout, and the stream reconnected."""
        self._timer = None
        task = self._task
        if task is None:
            return  # between waits: the next wait arms it again
        loop = task.get_loop()
        if loop.time() + _CLOCK_RESOLUTION < self._deadline:
            self._timer = loop.call_at(self._deadline, self._fire)
            return
        if not looked:
            self._timer = loop.call_soon(self._fire, True)  # behind the wait's wake-up
            return
        self._expired = True
        task.cancel()

    def _settle(self, task: asyncio.Task[object]) -> bool:
        """End the wait; True when this timer cancelled it and nothing else did."""
        self._task = None
        if not self._expired:
            return False
        self._expired = False
        return task.uncancel() <= self._cancelling
