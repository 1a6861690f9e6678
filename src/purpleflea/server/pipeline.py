"""The pipeline, the tracker's spine: sequence, score, persist, then publish (the async driver).

Sources (live exchanges, the simulator, a replay file) hand :class:`Pipeline` venue events
through :meth:`Pipeline.submit`, a plain non-blocking call. What happens to them is decided by
the pure core, :class:`~purpleflea.server.sequencing.Sequencer` (dedupe, seqs, scores, alert
seqs, the bounded buffer, persisted-before-published); this module only performs its plans:
one flush task opens the next plan, writes it to the store and only then publishes it on the
bus, so a ``seq`` a client has seen is always on disk (the resume guarantee across restarts).

When the bus refuses a stored plan (NATS away), the plan is the start of a backlog, published
from the store, in seq order, once the bus is back (:mod:`.publish_backlog`).

When the store fails (a full disk, a lost database), the plan's write is retried with
exponential backoff until it is stored, under the same seqs. Meanwhile new events wait in the
core's bounded buffer (``buffer_limit``). The outage is logged once when it starts and once
when it ends (:class:`~purpleflea.server.writes.WriteHealth`).

On a SQLite store the seqs handed out are guarded by a mark file beside it
(:mod:`purpleflea.store.seqmark`): raised before a seq past it is published, exact at a clean
stop, and numbering resumes after it when the store came back shorter than what was published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

import msgspec

from purpleflea.bus.base import Bus
from purpleflea.clock import now_ms
from purpleflea.engine.heatmap_feed import HeatmapFeed
from purpleflea.engine.market_price import MarketPrice
from purpleflea.formatting import printable
from purpleflea.model import (
    NAME_MAX,
    Liquidation,
    MarketSnapshot,
    VenueLiquidation,
)
from purpleflea.outage import describe
from purpleflea.server.cascade_handover import handover
from purpleflea.server.engine_journal import JournaledFuel, Tick, Told, new_nonce
from purpleflea.server.engine_replay import OI_PAGE, EngineReplay, FollowsCascades
from purpleflea.server.engine_state import Continued, KeepsEngine, KeepsState
from purpleflea.server.latency import StageLatency
from purpleflea.server.publish_backlog import PublishBacklog
from purpleflea.server.sequencing import BatchPlan, Scorer, Sequencer, WriteEvents
from purpleflea.server.writes import WriteHealth
from purpleflea.store.base import Query, Store
from purpleflea.store.pages import open_interest_pages
from purpleflea.store.seqmark import SeqMark

__all__ = ["MarketState", "Pipeline", "Scorer", "SnapshotSink"]

log = logging.getLogger("purpleflea.pipeline")


class SnapshotSink(Protocol):
    """The heatmap side of the tracker (see :mod:`purpleflea.engine.heatmap_feed`)."""

    def on_snapshot(self, snapshot: MarketSnapshot) -> None: ...

    def note_price(self, market: str, price: float) -> None: ...

    def retire_prices(self, market: str) -> bool:
        """Forget what ``market``'s prices left, unless it is listed (then False)."""
        ...


@runtime_checkable
class RetiresMarkets(Protocol):
    """A scorer that forgets the markets silent since a time (the cascade engine)."""

    def retire(self, before_ms: int) -> int: ...


#: A market whose last event is this much older (by events' time) than the newest event, and
#: that no listing keeps (the heatmap's, the engine's open interest), is retired: the entries
#: its events made (the market list /v1/markets reads, the market price's first fill, the
#: heatmap's price range, the cascade engine's states) go, as its listings went from the
#: heatmap. Kept, every dated future and delisted coin ever liquidated stayed for good.
MARKET_RETIRE_MS = 7 * 86_400_000
#: How often (events' time) markets are looked at for retiring.
_RETIRE_EVERY_MS = 3_600_000


#: Stored cascades read at a restart's handover (the latest state of each, newest first).
_HANDOVER_LIMIT = 1000


class MarketState(msgspec.Struct, kw_only=True):
    """What the tracker has seen of one market since it started.

    ``last_price`` is the latest **fill** price (``registry.fill_priced``) once the market has
    had one: a bankruptcy or order price (Bybit, OKX, HTX, BitMEX, Gate) sits 0.4-0.6 % or more
    from the market (docs/live.md, "What `price` is"); before any fill, the latest price of any
    kind (:class:`~purpleflea.engine.market_price.MarketPrice`). ``price_ts`` is that price's
    event time; ``last_ts`` is the latest event's, whatever its venue (minutes apart when only
    bankruptcy-priced venues liquidate the market: the price is then older than ``last_ts``).
    """

    last_price: float
    price_ts: int
    last_ts: int
    exchanges: set[str]


#: A wakeup within this long of the last flush's end means events are arriving: coalesce.
#: Below ~20 events/s an event goes at once.
_BUSY_S = 0.05


class Pipeline:
    """Performs the :class:`Sequencer`'s plans: persist, then publish; see the module
    docstring."""

    def __init__(
        self,
        store: Store,
        bus: Bus,
        *,
        scorer: Scorer | None = None,
        heatmap: SnapshotSink | None = None,
        fill_priced: Iterable[str] | None = None,
        batch_limit: int = 2_000,
        coalesce_s: float = 0.001,
        buffer_limit: int = 200_000,
        retry_initial_s: float = 0.05,
        retry_max_s: float = 5.0,
        seq_mark: SeqMark | None = None,
        engine_state: KeepsEngine | None = None,
        checkpoint_s: float = 60.0,
        checkpoint_seqs: int = 50_000,
    ) -> None:
        if buffer_limit < 1:
            raise ValueError(f"Pipeline buffer_limit must be at least 1, got {buffer_limit}")
        self.store = store
        self.bus = bus
        self.scorer = scorer
        self.heatmap = heatmap
        # The exchanges whose ``price`` is a fill (None: every one's): only their prices are
        # the market's, for the heatmap's swept range and a market's last price.
        self._prices = MarketPrice(fill_priced)
        self.coalesce_s = coalesce_s
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        #: The seq high-water mark beside a SQLite store (None: not guarded).
        self.seq_mark = seq_mark
        #: Where the cascade engine's state is written for the next start, now and then and
        #: at a clean stop: files beside a SQLite store, tables of a PostgreSQL store's
        #: database (None: the next start warms it from the stored events).
        self.engine_state = engine_state
        #: A checkpoint of the engine's state once the tracker's clock (event and snapshot
        #: time) moved this many seconds since the last, or ``checkpoint_seqs`` seqs were
        #: stored; 0: only at a clean stop. After a crash the next start replays what was
        #: stored after the checkpoint.
        self.checkpoint_s = checkpoint_s
        self.checkpoint_seqs = checkpoint_seqs
        #: And at least this many seconds of the wall clock apart: a simulator at --speed 60
        #: moves the tracker's clock a minute a second, and wrote a whole checkpoint (two
        #: fsyncs, 666 kB at 275 markets) at every tick, ~58 GB a day.
        self.checkpoint_wall_s = 30.0
        #: Checkpoints written, and the CPU seconds they took (exporting and writing).
        self.checkpoints = 0
        self.checkpoint_cpu_s = 0.0
        self._checkpointed = (0, 0)  # the tracker's clock and the seq of the last checkpoint
        self._checkpointed_at = 0.0  # and its time.monotonic()
        self._checkpointing: asyncio.Task[None] | None = None
        #: How the engine was rebuilt at start: "continued" (from the state a clean stop or a
        #: checkpoint wrote, the events stored after it replayed), "warmed" (replayed from
        #: the store) or "" (neither).
        self.engine_start = ""
        self.counters: Counter[str] = Counter()
        self.core = Sequencer(
            scorer=scorer,
            batch_limit=batch_limit,
            buffer_limit=buffer_limit,
            on_event=self._remember,
            counters=self.counters,
        )
        self.writes = WriteHealth()
        #: Where events' time goes, receive -> persisted -> published (-> written, by the
        #: streams of this node).
        self.latency = StageLatency()
        #: Monotonic time of the last event submitted (health: is the source still talking).
        self.last_received: float | None = None
        self.started = False
        self._started_once = False  # the mark is finished only after a start read it
        self._dropped_at_outage = 0
        self._snapshot_names_logged = False  # the first snapshot dropped for its names
        #: Publishes each stored plan, and from the store what the bus refused.
        self.backlog = PublishBacklog(store, bus, self.core, self.counters)
        self.markets: dict[str, MarketState] = {}
        #: Markets retired (:data:`MARKET_RETIRE_MS`), and the events' time of the next look.
        self.markets_retired = 0
        self._next_retire_ms = 0
        self.clock_ms = 0
        self._wakeup = asyncio.Event()
        self._flushed_at = -1e9  # time.monotonic() when the last flush ended
        self._task: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        # A plan is opened, persisted and published under one lock (the flush loop's and the
        # tick loop's): the core allows one open plan at a time.
        self._serial = asyncio.Lock()

    @property
    def buffer_limit(self) -> int:
        """Events waiting to be sequenced at most; beyond it, new ones are dropped (counted)."""
        return self.core.buffer_limit

    @buffer_limit.setter
    def buffer_limit(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"Pipeline buffer_limit must be at least 1, got {limit}")
        self.core.buffer_limit = limit

    @property
    def batch_limit(self) -> int:
        return self.core.batch_limit

    @property
    def last_seq(self) -> int:
        """The highest seq published: everything at or below it is stored and on the bus.

        Not the highest *assigned*: a batch between sequencing and publishing holds seqs a
        new stream client must still receive, so its live start cursor may not pass them.
        """
        return self.core.published_seq

    @property
    def unpublished_seqs(self) -> int:
        """Seqs stored (or being stored) above the published one while a bus outage's
        backlog waits to be published from the store; 0 when there is none."""
        return self.backlog.unpublished_seqs

    async def start(self, *, tick_interval: float = 1.0, warm_events: int = 200_000) -> None:
        stored = await self.store.last_seq()
        # Past the mark when the store lost its tail: those seqs were published already.
        mark = self.seq_mark
        self.core.resume(stored if mark is None else await asyncio.to_thread(mark.start, stored))
        await self.backlog.resume(stored)
        self._journal_fuel()
        continued = await self._continue_engine(stored, warm_events)
        if self.scorer is not None and warm_events > 0:
            told = None
            if continued is not None and continued.journal is not None:
                assert self.engine_state is not None
                told = await self.engine_state.journal.records_after(continued.journal)
            await self._warm(
                warm_events,
                stored,
                scored_after=None if continued is None else continued.seq,
                told=told,
            )
        self._checkpointed = (self.clock_ms, stored)
        self._checkpointed_at = time.monotonic()
        await self._rebuild_heatmaps()
        await self._hand_over_cascades()
        await self._start_checkpoint()
        self._task = asyncio.create_task(self._flush_loop(), name="tracker-flush")
        if self.scorer is not None:
            self._ticker = asyncio.create_task(self._tick_loop(tick_interval), name="tracker-tick")
        self.started = True
        self._started_once = True

    def _journal_fuel(self) -> None:
        """The heatmap tells the engine its fuel and open interest through the journal
        (:mod:`.engine_journal`), which writes each call down once a checkpoint began it."""
        saved, feed = self.engine_state, self._heatmap_feed()
        if saved is None or not isinstance(self.scorer, KeepsState):
            return
        saved.journal.counters = self.counters  # its write failures in the metrics
        if feed is not None and feed.fuel is self.scorer:
            feed.fuel = JournaledFuel(feed.fuel, saved.journal, self._position)

    def _heatmap_feed(self) -> HeatmapFeed | None:
        """The heatmap feed behind the sink: the sink itself (a single node), or the feed
        inside an ingest node's sink that publishes its changes (``PublishingSink``); None
        when there is no model here. The one way the tracker reaches the feed: checking the
        sink alone missed the wrapped one (an ingest node's fuel was not journaled, its
        listings not retired, its heatmaps not rebuilt at start, its warm's stored totals
        not dropped at the first live snapshot)."""
        sink = self.heatmap
        if isinstance(sink, HeatmapFeed):
            return sink
        inner = getattr(sink, "feed", None)
        return inner if isinstance(inner, HeatmapFeed) else None

    def _position(self) -> int:
        """The last seq handed out: every event scored so far has one at or below it."""
        return self.core.next_seq - 1

    async def _continue_engine(self, stored: int, within: int) -> Continued | None:
        """Continue the scorer from the newest state a clean stop or a checkpoint wrote at a
        seq the store holds, at most ``within`` seqs before its end (:mod:`.engine_state`);
        what it continued (the events after its seq are to be replayed), or None."""
        saved, scorer = self.engine_state, self.scorer
        if saved is None or not isinstance(scorer, KeepsState):
            return None
        restored = await saved.load(scorer, stored, within=within, anchor_at=self._anchor)
        if restored is None:
            return None
        self.engine_start = "continued"
        feed = self._heatmap_feed()
        if feed is not None:
            # The rebuilt heatmap has no book of the engine's listings: it retires them.
            held = restored.engine.get("oi")
            if isinstance(held, dict):
                feed.continued(
                    (market, instrument) for market, books in held.items() for instrument in books
                )
        log.info(
            "cascade engine continued from %s (seq %d; the store ends at %d)",
            saved.where,
            restored.seq,
            stored,
        )
        return restored

    async def _save_engine(self) -> None:
        """A clean stop with everything stored: the engine's state for the next start."""
        saved, scorer = self.engine_state, self.scorer
        if saved is None or not isinstance(scorer, KeepsState) or not self._started_once:
            return
        if self.scorer is not None and self.scorer.drain_alerts():
            return  # alerts no tick published: the state is past what clients were told
        try:
            stored = await self.store.last_seq()
            anchor = await self._anchor(stored)
            await saved.put(scorer.export_state(), stored, anchor)
        except Exception as exc:  # the store unreadable, the disk full: the stop goes on
            log.warning(
                "could not write the cascade engine's state to %s: %s", saved.where, describe(exc)
            )

    async def _anchor(self, seq: int) -> tuple[int, str]:
        """The seq and id of the newest event stored at or below ``seq`` ((0, ""): none): a
        state taken at ``seq`` names it, and is continued only over a store that holds it
        (another store copied over the file keeps the file's identity)."""
        page = await self.store.query(Query(before_seq=seq + 1, limit=1))
        return (page.events[0].seq, page.events[0].id) if page.events else (0, "")

    async def _warm(
        self,
        limit: int,
        stored: int,
        *,
        scored_after: int | None = None,
        told: list[Told] | None = None,
    ) -> None:
        """Replay the store (and ``told``, the journal's records) through the scorer: warm
        it, or, with ``scored_after``, replay what came after the state it continued
        (:class:`~.engine_replay.EngineReplay`)."""
        assert self.scorer is not None
        replay = EngineReplay(
            self.store, self.scorer, self.core, self._remember, self._heatmap_feed()
        )
        if await replay.run(limit, stored, scored_after=scored_after, told=told):
            self.engine_start = "warmed"

    async def _rebuild_heatmaps(self) -> None:
        """Rebuild the heatmaps from the stored open interest (the last ``memory_ms`` of it
        before the newest stored event, or all of it when none is), so that a restart, or a
        ``serve --source none`` on a folder the simulator filled, serves them at once instead
        of a 404 until the first snapshot (never, with no source)."""
        feed = self._heatmap_feed()
        if feed is None:
            return
        start = max(0, self.clock_ms - feed.memory_ms) if self.clock_ms else 0
        applied = 0
        async for rows in open_interest_pages(self.store, start_ms=start, page=OI_PAGE):
            applied += feed.restore(row.snapshot() for row in rows)
            await asyncio.sleep(0)
        if applied:
            log.info(
                "heatmaps of %d markets rebuilt from %d stored open interest rows",
                len(feed.model.markets()),
                applied,
            )

    async def _hand_over_cascades(self) -> None:
        """Store and publish what keeps each cascade's lifecycle whole after the warm: one
        stored as active that the warmed engine does not follow is ``exhausted``; one it
        follows that no client heard start is kept quiet (:mod:`.cascade_handover`)."""
        if not isinstance(self.scorer, FollowsCascades):
            return
        following = self.scorer.active()
        stored = await self.store.cascades(active=True, limit=_HANDOVER_LIMIT)
        markets = sorted({alert.market for alert in following})
        if markets:
            stored += await self.store.cascades(markets=markets, limit=_HANDOVER_LIMIT)
        found = handover(following, stored)
        self.core.mute(found.muted)
        async with self._serial:
            plan = self.core.alerts_plan(found.alerts)
            if plan is not None:
                await self._perform(plan)
        if found.alerts or found.muted:
            log.info(
                "restart: %d stored active cascade(s) the warmed engine does not follow closed "
                "as exhausted; %d it follows that no client heard start kept quiet",
                len(found.alerts),
                len(found.muted),
            )

    async def stop(self, *, grace_s: float = 2.0) -> None:
        """Store and publish what is pending, then stop. With the store failing, waits at
        most ``grace_s`` for it to come back: a shutdown is not held hostage by a full disk,
        and what is still unstored then is dropped (counted and logged once)."""
        deadline = time.monotonic() + grace_s
        while not self._idle.is_set() and self._task is not None and not self._task.done():
            if self.writes.writer_failing("events") and time.monotonic() >= deadline:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), 0.1)
        self.started = False
        lost = self.core.buffered  # before cancelling: a cancelled plan is closed unstored
        for task in (self._ticker, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.backlog.stopped()
        await self._finish_mark()
        if self._checkpointing is not None:  # one writer of the state files at a time
            with contextlib.suppress(Exception):
                await self._checkpointing
        if self.engine_state is not None:
            await self.engine_state.journal.finish()
        if not lost:
            await self._save_engine()
        if self.engine_state is not None:
            await self.engine_state.close()
        if lost:
            self.counters["dropped_at_shutdown"] += lost
            log.error("stopped with %d events not stored (the store was failing)", lost)

    async def _finish_mark(self) -> None:
        """A clean stop: the mark becomes the exact last seq (no gap at the next start).
        Nothing is published any more; the store holds every published seq, the published
        cursor covers a gap skipped at start."""
        mark = self.seq_mark
        if mark is None or not self._started_once:
            return
        stored, published = await self.store.last_seq(), self.core.published_seq
        last = max(stored, published)
        try:
            # What the store holds now, published: a gap skipped at start and nothing stored
            # since is below ``last`` and no loss (a next start compares the store with it).
            await asyncio.to_thread(mark.finish, last, min(stored, published))
        except OSError as exc:  # the reserved mark stays: above every seq, only a larger gap
            log.warning("could not write the exact last seq %d to %s: %s", last, mark.path, exc)

    def submit(self, event: VenueLiquidation, received_at: int | None = None) -> None:
        """Queue one venue event for sequencing (never blocks, never raises).

        When ``buffer_limit`` events already wait (the store is failing or too slow), the
        event is dropped and counted as ``dropped_buffer_full``.
        """
        self.last_received = time.monotonic()
        if self.core.accept(event, received_at if received_at is not None else now_ms()):
            self._idle.clear()
            self._wakeup.set()

    @property
    def buffered(self) -> int:
        """Events accepted but not yet stored: waiting, or in the batch being written."""
        return self.core.buffered

    def on_snapshot(self, snapshot: MarketSnapshot) -> None:
        """Open interest and mark price from a poller or the simulator."""
        self.counters["snapshots"] += 1
        problem = self.core.snapshot_names_problem(snapshot)
        if problem is not None:
            # Its market would have a heatmap, named to users (the 404 of a mistyped one
            # lists markets that have one): dropped, as an event of such names is.
            if not self._snapshot_names_logged:
                self._snapshot_names_logged = True
                log.warning(
                    "%s snapshot dropped: %s (further ones are counted as rejected snapshots)",
                    printable(snapshot.exchange[:NAME_MAX]),
                    problem,
                )
            self.counters["bad_snapshots"] += 1
            return
        if self.heatmap is not None:
            try:
                self.heatmap.on_snapshot(snapshot)
            except ValueError as exc:
                self.counters["bad_snapshots"] += 1
                log.debug("snapshot rejected: %s", exc)
            finally:
                if self.engine_state is not None:  # what it told the engine, in the OS
                    self.engine_state.journal.flush()

    def advance_clock(self, now_ms: int) -> None:
        """A source's notion of now (the simulator runs its own clock)."""
        self.clock_ms = max(self.clock_ms, now_ms)

    async def drain(self) -> None:
        """Wait until everything submitted so far is persisted and published."""
        if self._task is None or self._task.done():
            return  # not running: nothing will ever be flushed, so do not wait for it
        await self._idle.wait()

    async def _flush_loop(self) -> None:
        while True:
            if self.backlog.active:  # tried again every republish_s, with or without new events
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self.backlog.republish_s)
            else:
                await self._wakeup.wait()
            if self.coalesce_s > 0 and time.monotonic() - self._flushed_at < _BUSY_S:
                # Events are arriving: let those of the next moment join this batch (one
                # store transaction and, for batching clients, one frame per client for all
                # of them, instead of one of each per event, at ~1 ms of latency). An event
                # after a quiet spell goes at once: waiting would only add the wait (at 5
                # events/s, one client: lag p50 3.9 -> 1.6 ms). Busier than one flush per
                # _BUSY_S keeps the wait: a 5 ms bound let a loop busy writing to 50 clients
                # miss it at 2,000/s, and smaller batches cost CPU per delivery. 1 ms, not 2:
                # at 2,000/s to 50 clients on its own CPU (bench/e2e.py --pin) p99 10.9-11.9
                # -> 9.7-10.0 ms for 3.3 -> 4.6 us per delivery; none: 19.6-27.7 ms, 7.8 us.
                await asyncio.sleep(self.coalesce_s)
            self._wakeup.clear()
            while self.core.pending:
                async with self._serial:
                    plan = self.core.next_plan(time.monotonic())
                    if plan is not None:
                        await self._perform(plan)
            if self.backlog.active and self.bus.connected:
                async with self._serial:
                    await self.backlog.drain()
            self._caught_up()
            self._flushed_at = time.monotonic()
            self._idle.set()

    def _caught_up(self) -> None:
        """Everything submitted is stored: the end of an outage (logged once) and of a full
        buffer. Not at the first write that works: a disk with a few bytes free would flap."""
        dropped = self.counters["dropped_buffer_full"] - self._dropped_at_outage
        # The events writer's own outage: another writer's (open interest, the webhook list)
        # says nothing about this buffer, and skipping the line would lose its count.
        if self.writes.writer_failing("events"):
            self.writes.succeeded(
                "events", summary=f"backlog stored, {dropped} events dropped (buffer full)"
            )
        elif self.core.buffer_full:
            log.warning("ingest buffer drained: %d events were dropped while full", dropped)
        self.core.buffer_full = False
        self._dropped_at_outage = self.counters["dropped_buffer_full"]

    async def _perform(self, plan: BatchPlan) -> None:
        """Persist ``plan`` (each write retried with exponential backoff until the store takes
        it), then publish it, then close it. Runs under ``_serial``."""
        published = False
        try:
            await self._persist(plan)
            persisted = time.monotonic()
            self._time_persisted(plan)
            if not self.core.pending:
                self._caught_up()
            published = await self.backlog.publish(plan)
            sent = len(plan.stored or ()) + len(plan.alerts)
            if published and sent:
                self.latency.observe("published", time.monotonic() - persisted, sent)
        except Exception:  # a bug, not the store (_persist retries those): keep serving
            self.counters["flush_errors"] += plan.size
            log.exception("could not perform a batch of %d events", plan.size)
        finally:
            self.core.close(plan, published=published)

    def _time_persisted(self, plan: BatchPlan) -> None:
        """Each stored event's time from its venue frame's arrival (wall clock: the
        connection stamps ``received_at`` with it) to now."""
        now = now_ms()
        # One observation per run of events that share a receive time (a venue frame, or a
        # burst taken at one wakeup), not one per event: the histogram is the same.
        received, times = 0, 0
        for event in plan.stored or ():
            if event.received_at != received:
                if times:
                    self.latency.observe("persisted", (now - received) / 1000.0, times)
                received, times = event.received_at, 0
            times += 1
        if times:
            self.latency.observe("persisted", (now - received) / 1000.0, times)

    async def _reserve(self) -> None:
        """Raise the seq mark before any seq past it can be published (one fsync per
        ``ahead`` seqs); the plan's seqs are all below the sequencer's next one."""
        mark = self.seq_mark
        if mark is not None and mark.needs(self.core.next_seq - 1):
            # What the store holds and was published: a store reopened below it lost its tail.
            stored = min(await self.store.last_seq(), self.core.published_seq)
            await asyncio.to_thread(mark.reserve, self.core.next_seq - 1, stored)

    async def _persist(self, plan: BatchPlan) -> None:
        delay = self.retry_initial_s
        while (write := plan.next_write()) is not None:
            try:
                await self._reserve()  # a failure is the store's: retried as a write is
                if isinstance(write, WriteEvents):
                    plan.events_written(await self.store.append(write.events))
                else:
                    await self.store.append_cascades(write.alerts)
                    plan.alerts_written()
                self.writes.wrote("events")  # during an outage: the backlog is going in
            except Exception as exc:
                self.counters["store_write_errors"] += 1
                self.writes.failed(
                    "events",
                    exc,
                    holding=f"{len(plan.events)} events and {len(plan.alerts)} alerts held, "
                    f"new events buffered up to {self.buffer_limit}",
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)

    def _remember(self, event: Liquidation) -> None:
        self.clock_ms = max(self.clock_ms, event.ts)
        prices, market = self._prices, event.market
        had_fill = prices.has_fill(market)
        priced = prices.counts(market, event.exchange)
        if self.heatmap is not None and priced:
            # A bankruptcy price below the market would widen the swept range past where the
            # market went, and the heatmap would drop positions it never reached.
            self.heatmap.note_price(market, event.price)
        state = self.markets.get(market)
        if state is None:
            self.markets[market] = MarketState(
                last_price=event.price,
                price_ts=event.ts,
                last_ts=event.ts,
                exchanges={event.exchange},
            )
        else:
            # Compared with the held price's own time, not the latest event's: venues lag
            # differently, so a fill may arrive after a later bankruptcy-priced event and is
            # still the newest fill. The market's first fill beats the other kinds, however old.
            first_fill = not had_fill and prices.has_fill(market)
            if priced and (event.ts >= state.price_ts or first_fill):
                state.last_price, state.price_ts = event.price, event.ts
            state.last_ts = max(state.last_ts, event.ts)
            state.exchanges.add(event.exchange)
        # The events' time, not beyond their arrival: one stamped in a later year (a venue's
        # bug) would retire every market at once.
        now = min(event.ts, event.received_at)
        if now >= self._next_retire_ms:
            self._retire_markets(now)

    def _retire_markets(self, now_ms: int) -> None:
        """Retire the markets no event came for in :data:`MARKET_RETIRE_MS` before ``now_ms``
        that nothing lists."""
        self._next_retire_ms = now_ms + _RETIRE_EVERY_MS
        before = now_ms - MARKET_RETIRE_MS
        if isinstance(self.scorer, RetiresMarkets):
            self.scorer.retire(before)
        for market, state in list(self.markets.items()):
            if state.last_ts >= before:
                continue
            if self.heatmap is not None and not self.heatmap.retire_prices(market):
                continue  # listed: its last price stays on /v1/markets beside its heatmap
            del self.markets[market]
            self._prices.forget(market)
            self.markets_retired += 1

    async def _tick_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            # Live: the wall clock; a simulator running faster than real time moves clock_ms.
            self.clock_ms = max(self.clock_ms, now_ms())
            await self._tick(self.clock_ms)

    async def _tick(self, now: int) -> None:
        """One tick of the engine at ``now`` (journaled: a tick moves a followed side's
        buckets whether or not it ends its cascade), then a checkpoint if one is due."""
        async with self._serial:
            position = self._position()
            # A tick of an engine that follows no cascade changes nothing: not journaled (one
            # frame a second for as long as nothing is stored or snapshotted, when no
            # checkpoint comes to begin the journal anew).
            scorer = self.scorer
            moves = not isinstance(scorer, FollowsCascades) or bool(scorer.active())
            plan = self.core.tick_plan(now)
            if self.engine_state is not None and scorer is not None:
                journal = self.engine_state.journal
                if moves:
                    journal.told(Tick(position, now))
                journal.flush(tick=True)  # a snapshot's records waiting (PostgreSQL) go too
            if plan is not None:
                await self._perform(plan)
            await self._checkpoint()

    async def _checkpoint(self) -> None:
        """Under ``_serial`` with no plan open (every event the engine scored is stored):
        write the engine's state when the tracker's clock moved ``checkpoint_s`` or
        ``checkpoint_seqs`` were stored since the last checkpoint, and something was stored
        or journaled (:mod:`.engine_journal`: a snapshot's fuel and open interest). The
        state is exported here, on the loop (it is the engine's), and written from a worker
        thread; none while the last is still being written."""
        saved, scorer = self.engine_state, self.scorer
        if saved is None or not isinstance(scorer, KeepsState) or self.checkpoint_s <= 0:
            return
        if self._checkpointing is not None and not self._checkpointing.done():
            return
        seq = await self.store.last_seq()
        if seq == 0:
            return  # nothing stored: a state at seq 0 would fit any store (_start_checkpoint)
        clock, last = self._checkpointed
        due = self.clock_ms - clock >= self.checkpoint_s * 1000
        # Something to keep: events stored, or only snapshots (the feeds down, the pollers
        # not: the journal would grow for as long, all of it replayed at the next start).
        told = saved.journal.since_begin > 0
        if not (seq != last or told) or not (due or seq - last >= self.checkpoint_seqs):
            return
        if time.monotonic() - self._checkpointed_at < self.checkpoint_wall_s:
            return
        if self.writes.writer_failing("events"):
            return  # the store is behind what the engine scored
        try:
            anchor = await self._anchor(seq)
        except Exception as exc:  # the store unreadable: the next tick tries again
            log.warning("engine checkpoint skipped: %s", describe(exc))
            return
        began = time.thread_time()
        try:
            exported = scorer.export_state()
        except ValueError:  # alerts queued (a tick failed before draining them): next time
            return
        # What the engine is told from here on is journaled after this checkpoint's marker:
        # begun right after the export, with no await between (a snapshot told in such a
        # gap would be in neither the state nor the journal's replay).
        nonce = new_nonce()
        saved.journal.begin(nonce, seq)
        self._checkpointed = (self.clock_ms, seq)
        self._checkpointed_at = time.monotonic()
        self._checkpointing = asyncio.create_task(
            self._write_checkpoint(saved, exported, seq, anchor, nonce, time.thread_time() - began),
            name="engine-checkpoint",
        )

    async def _start_checkpoint(self) -> None:
        """At start, once the engine is continued or warmed and before anything is scored:
        a checkpoint, written before serving (not counted in ``checkpoints``), unless the
        store is empty. A crash later
        replays from here, never across this start: the journal's records before it were
        told an engine a replay has already repeated them to."""
        saved, scorer = self.engine_state, self.scorer
        if saved is None or not isinstance(scorer, KeepsState) or self.checkpoint_s <= 0:
            return
        seq = await self.store.last_seq()
        if seq == 0:
            # Nothing stored: the engine knows nothing to keep, and a state at seq 0 would
            # fit any store put in the file's place (a crash before the first checkpoint
            # warms the engine from what was stored, as before the journal).
            return
        try:
            anchor = await self._anchor(seq)
        except Exception as exc:  # the store unreadable: the first checkpoint begins it
            log.warning("engine checkpoint at start skipped: %s", describe(exc))
            return
        try:
            exported = scorer.export_state()
        except ValueError:  # alerts queued: the next checkpoint begins the journal
            return
        nonce = new_nonce()
        saved.journal.begin(nonce, seq)
        self._checkpointed = (self.clock_ms, seq)
        task = asyncio.create_task(
            self._write_checkpoint(saved, exported, seq, anchor, nonce, None)
        )
        self._checkpointing = task
        await task

    async def _write_checkpoint(
        self,
        saved: KeepsEngine,
        exported: dict[str, object],
        seq: int,
        anchor: tuple[int, str],
        nonce: int,
        cpu_s: float | None,
    ) -> None:
        """``cpu_s``: the export's CPU, counted with the write's (None: not counted)."""

        try:
            # StoreUnavailable (PostgreSQL down, the lock lost) is an OSError too.
            written = await saved.put(exported, seq, anchor, journal=nonce)
        except OSError as exc:
            log.warning(
                "could not write the cascade engine's checkpoint to %s: %s", saved.where, exc
            )
            return
        if cpu_s is not None:
            self.checkpoints += 1
            self.checkpoint_cpu_s += cpu_s + written
