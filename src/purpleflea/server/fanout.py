"""The node's stream fan-out: one bus subscription for every stream client, each published
batch handed to a client as one chunk, each chunk's frames encoded once per distinct filter.

The bus carries one message per event. Offered to every client one by one, a burst of 20,000
events costs 20,000 x clients queue operations, filter checks and frame joins in one event
loop (bench/results/e2e.md). The hub reads the bus once, takes what arrived together (a
batch the pipeline published at once) as a :class:`Chunk`, and offers each client the chunk:
per client one queue entry, and the frames for a filter are built by the first client that
asks and shared with every client that has the same filter and batch mode.

A client's queue keeps the bus's rules: it is registered before its replay from storage
starts (nothing published meanwhile is missed), and it is bounded by the bytes of the
frames it holds (past ``max_bytes`` it is closed as a slow consumer, the same reason the bus
gives), except while its feed waits on the server for a page of that replay
(:attr:`ClientQueue.on_hold`): what passes the bound then is dropped and read from storage.

Heartbeats come from one timer per node, not one per client: every twentieth of the heartbeat
interval it looks at each streaming client, and one whose feed wrote nothing for the interval
less that tick gets :data:`BEAT` through its queue, behind anything already there, so the feed
answers with a heartbeat carrying its cursor: no client goes an interval without a frame (a
client's silence limit is set from the interval: the SDK's and the dashboard's 35 s against
the default 10 s). A client that is being written to gets none.
Arming a timeout around every wait for the next chunk instead cost ~4 us of the tracker's
CPU per delivery (``bench/feed_cpu.py``; 17 us with the profiler on, bench/results/e2e.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import Any

from purpleflea.bus.base import Bus, Message, Subscription, SubscriptionClosed
from purpleflea.bus.local import BoundedQueue
from purpleflea.model import CascadeAlert, Liquidation
from purpleflea.server.feed import Item, batch_frame
from purpleflea.server.filters import StreamFilter

log = logging.getLogger("purpleflea.fanout")

#: Messages one chunk holds at most (a pipeline batch is up to 2,000 events).
_CHUNK = 2_000
#: The hub's own bus buffer: it drains at once, so only a stalled event loop fills it.
_HUB_BUFFER_BYTES = 256 * 1024 * 1024
#: Heartbeat timer ticks per interval: a client hears a frame within the interval of its
#: last one, and a quiet client's heartbeats come 0.95-1 interval apart.
_TICKS = 20


class Chunk:
    """Messages published together, in seq order, and their frames per (filter, batch)."""

    __slots__ = ("_frames", "first_seq", "last_seq", "messages", "size", "wire")

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages
        # Empty only for BEAT: before every seq, so every client has all of it.
        self.first_seq = messages[0].seq if messages else -1
        self.last_seq = messages[-1].seq if messages else -1
        #: Bytes of the frames it carries (what a slow consumer is measured in).
        self.size = sum(len(m.data) for m in messages)
        self._frames: dict[tuple[StreamFilter, int], list[Item]] = {}
        #: Its bytes for the stream worker processes, encoded once for all of them.
        self.wire: bytes | None = None

    def items(self, wanted: StreamFilter, batch: int, after: int) -> list[Item]:
        """The frames for a client with filter ``wanted`` (its ``since_seq`` cleared) that has
        everything up to seq ``after``; shared between clients when none of it was sent yet."""
        if after >= self.last_seq:
            return []
        if after >= self.first_seq:  # the seam of a replay: only this client's rest
            return _items([m for m in self.messages if m.seq > after], wanted, batch)
        key = (wanted, batch)
        items = self._frames.get(key)
        if items is None:
            items = self._frames[key] = _items(self.messages, wanted, batch)
        return items


#: The heartbeat timer's nudge to a quiet client's feed: a chunk of nothing.
BEAT = Chunk([])


def _items(messages: list[Message], wanted: StreamFilter, batch: int) -> list[Item]:
    wanted_items: list[Item] = []
    for message in messages:
        payload = message.payload
        if isinstance(payload, Liquidation | CascadeAlert) and wanted.wants(payload):
            kind = "liquidation" if message.channel == "liquidations" else "cascade"
            wanted_items.append(Item(kind, message.seq, message.data, message.published))
    if batch <= 1:
        return [_with_text(item) for item in wanted_items]
    bundles = []
    for start in range(0, len(wanted_items), batch):
        part = wanted_items[start : start + batch]
        if len(part) == 1:
            bundles.append(_with_text(part[0]))
            continue
        data = batch_frame([item.data for item in part])
        bundles.append(
            Item("batch", part[-1].seq, data, part[0].published, len(part), data.decode())
        )
    return bundles


def _with_text(item: Item) -> Item:
    return Item(item.kind, item.seq, item.data, item.published, item.events, item.data.decode())


def _chunk_size(chunk: Chunk) -> int:
    return chunk.size


class ClientQueue(BoundedQueue[Chunk]):
    """One stream client's chunks, bounded by the bytes of their frames, and :data:`BEAT`
    when its feed asked for heartbeats and wrote nothing for an interval."""

    def __init__(self, hub: Fanout, max_bytes: int) -> None:
        super().__init__(max_bytes, _chunk_size, hub.forget)
        #: ``time.monotonic()`` of its feed's last frame (once per wakeup that wrote); infinite
        #: until the feed goes live, so its replay is not beaten.
        self.wrote_at = math.inf
        #: When the timer queued its last :data:`BEAT`, and whether that one is unread.
        self.beat_at = -math.inf
        self.beat_pending = False
        #: Its feed is waiting on the server, not on the client: for a page of its replay
        #: from storage, read at its account's pace. What is published meanwhile is no sign
        #: of a slow client: past the bound it is dropped instead of the client, and the feed
        #: reads it from storage too (every published seq is stored).
        self.on_hold = False
        #: The last seq of the chunks dropped on hold (-1: none).
        self.dropped_upto = -1

    def overflow(self, message: Chunk) -> None:
        if not self.on_hold:
            super().overflow(message)
            return
        self.dropped_upto = message.last_seq
        self.drain()

    def tick(self, now: float, due: float) -> None:
        """The heartbeat timer looks at it: a beat if its feed wrote nothing for ``due``
        seconds (the interval less one tick, so that no silence outlasts the interval), and
        none while one is still unread (a stalled client holds at most one)."""
        if not self.beat_pending and now - self.wrote_at >= due:
            self.beat_pending = True
            self.beat_at = now
            self.put_marker(BEAT)


class Fanout:
    """Reads the bus once and hands every registered client each chunk (see the module
    docstring). :meth:`start` before the first client, :meth:`stop` at shutdown."""

    def __init__(self, bus: Bus, *, heartbeat_s: float) -> None:
        if heartbeat_s <= 0:
            raise ValueError(f"heartbeat_s must be above 0, got {heartbeat_s}")
        self.bus = bus
        #: The longest a streaming client goes without a frame (to a timer tick).
        self.heartbeat_s = heartbeat_s
        self._clients: set[ClientQueue] = set()
        self._task: asyncio.Task[None] | None = None
        self._beats: asyncio.Task[None] | None = None
        self.chunks = 0

    def start(self) -> None:
        if self._task is None:
            subscription = self.bus.subscribe(_HUB_BUFFER_BYTES)
            self._task = asyncio.create_task(self._run(subscription), name="stream-fanout")
        if self._beats is None:
            self._beats = asyncio.create_task(self._beat(), name="stream-heartbeats")

    def subscribe(self, max_bytes: int) -> ClientQueue:
        """A new client's queue; it receives every chunk published from now on."""
        self.start()
        queue = ClientQueue(self, max_bytes)
        self._clients.add(queue)
        return queue

    def forget(self, queue: Any) -> None:
        self._clients.discard(queue)

    @property
    def clients(self) -> int:
        return len(self._clients)

    async def _run(self, subscription: Subscription) -> None:
        try:
            while True:
                first = await subscription.next()
                messages = [first, *subscription.drain(_CHUNK - 1)]
                chunk = Chunk(messages)
                self.chunks += 1
                for client in tuple(self._clients):
                    client.offer(chunk)
        except SubscriptionClosed as exc:
            # The bus closed (shutdown) or, a stalled loop, dropped the hub: every client
            # learns it the way it would have from its own subscription.
            for client in tuple(self._clients):
                client.close(exc.reason)
            if not exc.reason.startswith("server shutting down"):
                log.error("stream fan-out lost the bus: %s", exc.reason)
                self._task = None

    async def _beat(self) -> None:
        tick = self.heartbeat_s / _TICKS
        due = self.heartbeat_s - tick
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for client in self._clients:
                client.tick(now, due)

    async def stop(self) -> None:
        for task in (self._task, self._beats):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._beats = None
        for client in tuple(self._clients):
            client.close("server shutting down")
