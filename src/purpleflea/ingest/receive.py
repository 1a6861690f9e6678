"""How a connection's session receives: every whole message websockets already holds, taken at
once per wakeup, and the silence watchdog that ends a session no frame reached for too long.

Both exist for crash rates (bench/crash_ingest.py): one ``recv()`` per message is a chain of
three coroutines even when the message is already there, and an ``asyncio.timeout`` around each
``recv()`` scheduled and cancelled a timer per frame. The connection runner
(``ingest/connection.py``) uses them; they decide nothing about events.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from websockets.asyncio.client import ClientConnection
from websockets.frames import Opcode


def take_ready(ws: ClientConnection) -> list[str | bytes]:
    """The whole messages ``ws`` has already received, in order, taken without waiting: what
    successive ``recv()`` calls would return before they had to wait, minus their coroutines.

    Reads the buffer of websockets' asyncio connection (``recv_messages``, its ``Assembler``);
    takes only unfragmented text and binary messages and leaves anything else (a fragment, text
    that is not UTF-8) at the head of the buffer, for ``recv()`` to handle as it does. Returns
    ``[]`` when that buffer is not laid out as expected (another websockets version), so the
    caller simply goes on with ``recv()``.
    """
    assembler = getattr(ws, "recv_messages", None)
    queue = getattr(getattr(assembler, "frames", None), "queue", None)
    resume = getattr(assembler, "maybe_resume", None)
    if not isinstance(queue, deque) or not callable(resume):
        return []
    if getattr(assembler, "get_in_progress", True):
        return []
    taken: list[str | bytes] = []
    while queue:
        frame = queue[0]
        if not getattr(frame, "fin", False):
            break
        opcode = getattr(frame, "opcode", None)
        if opcode is Opcode.TEXT:
            try:
                taken.append(frame.data.decode())
            except UnicodeDecodeError:
                break  # recv() fails the connection with the right close code
        elif opcode is Opcode.BINARY:
            taken.append(bytes(frame.data))
        else:
            break
        queue.popleft()
    if taken:
        resume()  # reading below the low-water mark resumes the socket
    return taken


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
