"""One thing that fails for a while and then works again: the record of its outage.

A store away or a full disk fails every retry, thousands a minute, and a NATS server away fails
every reconnect. Whoever retries logs one line when its outage starts and one when it ends,
never one per failure, and names the outage meanwhile (``/v1/health``, ``/v1/ready``). This
record is what those lines and answers are made from. It decides, and only decides: is this
failure the first of an outage, did this success end one (after how long, how many failures);
the caller says it in its own words. No I/O: the clock is given.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec


class Outage(msgspec.Struct, frozen=True, kw_only=True):
    """An outage as of one moment: how long it had lasted (s), how many failures it counted
    (the one that started it included), and the last one's error (:func:`describe`)."""

    seconds: float
    failures: int
    last_error: str


class OutageRecord:
    """The outage of one thing, if it is failing; :meth:`failed` and :meth:`recovered` report
    each outcome of its tries.

    Guarantees: a run of failures starts one outage (only its first :meth:`failed` answers
    True); the first success after it ends it (only that :meth:`recovered` answers the
    outage); the next failure starts a new one, counted from 1 and timed from then.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        #: Seconds, monotonic (the durations are all this record reports).
        self.clock = clock
        self._since: float | None = None
        self._failures = 0
        self._last_error = ""

    @property
    def failing(self) -> bool:
        return self._since is not None

    def failed(self, error: str) -> bool:
        """Count a failure (``error``: what it said); True if it starts an outage (say so)."""
        self._failures += 1
        self._last_error = error
        if self._since is not None:
            return False
        self._since = self.clock()
        return True

    def recovered(self) -> Outage | None:
        """A success: the outage it ended (say so), or None if nothing was failing."""
        ended = self.outage()
        self._since, self._failures, self._last_error = None, 0, ""
        return ended

    def outage(self) -> Outage | None:
        """The outage going on, as of now (for health), or None."""
        if self._since is None:
            return None
        return Outage(
            seconds=self.clock() - self._since,
            failures=self._failures,
            last_error=self._last_error,
        )


def describe(exc: BaseException) -> str:
    """An error as one line: its type and message (``OperationalError: database or disk is
    full``), never a traceback."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
