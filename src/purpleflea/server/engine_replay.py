"""Replaying the store (and the engine journal) through the cascade engine at a start.

A start either warms the engine (the newest stored events scored again, the stored open
interest interleaved by time) or continues it from a saved state and replays what came after
it: the events stored since, and the fuel, open interest and ticks the journal holds
(:mod:`.engine_journal`), or, with no journal, the ticks the stored alerts show
(:meth:`EngineReplay.run`). The :class:`~purpleflea.server.pipeline.Pipeline` runs one before
it serves; nothing here is published (the alerts were, before the restart).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable
from typing import Protocol, runtime_checkable

from purpleflea.engine.heatmap_feed import FuelSink, HeatmapFeed
from purpleflea.model import HISTORY_EXCHANGE, CascadeAlert, Liquidation
from purpleflea.server.engine_journal import OpenInterest as ToldOpenInterest
from purpleflea.server.engine_journal import Tick, Told
from purpleflea.server.sequencing import Scorer, Sequencer
from purpleflea.store.base import OpenInterest, Store
from purpleflea.store.oi_sampler import HEARTBEAT_MS
from purpleflea.store.pages import NEVER_MS, open_interest_pages, store_pages

__all__ = ["OI_PAGE", "EngineReplay", "FollowsCascades"]

# The pipeline's lines: a start's story is told by one logger.
log = logging.getLogger("purpleflea.pipeline")

#: Open interest rows read per page while warming.
OI_PAGE = 10_000
#: Stored alerts read per page when replaying what came after a checkpoint.
_ALERT_PAGE = 10_000


@runtime_checkable
class FollowsCascades(Protocol):
    """A scorer that tells its active cascades (the cascade engine)."""

    def active(self) -> list[CascadeAlert]: ...


class EngineReplay:
    """One replay of ``store`` through ``scorer`` by way of ``core`` (the sequencer warms it
    as it scores live), each stored event also handed to ``remember`` (the tracker's market
    state); ``feed``: the heatmap feed, told which markets' stored totals the engine holds."""

    def __init__(
        self,
        store: Store,
        scorer: Scorer,
        core: Sequencer,
        remember: Callable[[Liquidation], None],
        feed: HeatmapFeed | None,
    ) -> None:
        self.store = store
        self.scorer = scorer
        self.core = core
        self.remember = remember
        self.feed = feed

    async def run(
        self,
        limit: int,
        stored: int,
        *,
        scored_after: int | None = None,
        told: list[Told] | None = None,
    ) -> bool:
        """Replay the newest stored events through the scorer, so that after a restart each
        market is scored against its own baseline rather than a cold prior, with the stored
        open interest interleaved by time when the scorer takes it (so the size term is on
        from the first live event, not only after the next snapshots). Alerts raised while
        warming were already published before the restart: they are dropped.

        With ``scored_after`` (the engine was continued from a state taken when the store
        ended at that seq) only the events after it are scored, as the engine scored them
        live, with the ticks that exhausted a cascade replayed where their stored alerts
        sit; the earlier ones only rebuild the markets' state. The open interest is not
        replayed then: the rows are market totals sampled to 0.5 % moves, and the engine
        holds each listing's value as it was told it.

        ``told``: what the journal holds after the state's marker (:mod:`.engine_journal`),
        the fuel, open interest and ticks the engine was told after it, each replayed before
        the first event stored above its position; the stored alerts' ticks are not then.

        True when the engine was warmed (not continued) by it."""
        cursor = max(0, stored - limit)
        warming = scored_after is None
        after = -1 if scored_after is None else scored_after
        sizes = self.scorer if isinstance(self.scorer, FuelSink) and warming else None
        replaying = not warming and told is None and after < stored
        ticks = await self._stored_ticks(after) if replaying else []
        told = [] if told is None else told[::-1]  # the oldest last, taken from the end
        replayed_told = len(told)
        oi: AsyncGenerator[list[OpenInterest], None] | None = None
        rows: list[OpenInterest] = []
        scored = replayed_ticks = 0
        try:
            async for page in store_pages(self.store, after=cursor, page=10_000):
                if sizes is not None and oi is None:
                    # From a heartbeat before the first event: every market's value then is in.
                    start = page[0].ts - HEARTBEAT_MS
                    oi = open_interest_pages(self.store, start_ms=start, page=OI_PAGE)
                    rows = await anext(oi, [])
                for event in page:
                    while rows and rows[0].ts <= event.ts:
                        rows = await self._apply_open_interest(rows, event.ts, oi)
                    if event.seq > after:
                        if ticks:
                            replayed_ticks += self._replay_ticks(ticks, event.seq)
                        if told and told[-1].position < event.seq:
                            self._replay_told(told, event.seq)
                        self.core.warm(event)
                        scored += 1
                    self.remember(event)
            while rows:  # what came after the last stored event: current when going live
                rows = await self._apply_open_interest(rows, NEVER_MS, oi)
            replayed_ticks += self._replay_ticks(ticks, stored + 1)
            self._replay_told(told, None)
        finally:
            if oi is not None:
                await oi.aclose()
        if scored and warming:
            log.info("cascade engine warmed with the last %d stored events", scored)
            return True
        if scored or replayed_ticks or replayed_told:
            log.info(
                "cascade engine: %d events and %d ticks stored after its state replayed, "
                "and %d journal records",
                scored,
                replayed_ticks,
                replayed_told,
            )
        return False

    def _replay_told(self, told: list[Told], before: int | None) -> None:
        """Tell the engine again what the journal's ``told`` (the oldest last, taken from
        the end) holds at a position below seq ``before`` (None: all of it). A tick's alerts
        were stored and published when it ran: dropped."""
        scorer = self.scorer
        sizes = scorer if isinstance(scorer, FuelSink) else None
        while told and (before is None or told[-1].position < before):
            record = told.pop()
            if isinstance(record, Tick):
                scorer.tick(record.now_ms)
            elif sizes is None:
                continue
            elif isinstance(record, ToldOpenInterest):
                sizes.set_open_interest(record.market, record.usd, record.instrument)
            else:
                sizes.set_fuel(record.market, record.side, record.ratio)

    async def _stored_ticks(self, after: int) -> list[CascadeAlert]:
        """The stored ``exhausted`` alerts after seq ``after``, the oldest last: where the
        engine's ticks ended cascades (and events, which the replay repeats anyway)."""
        found: list[CascadeAlert] = []
        while page := await self.store.cascades_since(after, limit=_ALERT_PAGE):
            found += (alert for alert in page if alert.status == "exhausted")
            after = page[-1].seq
        found.reverse()
        return found

    def _replay_ticks(self, ticks: list[CascadeAlert], before: int) -> int:
        """Tick the engine where ``ticks`` (the oldest last, taken from the end) exhausted a
        cascade it still follows, up to seq ``before``: a live tick on the wall clock, at
        the alert's time. The alerts were stored and published: dropped. How many ticked."""
        done = 0
        scorer = self.scorer
        while ticks and ticks[-1].seq < before:
            alert = ticks.pop()
            # An event's own exhaustion was replayed with the event; a tick's was not.
            if isinstance(scorer, FollowsCascades) and alert.id in {
                following.id for following in scorer.active()
            }:
                scorer.tick(alert.updated_at)
                done += 1
        return done

    async def _apply_open_interest(
        self,
        rows: list[OpenInterest],
        until: int,
        pages: AsyncGenerator[list[OpenInterest], None] | None,
    ) -> list[OpenInterest]:
        """Apply ``rows`` (a page, time order) up to ``until``; returns what is left, the next
        page when this one is used up."""
        assert isinstance(self.scorer, FuelSink)
        feed = self.feed
        done = 0
        for row in rows:
            if row.ts > until:
                break
            if feed is not None:
                feed.told_history(row.market)
            # As the stored total (one instrument, history:<market>), which the market's first
            # live snapshot drops (HeatmapFeed): not added to the live listings.
            self.scorer.set_open_interest(
                row.market, row.open_interest_usd, f"{HISTORY_EXCHANGE}:{row.market}"
            )
            done += 1
        if done < len(rows) or pages is None:
            return rows[done:]
        return await anext(pages, [])
