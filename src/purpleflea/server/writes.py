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

from purpleflea.outage import Outage, OutageRecord, describe

log = logging.getLogger("purpleflea.store")


class WriteHealth:
    """The failing writers of one store, keyed by what they write (``events``, ...)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        #: Every writer that ever failed (a handful); one whose outage ended is not failing.
        self.outages: dict[str, OutageRecord] = {}
        #: Writers whose writes work again while their outage lasts (a backlog is being
        #: stored): since when (clock). Health said the last error meanwhile ("Connection
        #: refused", 12 s after PostgreSQL was back and the backlog going in).
        self.writing_again: dict[str, float] = {}

    @property
    def failing(self) -> bool:
        return any(record.failing for record in self.outages.values())

    def writer_failing(self, writer: str) -> bool:
        """Whether ``writer``'s own writes are failing (another writer's outage aside)."""
        record = self.outages.get(writer)
        return record is not None and record.failing

    def failed(self, writer: str, exc: BaseException, *, holding: str = "") -> None:
        """A write of ``writer`` failed; logs only if it was not failing already.

        ``holding`` says what waits for the store meanwhile (named in the log line).
        """
        record = self.outages.get(writer)
        if record is None:
            record = self.outages[writer] = OutageRecord(self.clock)
        self.writing_again.pop(writer, None)
        error = describe(exc)
        if not record.failed(error):
            return
        log.error(
            "store: %s writes failing: %s%s (retrying with backoff; the next line says when "
            "it recovers)",
            writer,
            error,
            f"; {holding}" if holding else "",
        )

    def succeeded(self, writer: str, *, summary: str = "") -> None:
        """``writer`` is writing again (logs only if it was failing)."""
        self.writing_again.pop(writer, None)
        record = self.outages.get(writer)
        ended = record.recovered() if record is not None else None
        if ended is None:
            return
        log.warning(
            "store: %s writes recovered after %.1f s and %d failed attempts%s",
            writer,
            ended.seconds,
            ended.failures,
            f"; {summary}" if summary else "",
        )

    def wrote(self, writer: str) -> None:
        """A write of ``writer`` worked, but its outage lasts until what it held is stored
        (:meth:`succeeded`): health says so instead of the last error."""
        if self.writer_failing(writer):
            self.writing_again.setdefault(writer, self.clock())

    def reasons(self) -> list[str]:
        """One line per failing writer, for health."""
        return [self._reason(writer, outage) for writer, outage in self._failing()]

    def _reason(self, writer: str, outage: Outage) -> str:
        since = self.writing_again.get(writer)
        if since is None:
            return (
                f"store: {writer} writes failing for {outage.seconds:.0f} s ({outage.failures} "
                f"attempts): {outage.last_error}"
            )
        return (
            f"store: {writer} writes work again for {self.clock() - since:.0f} s, storing "
            f"what was held; they failed for {outage.seconds - (self.clock() - since):.0f} s "
            f"({outage.failures} attempts): {outage.last_error}"
        )

    def snapshot(self) -> dict[str, object]:
        failing = self._failing()
        return {
            "writable": not failing,
            "failing": {
                writer: {
                    "for_s": round(outage.seconds, 1),
                    "attempts": outage.failures,
                    "last_error": outage.last_error,
                }
                for writer, outage in failing
            },
        }

    def _failing(self) -> list[tuple[str, Outage]]:
        """The writers failing now and their outages, by name."""
        return [
            (writer, outage)
            for writer, record in sorted(self.outages.items())
            if (outage := record.outage()) is not None
        ]
