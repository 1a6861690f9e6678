"""The node's stream fan-out: one bus subscription, chunks per published batch, frames built
once per distinct filter and shared."""

from __future__ import annotations

import asyncio
import json

import pytest

from purpleflea.bus.base import Message, SubscriptionClosed, liquidation_frame
from purpleflea.bus.local import LocalBus
from purpleflea.model import to_liquidation
from purpleflea.server.fanout import Fanout
from purpleflea.server.filters import StreamFilter
from tests.server.conftest import venue_event


def _messages(*sizes: float, first_seq: int = 1) -> list[Message]:
    messages = []
    for seq, size in enumerate(sizes, start=first_seq):
        venue = venue_event(size_usd=size)
        event = to_liquidation(venue, seq=seq, received_at=0, coverage="complete")
        messages.append(Message("liquidations", seq, event, liquidation_frame(event), 1.0))
    return messages


async def test_a_batch_is_one_chunk_and_its_frames_are_built_once_per_filter() -> None:
    bus = LocalBus()
    fanout = Fanout(bus)
    fanout.start()
    clients = [fanout.subscribe(1 << 20) for _ in range(3)]
    assert bus.subscribers == 1  # the fan-out's, whatever the number of clients
    for message in _messages(50_000, 200_000, 300_000):
        bus.publish_now(message)
    chunks = [await asyncio.wait_for(client.next(), 2) for client in clients]
    assert chunks[0] is chunks[1] is chunks[2]
    chunk = chunks[0]
    assert (chunk.first_seq, chunk.last_seq) == (1, 3)

    everything, big = StreamFilter(), StreamFilter(min_usd=100_000)
    shared = chunk.items(everything, 500, 0)
    assert chunk.items(everything, 500, 0) is shared  # the second client reuses it
    [frame] = shared
    assert (frame.kind, frame.seq, frame.events) == ("batch", 3, 3)
    assert [i["data"]["seq"] for i in json.loads(frame.text)["items"]] == [1, 2, 3]
    [filtered] = chunk.items(big, 500, 0)
    assert [i["data"]["seq"] for i in json.loads(filtered.data)["items"]] == [2, 3]
    # Unbatched clients get one frame per event; a client that already has seq 2 (its
    # replay reached into this batch) gets only the rest, built for it alone.
    assert [item.seq for item in chunk.items(everything, 1, 0)] == [1, 2, 3]
    [rest] = chunk.items(everything, 500, 2)
    assert (rest.kind, rest.seq) == ("liquidation", 3)
    assert chunk.items(everything, 500, 3) == []
    await fanout.stop()


async def test_a_client_over_its_byte_bound_is_cut_alone() -> None:
    bus = LocalBus()
    fanout = Fanout(bus)
    fanout.start()
    small = fanout.subscribe(1)  # an empty queue still takes one chunk, then it is full
    roomy = fanout.subscribe(1 << 20)
    for seq in (1, 2):
        for message in _messages(1_000.0, first_seq=seq):
            bus.publish_now(message)
        await asyncio.sleep(0)  # the fan-out task takes each publish as its own chunk
        await asyncio.sleep(0)
    assert (await asyncio.wait_for(small.wait_closed(), 2)).startswith("slow consumer")
    assert [(await roomy.next()).last_seq, (await roomy.next()).last_seq] == [1, 2]
    assert fanout.clients == 1
    await bus.close()  # the bus going away ends every client as a shutdown does
    with pytest.raises(SubscriptionClosed, match="server shutting down"):
        await asyncio.wait_for(roomy.next(), 2)
