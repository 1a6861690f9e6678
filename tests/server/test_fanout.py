"""The node's stream fan-out: one bus subscription, chunks per published batch, frames built
once per distinct filter and shared."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from itertools import pairwise

import pytest

from purpleflea.bus.base import Message, SubscriptionClosed, cascade_frame, liquidation_frame
from purpleflea.bus.local import LocalBus
from purpleflea.model import to_liquidation
from purpleflea.server.config import ServerConfig
from purpleflea.server.fanout import Fanout
from purpleflea.server.feed import Item, client_feed
from purpleflea.server.filters import StreamFilter
from purpleflea.store.sqlite import SQLiteStore
from tests.events import stored_alert, stored_event
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
    fanout = Fanout(bus, heartbeat_s=60)
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
    fanout = Fanout(bus, heartbeat_s=60)
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


async def test_a_client_on_hold_drops_what_passes_its_bound_and_is_not_cut() -> None:
    # Its feed waits for a page of its replay (the store, its account's pace): what is
    # published meanwhile past the bound is dropped (the feed reads it from storage), not the
    # client. Once the feed writes (the client's time) the bound cuts again.
    bus = LocalBus()
    fanout = Fanout(bus, heartbeat_s=60)
    fanout.start()
    client = fanout.subscribe(1)
    client.on_hold = True
    for seq in (1, 2, 3):
        for message in _messages(1_000.0, first_seq=seq):
            bus.publish_now(message)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    assert client.closed_reason is None
    assert client.dropped_upto == 2  # (an empty queue takes any chunk: it holds the third)
    assert [chunk.last_seq for chunk in client.drain()] == [3]
    client.on_hold = False
    for seq in (4, 5):
        for message in _messages(1_000.0, first_seq=seq):
            bus.publish_now(message)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    assert (await asyncio.wait_for(client.wait_closed(), 2)).startswith("slow consumer")
    await bus.close()


async def _collect(feed: AsyncIterator[Item], into: list[tuple[float, Item]]) -> None:
    async for item in feed:
        into.append((time.monotonic(), item))


async def test_a_quiet_client_hears_heartbeats_with_its_cursor_and_a_busy_one_none() -> None:
    bus, store = LocalBus(), SQLiteStore(":memory:")
    fanout = Fanout(bus, heartbeat_s=0.5)
    fanout.start()
    busy: list[tuple[float, Item]] = []
    quiet: list[tuple[float, Item]] = []  # its filter takes none of the events
    tasks = [
        asyncio.create_task(_collect(client_feed(store, queue, wanted, start_seq=0), into))
        for queue, wanted, into in (
            (fanout.subscribe(1 << 20), StreamFilter(), busy),
            (fanout.subscribe(1 << 20), StreamFilter(min_usd=10**9), quiet),
        )
    ]
    for seq in range(1, 61):  # an event every 25 ms for 1.5 s: three heartbeat intervals
        bus.publish_now(_messages(1_000.0, first_seq=seq)[0])
        await asyncio.sleep(0.025)
    deadline = time.monotonic() + 3
    while (quiet[-1][1].kind, quiet[-1][1].seq) != ("heartbeat", 60):
        assert time.monotonic() < deadline, f"no heartbeat with cursor 60: {quiet[-1]}"
        await asyncio.sleep(0.02)

    events = [i for i, (_, item) in enumerate(busy) if item.kind == "liquidation"]
    assert [busy[i][1].seq for i in events] == list(range(1, 61))
    between = [item.kind for _, item in busy[events[0] : events[-1]]]
    assert "heartbeat" not in between  # every interval carried its events: nothing to add
    beats = [(at, item.seq) for at, item in quiet]
    assert all(item.kind == "heartbeat" for _, item in quiet)
    assert len(beats) >= 4  # the first, two or more while events were filtered out, the last
    cursors = [seq for _, seq in beats]
    assert cursors == sorted(cursors)
    assert cursors[0] == 0
    assert 0 < cursors[1] < 60
    gaps = [later - earlier for (earlier, _), (later, _) in pairwise(beats)]
    assert min(gaps) >= 0.5 * 0.95, gaps  # at most one heartbeat an interval
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await fanout.stop()
    await store.close()


def _live_timers() -> int:
    loop = asyncio.get_running_loop()
    return sum(not handle.cancelled() for handle in loop._scheduled)  # type: ignore[attr-defined]


async def test_one_heartbeat_timer_for_all_clients_and_none_left_when_they_go() -> None:
    bus, store = LocalBus(), SQLiteStore(":memory:")
    fanout = Fanout(bus, heartbeat_s=0.1)
    fanout.start()
    await asyncio.sleep(0)
    tasks_before, timers_before = len(asyncio.all_tasks()), _live_timers()
    for _ in range(3):  # clients come and go while events and heartbeats flow
        queues = [fanout.subscribe(1 << 20) for _ in range(50)]
        got: list[tuple[float, Item]] = []
        tasks = [
            asyncio.create_task(_collect(client_feed(store, q, StreamFilter(), start_seq=0), got))
            for q in queues
        ]
        await asyncio.sleep(0.25)  # quiet: heartbeats
        bus.publish_now(_messages(1_000.0)[0])
        await asyncio.sleep(0.05)
        # Every client waits for its next chunk now, and none holds a timer of its own.
        assert _live_timers() <= timers_before
        assert sum(item.kind == "heartbeat" for _, item in got) >= 2 * 50
        assert sum(item.kind == "liquidation" for _, item in got) == 50
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for queue in queues:
            queue.close("client gone")
    assert fanout.clients == 0
    await asyncio.sleep(0.15)  # a tick with no one to beat
    assert len(asyncio.all_tasks()) == tasks_before
    assert _live_timers() <= timers_before
    await fanout.stop()
    assert len(asyncio.all_tasks()) == tasks_before - 2  # the fan-out's reader and its timer
    await store.close()


@pytest.mark.parametrize("seconds", [0.0, -1.0])
def test_a_heartbeat_interval_must_be_above_zero(seconds: float) -> None:
    # Zero made every idle stream send heartbeats back to back; the CLI's --heartbeat says so.
    with pytest.raises(ValueError, match=f"heartbeat_s must be positive, got {seconds}"):
        ServerConfig(heartbeat_s=seconds)


async def test_beats_queued_behind_a_slow_write_make_one_heartbeat() -> None:
    bus, store = LocalBus(), SQLiteStore(":memory:")
    fanout = Fanout(bus, heartbeat_s=3600)  # its own timer stays out: the ticks are driven here
    fanout.start()
    queue = fanout.subscribe(1 << 20)
    feed = client_feed(store, queue, StreamFilter(), start_seq=0)
    assert (await feed.__anext__()).kind == "heartbeat"
    # The client's write blocks for three intervals: the timer looks at it each time.
    now = time.monotonic()
    for later in (1.0, 2.0, 3.0):
        queue.tick(now + later, 1.0)
    bus.publish_now(_messages(1_000.0)[0])
    got = [await asyncio.wait_for(feed.__anext__(), 2) for _ in range(2)]
    assert [(item.kind, item.seq) for item in got] == [("heartbeat", 0), ("liquidation", 1)]
    await feed.aclose()
    await fanout.stop()
    await store.close()


async def test_no_client_goes_a_heartbeat_interval_without_a_frame() -> None:
    """The SDK and the dashboard treat 35 s without a frame as a dead link. The timer sees a
    write only at its next tick; counting the interval from that tick let a client that had
    just received an event wait up to 1.25 intervals for its heartbeat (37.5 s at
    ``--heartbeat 30``): the silence now ends within the interval."""
    interval = 0.4
    bus, store = LocalBus(), SQLiteStore(":memory:")
    fanout = Fanout(bus, heartbeat_s=interval)
    fanout.start()
    got: list[tuple[float, Item]] = []
    task = asyncio.create_task(
        _collect(client_feed(store, fanout.subscribe(1 << 20), StreamFilter(), start_seq=0), got)
    )
    silences = []
    for seq in range(1, 6):
        await asyncio.sleep(0.013 * seq)  # at another point between the timer's ticks each time
        bus.publish_now(_messages(1_000.0, first_seq=seq)[0])
        deadline = time.monotonic() + 3 * interval
        while not (got and got[-1][1].kind == "heartbeat" and got[-1][1].seq == seq):
            assert time.monotonic() < deadline, got[-3:]
            await asyncio.sleep(0.005)
        [(delivered, _)] = [
            (at, item) for at, item in got if item.kind != "heartbeat" and item.seq == seq
        ]
        silences.append(got[-1][0] - delivered)
    assert max(silences) <= interval + 0.03, silences
    assert min(silences) >= interval * 0.9, silences  # not a heartbeat right behind the event
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await fanout.stop()
    await store.close()


async def test_a_resume_between_a_batchs_events_and_its_alerts_loses_no_alert() -> None:
    """A batch's events are committed before its alerts, whose seqs lie between theirs. A
    resume reading the store in that moment saw events 1 and 3 and took 3 as its cursor, so
    the alert at 2, published with the batch a moment later, came live at or below the
    cursor and was dropped as already sent. The replay goes only to the live position taken
    at subscribing (everything at or below it is stored); the rest comes live, complete."""
    bus, store = LocalBus(), SQLiteStore(":memory:")
    fanout = Fanout(bus, heartbeat_s=3600)
    fanout.start()
    events = [stored_event(1), stored_event(3)]
    alert = stored_alert(2)
    await store.append(events)  # the batch's events are on disk, its alert not yet
    queue = fanout.subscribe(1 << 20)
    wanted = StreamFilter(channels=frozenset({"liquidations", "cascades"}), since_seq=0)
    feed = client_feed(store, queue, wanted, start_seq=0)  # nothing published yet
    first = await asyncio.wait_for(feed.__anext__(), 2)
    assert (first.kind, first.seq) == ("heartbeat", 0)
    await store.append_cascades([alert])
    for message in sorted(
        [
            *(Message("liquidations", e.seq, e, liquidation_frame(e), 1.0) for e in events),
            Message("cascades", alert.seq, alert, cascade_frame(alert), 1.0),
        ],
        key=lambda message: message.seq,
    ):
        bus.publish_now(message)
    got = [await asyncio.wait_for(feed.__anext__(), 2) for _ in range(3)]
    assert [(item.kind, item.seq) for item in got] == [
        ("liquidation", 1),
        ("cascade", 2),
        ("liquidation", 3),
    ]
    await feed.aclose()
    await fanout.stop()
    await store.close()


async def test_a_resume_from_past_the_live_position_reads_nothing_and_keeps_its_cursor() -> None:
    """A client resuming from a seq this node has not published yet (it read it from another
    node) gets nothing replayed, and its cursor does not go back to the node's position:
    what it already has is not sent again when it comes live."""
    bus, store = LocalBus(), SQLiteStore(":memory:")
    fanout = Fanout(bus, heartbeat_s=3600)
    fanout.start()
    events = [stored_event(seq) for seq in (1, 2, 3)]
    await store.append(events)
    feed = client_feed(store, fanout.subscribe(1 << 20), StreamFilter(since_seq=2), start_seq=1)
    first = await asyncio.wait_for(feed.__anext__(), 2)
    assert (first.kind, first.seq) == ("heartbeat", 2)
    for event in events[1:]:
        bus.publish_now(Message("liquidations", event.seq, event, liquidation_frame(event), 1.0))
    got = await asyncio.wait_for(feed.__anext__(), 2)
    assert (got.kind, got.seq) == ("liquidation", 3)
    await feed.aclose()
    await fanout.stop()
    await store.close()
