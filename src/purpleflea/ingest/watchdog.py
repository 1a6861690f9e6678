"""The silence watchdog that ends a connection's session no frame reached for too long.

It exists for crash rates (bench/crash_ingest.py): an ``asyncio.timeout`` around each
``recv()`` scheduled and cancelled a timer per frame. The connection runner
(``ingest/connection.py``) uses it; it decides nothing about events.
"""

from __future__ import annotations

import asyncio
import time


class Watchdog:
    """Ends a session's receive loop (its ``asyncio.timeout`` scope) once no frame arrived for
    ``timeout`` seconds; the loop stamps :attr:`last_frame` (monotonic) on every frame.

    One timer per silence period, not one per frame: an ``asyncio.timeout`` around each
    ``recv`` scheduled and cancelled a timer handle per frame, about a tenth of the tracker's
    CPU at crash rates (bench/crash_ingest.py). When the timer fires it reads the last frame's
    time and either expires the scope or sleeps until that frame's deadline.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        #: When the last frame arrived (``time.monotonic()``); silence is counted from it.
        self.last_frame = time.monotonic()
        #: True once the watchdog ended the loop (its TimeoutError is a silent connection).
        self.expired = False
        self._scope: asyncio.Timeout | None = None
        self._handle: asyncio.TimerHandle | None = None

    def start(self, scope: asyncio.Timeout) -> None:
        """Watch the loop under ``scope``; silence is counted from now."""
        self._scope = scope
        self.last_frame = time.monotonic()
        self._handle = asyncio.get_running_loop().call_later(self.timeout, self._check)

    def _check(self) -> None:
        assert self._scope is not None
        loop = asyncio.get_running_loop()
        silent_for = time.monotonic() - self.last_frame
        if silent_for >= self.timeout:
            self.expired = True
            self._scope.reschedule(loop.time())  # due now: cancels the receive loop's await
        else:
            self._handle = loop.call_later(self.timeout - silent_for, self._check)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
