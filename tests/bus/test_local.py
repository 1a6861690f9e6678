"""In-process fan-out: everyone gets everything in order; a slow reader is cut off alone."""

from __future__ import annotations

import asyncio

import pytest

from purpleflea.bus import Message, SubscriptionClosed
from purpleflea.bus.local import LocalBus


def _message(seq: int) -> Message:
    return Message(channel="liquidations", seq=seq, payload=None, data=b"{}")


async def test_every_subscriber_gets_every_message_in_order() -> None:
    bus = LocalBus()
    first, second = bus.subscribe(), bus.subscribe()
    for seq in range(1, 101):
        await bus.publish(_message(seq))
    for subscription in (first, second):
        assert [(await subscription.next()).seq for _ in range(100)] == list(range(1, 101))


async def test_a_full_buffer_closes_only_that_subscriber_with_a_reason() -> None:
    bus = LocalBus()
    slow, fast = bus.subscribe(buffer=10), bus.subscribe(buffer=1000)
    for seq in range(1, 21):
        await bus.publish(_message(seq))
    with pytest.raises(SubscriptionClosed, match="slow consumer"):
        await slow.next()
    assert [(await fast.next()).seq for _ in range(20)] == list(range(1, 21))
    assert bus.subscribers == 1


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
