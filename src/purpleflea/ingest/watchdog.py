"""The silence watchdog that ends a connection's session no frame (or, where the venue asks
for it, no data) reached for too long.

One timer, not one per frame, for crash rates (bench/crash_ingest.py): an
``asyncio.timeout`` around each ``recv()`` scheduled and cancelled a timer per frame. The
connection runner (``ingest/connection.py``) uses it; it decides nothing about events.
"""

from __future__ import annotations

import asyncio
import time


class Watchdog:
    """Ends a session's receive loop (its ``asyncio.timeout`` scope) once no frame arrived for
    ``timeout`` seconds, or, with ``data_timeout``, once no frame carried an event for that
    long; the loop stamps :attr:`last_frame` (monotonic) on every frame and :attr:`last_data`
    on every frame with events, or a push of the connection's liveness channel.

    The second clock is for a venue whose keepalive is answered by a server that sends no
    data (EXCHANGES.md trap 3: Binance's decommissioned URLs and restricted regions complete
    the handshake and stay silent): its answers keep ``last_frame`` fresh, so only the data
    says the connection is useless.

    One timer per silence period, not one per frame: an ``asyncio.timeout`` around each
    ``recv`` scheduled and cancelled a timer handle per frame, about a tenth of the tracker's
    CPU at crash rates (bench/crash_ingest.py). When the timer fires it reads the last frame's
    time and either sleeps until that frame's deadline or, the deadline past, looks once more
    a loop turn later (a frame read in this turn is stamped in the next) and expires the scope.
    """

    def __init__(
        self,
        timeout: float,
        data_timeout: float | None = None,
        answer_timeout: float | None = None,
    ) -> None:
        self.timeout = timeout
        self.data_timeout = data_timeout
        #: Seconds from :meth:`start` for the venue to answer the subscribe; the loop sets
        #: :attr:`answered` when it does (None: not watched).
        self.answer_timeout = answer_timeout
        self.answered = answer_timeout is None
        self._started = time.monotonic()
        #: When the last frame arrived (``time.monotonic()``); silence is counted from it.
        self.last_frame = time.monotonic()
        #: When the last frame with events arrived (only read with ``data_timeout``).
        self.last_data = self.last_frame
        #: Why the watchdog ended the loop: "" (it did not), "frame", "data" or "answer".
        self.expired_by = ""
        self._scope: asyncio.Timeout | None = None
        self._handle: asyncio.Handle | None = None

    @property
    def expired(self) -> bool:
        """True once the watchdog ended the loop (its TimeoutError is a silent connection)."""
        return bool(self.expired_by)

    def start(self, scope: asyncio.Timeout, data_since: float | None = None) -> None:
        """Watch the loop under ``scope``; silence is counted from now, the wait for data
        from ``data_since`` (the feed's last data, monotonic) if given, else from now."""
        self._scope = scope
        self.last_frame = self._started = time.monotonic()
        self.last_data = self.last_frame if data_since is None else data_since
        self._handle = asyncio.get_running_loop().call_later(self._due_in(), self._check)

    def _due_in(self) -> float:
        """Seconds until the earlier of the two deadlines (<= 0: due)."""
        now = time.monotonic()
        due = self.timeout - (now - self.last_frame)
        if self.data_timeout is not None:
            due = min(due, self.data_timeout - (now - self.last_data))
        if not self.answered and self.answer_timeout is not None:
            due = min(due, self.answer_timeout - (now - self._started))
        return due

    def _lapsed(self, now: float) -> str:
        """Which deadline has passed at ``now``: "frame", "data", "answer" or "" (none)."""
        if now - self.last_frame >= self.timeout:
            return "frame"
        if self.data_timeout is not None and now - self.last_data >= self.data_timeout:
            return "data"
        if (
            not self.answered
            and self.answer_timeout is not None
            and now - self._started >= self.answer_timeout
        ):
            return "answer"
        return ""

    def _check(self, looked: bool = False) -> None:
        """Expire the scope if a deadline passed, judged again one loop turn later.

        A loop held past the deadline (a long synchronous step, a starved process) wakes with
        the venue's frame in the socket and this timer due in one turn: asyncio reads the
        socket first, but the receive loop it wakes runs only in the next turn, and a verdict
        given now ended, as silent, a connection whose frame had come (and lost those after
        it with the socket). The look again is queued behind that wake-up."""
        assert self._scope is not None
        loop = asyncio.get_running_loop()
        lapsed = self._lapsed(time.monotonic())
        if not lapsed:
            self._handle = loop.call_later(self._due_in(), self._check)
        elif not looked:
            self._handle = loop.call_soon(self._check, True)
        else:
            self.expired_by = lapsed
            self._scope.reschedule(loop.time())  # due now: cancels the receive loop's await

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
