"""In-process fan-out: the single-machine bus.

Publishing appends to each subscriber's bounded deque and wakes it; it never awaits a
subscriber, so one slow client cannot delay the others. A full buffer closes that subscriber
with a reason the stream can pass on.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from purpleflea.bus.base import Message, SubscriptionClosed


class LocalSubscription:
    """One subscriber's bounded queue."""

    def __init__(self, bus: LocalBus, buffer: int) -> None:
        self._bus = bus
        self._buffer = buffer
        self._queue: deque[Message] = deque()
        self._wakeup = asyncio.Event()
        self.closed_reason: str | None = None

    def offer(self, message: Message) -> None:
        if self.closed_reason is not None:
            return
        if len(self._queue) >= self._buffer:
            self.close(f"slow consumer: {self._buffer} messages buffered and not read")
            return
        self._queue.append(message)
        self._wakeup.set()

    async def next(self) -> Message:
        while not self._queue:
            if self.closed_reason is not None:
                raise SubscriptionClosed(self.closed_reason)
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._queue.popleft()

    def drain(self, limit: int | None = None) -> list[Message]:
        """What is buffered now (at most ``limit``), without waiting (for batched writers)."""
        queue = self._queue
        if limit is None or limit >= len(queue):
            items = list(queue)
            queue.clear()
            return items
        return [queue.popleft() for _ in range(limit)]

    def close(self, reason: str = "closed") -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
            self._queue.clear()
            self._bus.forget(self)
        self._wakeup.set()

    async def __aiter__(self) -> AsyncIterator[Message]:
        while True:
            try:
                yield await self.next()
            except SubscriptionClosed:
                return


class LocalBus:
    """Fan-out to every live subscription in this process."""

    def __init__(self) -> None:
        self._subscribers: set[LocalSubscription] = set()

    async def publish(self, message: Message) -> None:
        self.publish_now(message)

    def publish_now(self, message: Message) -> None:
        for subscriber in tuple(self._subscribers):
            subscriber.offer(message)

    def subscribe(self, buffer: int = 10_000) -> LocalSubscription:
        subscription = LocalSubscription(self, buffer)
        self._subscribers.add(subscription)
        return subscription

    def forget(self, subscription: LocalSubscription) -> None:
        self._subscribers.discard(subscription)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def connected(self) -> bool:
        return True  # in-process: nothing to lose

    async def close(self) -> None:
        for subscriber in tuple(self._subscribers):
            subscriber.close("server shutting down")
