"""Publishing a stored plan, and the backlog (the outbox) a bus outage leaves.

The :class:`~purpleflea.server.pipeline.Pipeline` stores a plan, then hands it to
:meth:`PublishBacklog.publish`. When the bus refuses it (NATS away), the plan is the start of a
backlog: what is stored above the published seq is published from the store, in seq order,
ahead of anything newer, a page per new plan and, with no new event, every ``republish_s``
while the bus is connected (the pipeline's flush loop calls :meth:`PublishBacklog.drain`). A
start resumes a backlog the last run left, from the bus's newest seq
(:meth:`PublishBacklog.resume`). So every stored item reaches the bus, once and in order,
without waiting for a next event.

The outage is logged once when it starts and once when the backlog it made is all on the bus.
The published seq is the sequencer's (``core.published_seq``): the backlog's cursor.
"""

from __future__ import annotations

import logging
import time
from collections import Counter

from purpleflea.bus.base import Bus
from purpleflea.bus.stored import stored_messages
from purpleflea.outage import OutageRecord, describe
from purpleflea.server.sequencing import BatchPlan, Sequencer
from purpleflea.store.base import Store

__all__ = ["PublishBacklog"]

# The pipeline's lines: the operator reads one story of the bus's outage.
log = logging.getLogger("purpleflea.pipeline")

#: Stored items read back and published per page when a bus outage left a backlog; a batch
#: of new events publishes one page of the backlog ahead of it, so storing goes on meanwhile.
_REPUBLISH_PAGE = 1_000
#: At start, a bus whose newest seq is further behind the store than this did not just miss
#: the last run's final publishes (another store, a stream reset): nothing is published again.
_RESUME_BACKLOG_MAX = 1_000_000


class PublishBacklog:
    """Publishes stored plans on ``bus``, and from ``store`` what it refused (see the module
    docstring). Counts in ``counters`` (``publish_errors``, ``stored_unpublished``,
    ``republished``, ``republished_alerts``, ``republish_errors``). Not locked: the pipeline
    calls it under its ``_serial`` lock, one plan at a time."""

    def __init__(self, store: Store, bus: Bus, core: Sequencer, counters: Counter[str]) -> None:
        self.store = store
        self.bus = bus
        self.core = core
        self.counters = counters
        #: Stored items the bus has not carried (their batches were refused): True until they
        #: are published from the store, in seq order, ahead of anything newer (the outbox;
        #: its cursor is the published seq).
        self.active = False
        #: While a backlog waits and no event comes, how often it is tried (once the bus is
        #: connected).
        self.republish_s = 1.0
        #: The bus's outage: each failure is a stored batch not published (the outage is
        #: logged once when it starts and once when it ends).
        self._publishing = OutageRecord()
        #: The published seq when the backlog began, the republished counters then, and the
        #: monotonic time its first page went out (for the line that says it is done).
        self._from = 0
        self._counts = (0, 0)
        self._started: float | None = None

    @property
    def unpublished_seqs(self) -> int:
        """Seqs stored (or being stored) above the published one while a bus outage's
        backlog waits to be published from the store; 0 when there is none."""
        return self.core.next_seq - 1 - self.core.published_seq if self.active else 0

    async def resume(self, stored: int) -> None:
        """Seqs a previous run stored and the bus never carried (it stopped or crashed during
        a bus outage, or between a persist and its publish) are the backlog: published from
        the store, in seq order, ahead of anything new. The bus's newest seq says where it
        stopped; a bus that keeps nothing (in-process) or holds nothing (a new or expired
        stream) says nothing, and nothing is published again."""
        try:
            newest = await self.bus.newest_seq()
        except Exception as exc:
            log.warning("bus: could not read its newest seq at start: %s", describe(exc))
            return
        upto = min(stored, self.core.published_seq)
        if newest is None or newest >= upto:
            return
        if upto - newest > _RESUME_BACKLOG_MAX:
            log.warning(
                "bus: its newest message is seq %d, %d seqs behind the store's %d: more than "
                "%d, so not a publish the last run missed (another store, a stream reset); "
                "nothing is published again",
                newest,
                upto - newest,
                upto,
                _RESUME_BACKLOG_MAX,
            )
            return
        self.core.published_seq = newest
        self._start()
        log.warning(
            "bus: seqs %d-%d are stored but not on the bus (the last run did not publish "
            "them): publishing them from the store, in seq order",
            newest + 1,
            upto,
        )

    async def publish(self, plan: BatchPlan) -> bool:
        """Publish a persisted plan, after a page of the backlog if there is one; False when
        the plan is not on the bus: the bus failed, or more backlog is ahead of it (the plan
        joins the backlog, published from the store in its turn)."""
        try:
            messages = plan.messages(time.monotonic())
            behind = False
            if self.active and messages:
                behind = not await self._publish_page(messages[0].seq - 1)
            if not behind:
                for message in messages:
                    await self.bus.publish(message)
                    self.core.published(message.seq)
        except Exception as exc:
            self.counters["publish_errors"] += 1
            self._unpublished(plan)
            error = describe(exc)
            if self._publishing.failed(error):
                log.error(
                    "bus: could not publish a stored batch: %s (stored batches are published "
                    "from the store, in seq order, once the bus is back; the next line says "
                    "when)",
                    error,
                )
            return False
        if behind:
            self._unpublished(plan)
            return False
        return True

    async def drain(self) -> None:
        """No event waits: publish the backlog, a page at a time, until it is all out or an
        event comes (its batch goes on with it). A failure is left for the next try."""
        try:
            while self.active and not self.core.pending:
                await self._publish_page(self.core.next_seq - 1)
        except Exception as exc:
            self.counters["republish_errors"] += 1
            log.debug("bus: publishing the backlog failed: %s", describe(exc))

    def stopped(self) -> None:
        """The pipeline stops: say what is left for the next start, if anything."""
        if self.active:
            log.warning(
                "bus: stopped with seqs %d-%d stored and not on the bus (it refused them): the "
                "next start publishes them from the store (meanwhile API nodes fill them in at "
                "the next message, and resuming clients read them from the store)",
                self.core.published_seq + 1,
                self.core.next_seq - 1,
            )

    def _start(self) -> None:
        if self.active:
            return
        self.active = True
        self._from = self.core.published_seq
        self._counts = (self.counters["republished"], self.counters["republished_alerts"])
        self._started = None

    def _unpublished(self, plan: BatchPlan) -> None:
        """``plan`` is stored and not on the bus: it is in the backlog."""
        self._start()
        # Stored, but not on the bus: without this count they were in `received` and no
        # other outcome, so a bus outage read in /v1/metrics as that many events lost.
        self.counters["stored_unpublished"] += sum(
            1 for event in plan.stored or () if event.seq > self.core.published_seq
        )

    async def _publish_page(self, upto: int) -> bool:
        """Publish one page of the backlog (stored, above the published seq, at most
        ``upto``) from the store, in seq order; True when none is left up to ``upto``.
        Raises when the bus (or the store) fails: the rest waits for the next try. JetStream
        drops a message it already has (the same ``Nats-Msg-Id``) and API nodes skip a seq
        they passed, so an item published before a failure is never delivered twice."""
        found = await stored_messages(self.store, self.core.published_seq, upto, _REPUBLISH_PAGE)
        started = time.monotonic()
        await self.bus.publish_many(found)
        if found:
            self.core.published(found[-1].seq)
            if self._started is None:
                self._started = started
        events = sum(1 for message in found if message.channel == "liquidations")
        self.counters["republished"] += events
        self.counters["republished_alerts"] += len(found) - events
        if len(found) >= _REPUBLISH_PAGE and found[-1].seq < upto:
            return False  # a full page: maybe more, the next page in its turn
        self.active = False
        self._done()
        return True

    def _done(self) -> None:
        """The backlog is all on the bus: the end of the publish outage that made it (if
        this run saw one), logged with what was published from the store."""
        ended = self._publishing.recovered()
        events = self.counters["republished"] - self._counts[0]
        alerts = self.counters["republished_alerts"] - self._counts[1]
        took = time.monotonic() - (self._started or time.monotonic())
        what = (
            f"{events} events and {alerts} alerts (seqs {self._from + 1}-"
            f"{self.core.published_seq}) were published from the store, in seq order, in "
            f"{took:.1f} s"
        )
        if ended is None:
            log.warning("bus: the stored seqs it lacked are on it: %s", what)
            return
        log.warning(
            "bus: publishing again after %.1f s; %d stored batches were refused meanwhile: "
            "their %s",
            ended.seconds,
            ended.failures,
            what,
        )
