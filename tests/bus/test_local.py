"""In-process fan-out: everyone gets everything in order; a slow reader is cut off alone."""

from __future__ import annotations

import asyncio

import pytest

from purpleflea.bus import Message, SubscriptionClosed
from purpleflea.bus.local import LocalBus


def _message(seq: int, size: int = 2) -> Message:
    return Message(channel="liquidations", seq=seq, payload=None, data=b"x" * size)


async def test_every_subscriber_gets_every_message_in_order() -> None:
    bus = LocalBus()
    first, second = bus.subscribe(), bus.subscribe()
    for seq in range(1, 101):
        await bus.publish(_message(seq))
    for subscription in (first, second):
        assert [(await subscription.next()).seq for _ in range(100)] == list(range(1, 101))


async def test_a_full_buffer_closes_only_that_subscriber_with_a_reason() -> None:
    bus = LocalBus()
    slow, fast = bus.subscribe(max_bytes=20), bus.subscribe(max_bytes=2_000)
    for seq in range(1, 21):
        await bus.publish(_message(seq))
    with pytest.raises(SubscriptionClosed, match="slow consumer"):
        await slow.next()
    assert [(await fast.next()).seq for _ in range(20)] == list(range(1, 21))
    assert bus.subscribers == 1


async def test_the_buffer_is_measured_in_bytes_not_messages() -> None:
    bus = LocalBus()
    small, large = bus.subscribe(max_bytes=10_000), bus.subscribe(max_bytes=10_000)
    bus.forget(large)  # fed by hand below, with heavier frames
    for seq in range(1, 1_001):  # 1,000 frames of 10 bytes: exactly the limit
        bus.publish_now(_message(seq, size=10))
    assert small.closed_reason is None
    assert small.buffered_bytes == 10_000
    for seq in range(1, 11):  # 10 frames of 1,000 bytes: also the limit
        large.offer(_message(seq, size=1_000))
    assert large.closed_reason is None
    large.offer(_message(11, size=1))  # one byte more
    assert (large.closed_reason or "").startswith("slow consumer: more than 10000 bytes")
    # Reading frees room: what was read no longer counts.
    assert (await small.next()).seq == 1
    assert len(small.drain(9)) == 9
    assert small.buffered_bytes == 9_900
    bus.publish_now(_message(1_001, size=100))
    assert small.closed_reason is None
    # A frame larger than the whole limit still reaches a reader that is keeping up.
    empty = bus.subscribe(max_bytes=10)
    bus.publish_now(_message(1_002, size=50))
    assert (await empty.next()).seq == 1_002


async def test_wait_closed_returns_the_reason() -> None:
    bus = LocalBus()
    subscription = bus.subscribe(max_bytes=5)
    waiter = asyncio.create_task(subscription.wait_closed())
    for seq in range(1, 5):
        bus.publish_now(_message(seq))
    assert (await asyncio.wait_for(waiter, 5)).startswith("slow consumer")


async def test_waiting_reader_wakes_on_publish_and_on_close() -> None:
    bus = LocalBus()
    subscription = bus.subscribe()
    waiter = asyncio.create_task(subscription.next())
    await asyncio.sleep(0)
    await bus.publish(_message(1))
    assert (await waiter).seq == 1
    waiter = asyncio.create_task(subscription.next())
    await asyncio.sleep(0)
    await bus.close()
    with pytest.raises(SubscriptionClosed, match="shutting down"):
        await waiter


async def test_async_iteration_ends_when_closed() -> None:
    bus = LocalBus()
    subscription = bus.subscribe()
    await bus.publish(_message(1))
    subscription.close("bye")
    assert [m.seq async for m in subscription] == []
