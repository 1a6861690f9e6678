"""In-process fan-out: the single-machine bus.

Publishing appends to each subscriber's bounded deque and wakes it; it never awaits a
subscriber, so one slow client cannot delay the others. The bound is in bytes of frames
waiting (a subscriber that lets more than its ``max_bytes`` pile up is closed with a
``slow consumer`` reason the stream can pass on), so one rule holds whatever the frames
weigh.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Generic, TypeVar

from purpleflea.bus.base import DEFAULT_BUFFER_BYTES, Message, SubscriptionClosed

T = TypeVar("T")


class BoundedQueue(Generic[T]):
    """One subscriber's queue, bounded by the bytes of the frames it holds (``size`` of an
    item); closed as a slow consumer past ``max_bytes``, and then ``on_close`` is called."""

    def __init__(
        self, max_bytes: int, size: Callable[[T], int], on_close: Callable[[Any], None]
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"a subscriber's max_bytes must be at least 1, got {max_bytes}")
        self.max_bytes = max_bytes
        self._size = size
        self._on_close = on_close
        self._queue: deque[T] = deque()
        self._bytes = 0
        #: The reader's wait for the next item (one reader: its owner). A bare future, not an
        #: asyncio.Event: a wakeup costs one future either way, and the Event's waiter list
        #: and loop lookup were the rest of ~0.3 us a delivery.
        self._waiter: asyncio.Future[None] | None = None
        self._closed = asyncio.Event()
        self.closed_reason: str | None = None

    @property
    def buffered_bytes(self) -> int:
        """Bytes of frames published to this subscriber and not read yet."""
        return self._bytes

    def offer(self, message: T) -> None:
        if self.closed_reason is not None:
            return
        size = self._size(message)
        # An empty queue takes any frame: one frame larger than the limit is not the
        # reader's fault, and refusing it would cut every subscriber at once. (Empty of
        # bytes: a marker waiting does not count.)
        if self._bytes and self._bytes + size > self.max_bytes:
            self.overflow(message)
            return
        self._queue.append(message)
        self._bytes += size
        self._wake()

    def overflow(self, message: T) -> None:
        """``message`` came with the queue full: the reader is a slow consumer."""
        self.close(
            f"slow consumer: more than {self.max_bytes} bytes buffered and not read "
            f"({len(self._queue)} frames, {self._bytes} bytes waiting)"
        )

    def put_marker(self, marker: T) -> None:
        """Queue an item that weighs nothing against the bound (a signal, not a frame), so
        it can never make the reader a slow consumer."""
        if self.closed_reason is None:
            self._queue.append(marker)
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next(self) -> T:
        while not self._queue:
            if self.closed_reason is not None:
                raise SubscriptionClosed(self.closed_reason)
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        message = self._queue.popleft()
        self._bytes -= self._size(message)
        return message

    def drain(self, limit: int | None = None) -> list[T]:
        """What is buffered now (at most ``limit``), without waiting (for batched writers)."""
        queue = self._queue
        if limit is None or limit >= len(queue):
            items = list(queue)
            queue.clear()
            self._bytes = 0
            return items
        items = [queue.popleft() for _ in range(limit)]
        self._bytes -= sum(self._size(m) for m in items)
        return items

    def close(self, reason: str = "closed") -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
            self._queue.clear()
            self._bytes = 0
            self._on_close(self)
            self._closed.set()
        self._wake()

    async def wait_closed(self) -> str:
        await self._closed.wait()
        assert self.closed_reason is not None
        return self.closed_reason

    async def __aiter__(self) -> AsyncIterator[T]:
        while True:
            try:
                yield await self.next()
            except SubscriptionClosed:
                return


def _frame_bytes(message: Message) -> int:
    return len(message.data)


class LocalSubscription(BoundedQueue[Message]):
    """One bus subscriber's queue of messages, bounded by the bytes of their frames."""

    def __init__(self, bus: LocalBus, max_bytes: int) -> None:
        super().__init__(max_bytes, _frame_bytes, bus.forget)


class LocalBus:
    """Fan-out to every live subscription in this process."""

    def __init__(self) -> None:
        self._subscribers: set[LocalSubscription] = set()

    async def publish(self, message: Message) -> None:
        self.publish_now(message)

    async def publish_many(self, messages: Sequence[Message]) -> None:
        for message in messages:
            await self.publish(message)

    def publish_now(self, message: Message) -> None:
        for subscriber in tuple(self._subscribers):
            subscriber.offer(message)

    def subscribe(self, max_bytes: int = DEFAULT_BUFFER_BYTES) -> LocalSubscription:
        subscription = LocalSubscription(self, max_bytes)
        self._subscribers.add(subscription)
        return subscription

    def forget(self, subscription: Any) -> None:
        self._subscribers.discard(subscription)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def connected(self) -> bool:
        return True  # in-process: nothing to lose

    async def newest_seq(self) -> int | None:
        return None  # in-process: nothing survives a run

    async def close(self) -> None:
        for subscriber in tuple(self._subscribers):
            subscriber.close("server shutting down")
