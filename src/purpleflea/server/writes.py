"""Whether the store takes writes: the one owner of that fact, and of its log lines.

Every writer of the server (the tracker's events and alerts, the open interest recorder)
reports each write's outcome here. A full disk fails thousands of writes a minute; this logs
one line when a writer starts failing and one when it recovers, never one per write, and
health and readiness read :attr:`WriteHealth.failing` from it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import msgspec

from purpleflea.outage import describe

log = logging.getLogger("purpleflea.store")


class Failure(msgspec.Struct, kw_only=True):
    """One writer's outage: since when (monotonic s), how many writes failed, the last error."""

    since: float
    errors: int
    last_error: str


class WriteHealth:
    """The failing writers of one store, keyed by what they write (``events``, ...)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.failures: dict[str, Failure] = {}

    @property
    def failing(self) -> bool:
        return bool(self.failures)

    def failed(self, writer: str, exc: BaseException, *, holding: str = "") -> None:
        """A write of ``writer`` failed; logs only if it was not failing already.

        ``holding`` says what waits for the store meanwhile (named in the log line).
        """
        error = describe(exc)
        failure = self.failures.get(writer)
        if failure is not None:
            failure.errors += 1
            failure.last_error = error
            return
        self.failures[writer] = Failure(since=self.clock(), errors=1, last_error=error)
        log.error(
            "store: %s writes failing: %s%s (retrying with backoff; the next line says when "
            "it recovers)",
            writer,
            error,
            f"; {holding}" if holding else "",
        )

    def succeeded(self, writer: str, *, summary: str = "") -> None:
        """``writer`` is writing again (logs only if it was failing)."""
        failure = self.failures.pop(writer, None)
        if failure is None:
            return
        log.warning(
            "store: %s writes recovered after %.1f s and %d failed attempts%s",
            writer,
            self.clock() - failure.since,
            failure.errors,
            f"; {summary}" if summary else "",
        )

    def reasons(self) -> list[str]:
        """One line per failing writer, for health."""
        now = self.clock()
        return [
            f"store: {writer} writes failing for {now - f.since:.0f} s ({f.errors} attempts): "
            f"{f.last_error}"
            for writer, f in sorted(self.failures.items())
        ]

    def snapshot(self) -> dict[str, object]:
        now = self.clock()
        return {
            "writable": not self.failures,
            "failing": {
                writer: {
                    "for_s": round(now - f.since, 1),
                    "attempts": f.errors,
                    "last_error": f.last_error,
                }
                for writer, f in sorted(self.failures.items())
            },
        }
