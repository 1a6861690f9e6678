"""An API node's tracker: it sequences nothing, it mirrors the ingest node's from the bus.

The REST routes and the stream endpoints read a few things from the tracker: ``last_seq`` (a
new stream client's live position), ``markets`` (last price and exchanges per market),
``counters`` and ``store``. On an API node the ingest node's tracker lives in another process,
so :class:`Follower` rebuilds the same state from what reaches this node: ``last_seq`` *is*
the bus's (the highest seq fanned out here, so a client subscribed now misses nothing after
it), and ``markets`` is warmed from the store and then kept current from the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from purpleflea.bus.local import LocalSubscription
from purpleflea.bus.nats import NatsBus
from purpleflea.model import Liquidation, VenueLiquidation
from purpleflea.server.pipeline import Pipeline
from purpleflea.store.base import Store

log = logging.getLogger("purpleflea.follower")

#: Bytes of frames the follower may lag behind the bus before it resubscribes (and its market
#: state skips what it missed: a price is superseded by the next one anyway). About 100,000
#: events: the follower is in-process and only falls that far behind when starved of CPU.
_BUFFER_BYTES = 64 * 1024 * 1024


class Follower(Pipeline):
    """A :class:`Pipeline` that follows a :class:`NatsBus` instead of sequencing events."""

    def __init__(self, store: Store, bus: NatsBus) -> None:
        super().__init__(store, bus)
        self.nats = bus
        self._follow: asyncio.Task[None] | None = None

    @property
    def last_seq(self) -> int:
        return self.nats.last_seq

    async def start(self, *, tick_interval: float = 1.0, warm_events: int = 200_000) -> None:
        """Warm the market state from the store, then start the bus right after it."""
        cursor = max(0, await self.store.last_seq() - warm_events)
        while page := await self.store.since(cursor, 10_000):
            for event in page:
                self._remember(event)
            cursor = page[-1].seq
        subscription = self.nats.subscribe(_BUFFER_BYTES)
        self._follow = asyncio.create_task(self._follow_loop(subscription), name="follower")
        await self.nats.start(after_seq=cursor)
        self.started = True

    async def _follow_loop(self, subscription: LocalSubscription) -> None:
        while True:
            async for message in subscription:  # ends when the bus closes the subscription
                self.counters["followed"] += 1
                if isinstance(message.payload, Liquidation):
                    self._remember(message.payload)
            reason = subscription.closed_reason or ""
            if not reason.startswith("slow consumer"):
                return  # the bus is shutting down
            self.counters["follower_resubscribed"] += 1
            log.warning("follower fell behind the bus (%s): resubscribed", reason)
            subscription = self.nats.subscribe(_BUFFER_BYTES)

    async def stop(self, *, grace_s: float = 2.0) -> None:
        self.started = False
        if self._follow is not None:
            self._follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow

    def submit(self, event: VenueLiquidation, received_at: int | None = None) -> None:
        raise RuntimeError(
            f"event {event.id}: an API node sequences nothing; send events to the ingest node"
        )
