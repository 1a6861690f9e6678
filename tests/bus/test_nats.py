"""The JetStream bus against a real NATS server: an ingest node publishes, API nodes fan out.

Every test gets its own stream and subject prefix, deleted afterwards, so runs never see each
other's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import nats
import psycopg
import pytest

from purpleflea.bus import Message, SubscriptionClosed
from purpleflea.bus.base import cascade_frame, liquidation_frame
from purpleflea.bus.local import LocalSubscription
from purpleflea.bus.nats import NatsBus, decode_message
from purpleflea.model import CascadeAlert, Liquidation, VenueLiquidation
from purpleflea.server.pipeline import Pipeline
from purpleflea.store.postgres import PostgresStore
from purpleflea.store.sqlite import SQLiteStore
from tests.events import T0, stored_alert, stored_event
from tests.services import TcpRelay, ensure_nats, ensure_postgres

Connect = Callable[..., Awaitable[NatsBus]]


def _event(seq: int, **overrides: object) -> Liquidation:
    return stored_event(seq, prefix="nats-test", **overrides)


def _alert(seq: int) -> CascadeAlert:
    return stored_alert(seq)


def _message(item: Liquidation | CascadeAlert) -> Message:
    """What the tracker hands its bus (see purpleflea.server.pipeline)."""
    if isinstance(item, Liquidation):
        return Message("liquidations", item.seq, item, liquidation_frame(item))
    return Message("cascades", item.seq, item, cascade_frame(item))


async def _take(subscription: LocalSubscription, count: int) -> list[Message]:
    return [await asyncio.wait_for(subscription.next(), 5.0) for _ in range(count)]


async def _nothing_more(subscription: LocalSubscription) -> bool:
    try:
        await asyncio.wait_for(subscription.next(), 0.3)
    except TimeoutError:
        return True
    return False


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Connects buses to one fresh stream; closes them and deletes the stream afterwards."""
    url = ensure_nats()
    tag = uuid.uuid4().hex[:10]
    stream, prefix = f"PFTEST_{tag}", f"pftest{tag}"
    buses: list[NatsBus] = []

    async def make(**options: object) -> NatsBus:
        bus = await NatsBus.connect(url, stream=stream, prefix=prefix, **options)  # type: ignore[arg-type]
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        await bus.close()
    client = await nats.connect(url)
    try:
        await client.jetstream().delete_stream(stream)
    finally:
        await client.close()


async def test_round_trip_decodes_payloads_and_keeps_wire_bytes(connect: Connect) -> None:
    ingest, api = await connect(), await connect()
    await api.start()
    subscription = api.subscribe()
    sent: list[Liquidation | CascadeAlert] = [_event(1), _event(2), _alert(3), _event(4)]
    for item in sent:
        await ingest.publish(_message(item))
    received = await _take(subscription, 4)
    assert [m.payload for m in received] == sent
    assert [(m.channel, m.seq, m.data) for m in received] == [
        (_message(i).channel, _message(i).seq, _message(i).data) for i in sent
    ]
    assert api.last_seq == 4
    assert ingest.counters["published"] == 4


async def test_subjects_are_per_exchange_and_market(connect: Connect) -> None:
    bus = await connect()
    assert bus.route(_message(_event(1, market="BTC-PERP")))[0].endswith(
        ".liq.binance_usdm.BTC-PERP"
    )
    assert bus.route(_message(_event(2, market="weird.market *")))[0].endswith(
        ".liq.bybit.weird_market__"
    )
    assert bus.route(_message(_alert(9))) == (f"{bus.prefix}.cascade.BTC-PERP", "cascade-1@9")
    with pytest.raises(TypeError, match="got NoneType on channel 'liquidations'"):
        await bus.publish(Message("liquidations", 1, None, b"{}"))


async def test_two_subscribers_on_two_nodes_each_get_every_message_once_in_order(
    connect: Connect,
) -> None:
    ingest, node_a, node_b = await connect(), await connect(), await connect()
    await node_a.start()
    await node_b.start()
    subscriptions = [node_a.subscribe(), node_a.subscribe(), node_b.subscribe()]
    for seq in range(1, 201):
        await ingest.publish(_message(_event(seq)))
    for subscription in subscriptions:
        assert [m.seq for m in await _take(subscription, 200)] == list(range(1, 201))
        assert await _nothing_more(subscription)


async def test_a_slow_subscriber_is_cut_without_affecting_the_other(connect: Connect) -> None:
    ingest, api = await connect(), await connect()
    await api.start()
    slow, fast = api.subscribe(max_bytes=3_000), api.subscribe(max_bytes=1_000_000)
    for seq in range(1, 51):
        await ingest.publish(_message(_event(seq)))
    assert [m.seq for m in await _take(fast, 50)] == list(range(1, 51))
    with pytest.raises(SubscriptionClosed, match="slow consumer"):
        await slow.next()
    assert (slow.closed_reason or "").startswith("slow consumer")
    assert api.subscribers == 1
    await ingest.publish(_message(_event(51)))
    assert [m.seq for m in await _take(fast, 1)] == [51]


async def test_a_restarted_node_resumes_right_after_a_seq(connect: Connect) -> None:
    ingest, first = await connect(), await connect()
    await first.start()
    subscription = first.subscribe()
    for seq in range(1, 11):
        await ingest.publish(_message(_event(seq)))
    assert [m.seq for m in await _take(subscription, 10)] == list(range(1, 11))
    await first.close()
    for seq in range(11, 21):  # published while the node is down
        await ingest.publish(_message(_event(seq)))

    restarted = await connect()
    await restarted.start(after_seq=13)
    resumed = restarted.subscribe()
    assert [m.seq for m in await _take(resumed, 7)] == list(range(14, 21))
    await ingest.publish(_message(_event(21)))
    assert [m.seq for m in await _take(resumed, 1)] == [21]

    newest = await connect()  # no cursor: the live tail from now on
    await newest.start()
    assert newest.last_seq == 21
    live = newest.subscribe()
    await ingest.publish(_message(_event(22)))
    assert [m.seq for m in await _take(live, 1)] == [22]


async def test_a_republished_event_id_is_dropped_by_jetstream(connect: Connect) -> None:
    ingest, api = await connect(), await connect()
    await api.start()
    subscription = api.subscribe()
    message = _message(_event(1))
    await ingest.publish(message)
    await ingest.publish(message)  # a retry after a lost acknowledgement
    await ingest.publish(_message(_event(2)))
    assert ingest.counters["published"] == 2
    assert ingest.counters["duplicates_dropped"] == 1
    # A backlog page published again (its first try timed out): only the new one goes on.
    await ingest.publish_many([_message(_event(seq)) for seq in (1, 2, 3)])
    assert ingest.counters["published"] == 3
    assert ingest.counters["duplicates_dropped"] == 3
    assert [m.seq for m in await _take(subscription, 3)] == [1, 2, 3]
    assert await _nothing_more(subscription)


async def test_a_lost_publish_is_backfilled_from_the_store(
    connect: Connect, tmp_path: Path
) -> None:
    store = SQLiteStore(tmp_path / "history.sqlite")
    try:
        ingest, api = await connect(), await connect(store=store)
        await api.start()
        subscription = api.subscribe()
        events = [_event(seq) for seq in (1, 2, 3, 5, 6)]
        await store.append(events)
        await store.append_cascades([_alert(4)])
        # Persisted 1..6, but only 1 and 6 reached NATS (say the ingest node died in between).
        await ingest.publish(_message(events[0]))
        await ingest.publish(_message(events[-1]))
        received = await _take(subscription, 6)
        assert [m.seq for m in received] == [1, 2, 3, 4, 5, 6]
        assert received[3].payload == _alert(4)
        assert received[3].data == cascade_frame(_alert(4))
        assert api.counters["backfilled"] == 4
    finally:
        await store.close()


async def test_a_malformed_message_is_counted_and_skipped(connect: Connect) -> None:
    ingest, api = await connect(), await connect()
    await api.start()
    subscription = api.subscribe()
    client = await nats.connect(ensure_nats())
    try:
        await client.jetstream().publish(f"{ingest.prefix}.liq.x.y", b'{"type":"nope"}')
    finally:
        await client.close()
    await ingest.publish(_message(_event(1)))
    assert [m.seq for m in await _take(subscription, 1)] == [1]
    assert api.counters["bad_messages"] == 1
    with pytest.raises(ValueError, match="not an integer"):
        decode_message(liquidation_frame(_event(1)), {"Pf-Seq": "one"})


async def test_tracker_on_postgres_and_nats_feeds_an_api_node(connect: Connect) -> None:
    """The scale-out wiring end to end: tracker -> PostgreSQL + JetStream -> API node."""
    dsn = ensure_postgres()
    store = await PostgresStore.connect(dsn)
    try:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
            await connection.execute("TRUNCATE liquidations, rollup_1m, cascades")
        ingest = await connect()
        api = await connect(store=store)
        await api.start()
        subscription = api.subscribe()
        tracker = Pipeline(store, ingest)
        await tracker.start()
        for n in range(30):
            tracker.submit(
                VenueLiquidation(
                    id=f"e2e:{n}",
                    exchange="okx",
                    symbol="BTC-USDT-SWAP",
                    market="BTC-PERP",
                    side="short",
                    price=60_000.0,
                    quantity=1.0,
                    size_usd=60_000.0,
                    ts=T0 + n,
                )
            )
        await tracker.drain()
        await tracker.stop()
        received = await _take(subscription, 30)
        assert [m.seq for m in received] == list(range(1, 31))
        assert await store.since(0, limit=100) == [m.payload for m in received]
    finally:
        await store.close()


async def test_a_nats_outage_is_two_log_lines_not_a_traceback_per_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client library logs every failed reconnect (every 2 s) as an ERROR with a
    traceback: 721 lines in a 24 s outage on an ingest node. The bus says it once when the
    connection is lost and once when it is back, and counts the rest."""
    host, port = ensure_nats().removeprefix("nats://").split(":")
    relay = TcpRelay(host, int(port))
    await relay.open()
    tag = uuid.uuid4().hex[:10]
    stream = f"PFTEST_{tag}"
    bus = await NatsBus.connect(
        f"nats://127.0.0.1:{relay.port}", stream=stream, prefix=f"pftest{tag}"
    )
    caplog.set_level(logging.INFO)
    try:
        await relay.cut()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        # A few reconnect attempts (one every 2 s) fail meanwhile: ~4 s; it waited at most 5.
        while bus.counters["reconnect_errors"] < 2 and loop.time() < deadline:
            await asyncio.sleep(0.1)
        assert not bus.connected
        assert bus.counters["reconnect_errors"] >= 2
        await relay.open()
        while not bus.connected and loop.time() < deadline + 60:
            await asyncio.sleep(0.1)
        assert bus.connected
        await bus.publish(_message(_event(1)))
    finally:
        await bus.close()
        client = await nats.connect(ensure_nats())
        with contextlib.suppress(Exception):
            await client.jetstream().delete_stream(stream)
        await client.close()
        await relay.close()
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.name for r in lines] == ["purpleflea.bus.nats", "purpleflea.bus.nats"], [
        r.getMessage() for r in lines
    ]
    assert all(r.exc_info is None for r in lines)
    assert "connection lost" in lines[0].getMessage()
    assert "reconnected after" in lines[1].getMessage()
    assert bus.counters["connection_lost"] == 1


async def test_a_node_started_before_nats_says_once_that_it_waits_and_when_it_connected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """docs/scaleout.md: a node started while NATS is down waits for it. It said so with the
    client library's ERROR and traceback every 2 s; now one line, and one when connected."""
    host, port = ensure_nats().removeprefix("nats://").split(":")
    relay = TcpRelay(host, int(port))
    relay.reserve()  # nothing listens there yet
    tag = uuid.uuid4().hex[:10]
    caplog.set_level(logging.INFO)
    starting = asyncio.create_task(
        NatsBus.connect(f"nats://127.0.0.1:{relay.port}", stream=f"PFTEST_{tag}", prefix=tag)
    )
    await asyncio.sleep(2.5)  # the first attempt and at least one retry fail
    await relay.open()
    bus = await asyncio.wait_for(starting, 10)
    try:
        assert bus.connected
    finally:
        await bus.close()
        client = await nats.connect(ensure_nats())
        with contextlib.suppress(Exception):
            await client.jetstream().delete_stream(f"PFTEST_{tag}")
        await client.close()
        await relay.close()
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 2, lines
    assert "NATS not reachable yet" in lines[0]
    assert "waits for it" in lines[0]
    assert "connected after" in lines[1]
    assert bus.counters["connection_lost"] == 0  # a start, not an outage


async def test_while_disconnected_a_publish_fails_at_once() -> None:
    """A publish waited out three 5 s acknowledgement timeouts while NATS was away: the
    ingest node stored one batch every 15 s and buffered the rest (1,100 events held in 15 s
    of a 24 s outage)."""
    host, port = ensure_nats().removeprefix("nats://").split(":")
    relay = TcpRelay(host, int(port))
    await relay.open()
    tag = uuid.uuid4().hex[:10]
    bus = await NatsBus.connect(
        f"nats://127.0.0.1:{relay.port}", stream=f"PFTEST_{tag}", prefix=f"pftest{tag}"
    )
    try:
        await relay.cut()
        for _ in range(100):
            if not bus.connected:
                break
            await asyncio.sleep(0.02)
        started = asyncio.get_running_loop().time()
        with pytest.raises(ConnectionError, match="not connected"):
            await bus.publish(_message(_event(1)))
        assert asyncio.get_running_loop().time() - started < 0.5
        assert bus.counters["publish_failures"] == 1
        with pytest.raises(ConnectionError, match="seqs 2-3 not published"):
            await bus.publish_many([_message(_event(2)), _message(_event(3))])
        assert bus.counters["publish_failures"] == 2
    finally:
        await bus.close()
        client = await nats.connect(ensure_nats())
        with contextlib.suppress(Exception):
            await client.jetstream().delete_stream(f"PFTEST_{tag}")
        await client.close()
        await relay.close()


class _FailingOverStore(SQLiteStore):
    """A store whose reads fail ``failures`` times (a PostgreSQL failover), then work."""

    failures = 2

    async def since(self, seq: int, limit: int = 1000) -> list[Liquidation]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("PostgreSQL store 'postgresql://db/pf': connection lost")
        return await super().since(seq, limit)


async def test_a_backfill_that_meets_a_store_failing_over_is_tried_again(
    connect: Connect, tmp_path: Path
) -> None:
    """A backfill read that failed once gave up at once: this node's clients never got the
    missing seqs (79 events for the clients of an API node after a PostgreSQL blip)."""
    store = _FailingOverStore(tmp_path / "history.sqlite")
    try:
        ingest, api = await connect(), await connect(store=store)
        await api.start()
        subscription = api.subscribe()
        events = [_event(seq) for seq in (1, 2, 3)]
        await store.append(events)
        await ingest.publish(_message(events[0]))
        await ingest.publish(_message(events[-1]))  # 2 was stored, never published
        received = await _take(subscription, 3)
        assert [m.seq for m in received] == [1, 2, 3]
        assert api.counters["backfill_retries"] == 2
        assert api.counters["backfill_errors"] == 0
    finally:
        await store.close()


def _venue(n: int) -> VenueLiquidation:
    return VenueLiquidation(
        id=f"outage:{n}",
        exchange="okx",
        symbol="BTC-USDT-SWAP",
        market="BTC-PERP",
        side="long",
        price=60_000.0 - n,
        quantity=1.0,
        size_usd=60_000.0 - n,
        ts=T0 + n,
    )


async def _wait_until(condition: Callable[[], bool], timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("api_cut_too", [False, True], ids=["ingest-cut", "all-cut"])
async def test_events_stored_during_a_publish_outage_reach_every_reader_once_it_is_back(
    tmp_path: Path, api_cut_too: bool
) -> None:
    """The ingest node's connection to NATS is cut (a NATS restart as the node sees it) while
    events arrive: they are stored, not published. Once NATS is back they reached an API
    node's stream clients and the ingest node's own reader of the bus (its webhook
    dispatcher) only when the next event came, which in a quiet market is minutes later, or
    never if the node stops first. Now the ingest node publishes them from the store, in seq
    order, as soon as the bus is back; no reader gets one twice. ``all-cut``: the API node's
    connection is cut too (NATS restarted, as every node sees it)."""
    url = ensure_nats()
    host, port = url.removeprefix("nats://").split(":")
    relay = TcpRelay(host, int(port))
    await relay.open()
    tag = uuid.uuid4().hex[:10]
    stream, prefix = f"PFTEST_{tag}", f"pftest{tag}"
    store = SQLiteStore(tmp_path / "history.sqlite")
    ingest = await NatsBus.connect(
        f"nats://127.0.0.1:{relay.port}", stream=stream, prefix=prefix, store=store
    )
    api_url = f"nats://127.0.0.1:{relay.port}" if api_cut_too else url
    api = await NatsBus.connect(api_url, stream=stream, prefix=prefix, store=store)
    tracker = Pipeline(store, ingest)
    try:
        await api.start()
        clients = api.subscribe()
        await tracker.start()
        await ingest.start(after_seq=tracker.last_seq)  # as the ingest node does
        webhooks = ingest.subscribe()
        for n in range(5):
            tracker.submit(_venue(n))
        await tracker.drain()
        for reader in (clients, webhooks):
            assert [m.seq for m in await _take(reader, 5)] == [1, 2, 3, 4, 5]

        await relay.cut()
        await _wait_until(lambda: not ingest.connected, 10)
        for n in range(5, 12):
            tracker.submit(_venue(n))
        await tracker.drain()
        assert await store.last_seq() == 12
        assert tracker.counters["stored_unpublished"] == 7

        await relay.open()
        await _wait_until(lambda: ingest.connected, 30)
        # No event after the outage: the stored ones must come anyway.
        for name, reader in (("API node's clients", clients), ("webhooks", webhooks)):
            try:
                got = [m.seq for m in await _take(reader, 7)]
            except TimeoutError:
                raise AssertionError(f"{name}: seqs 6-12 were stored, never delivered") from None
            assert got == list(range(6, 13)), name
        assert tracker.counters["republished"] == 7
        assert tracker.last_seq == 12

        tracker.submit(_venue(12))
        await tracker.drain()
        for reader in (clients, webhooks):
            assert [m.seq for m in await _take(reader, 1)] == [13]
            assert await _nothing_more(reader)
        assert api.counters["backfilled"] == 0  # nothing left for the API node to fill
        assert api.counters["duplicates_skipped"] == 0
    finally:
        await tracker.stop()
        await ingest.close()
        await api.close()
        await store.close()
        client = await nats.connect(url)
        with contextlib.suppress(Exception):
            await client.jetstream().delete_stream(stream)
        await client.close()
        await relay.close()


async def test_what_a_stopped_ingest_node_left_unpublished_is_published_by_the_next_start(
    tmp_path: Path,
) -> None:
    """The ingest node stopped during the outage, its last events stored and not on the bus.
    The next start read the bus's newest seq and published the rest from the store, in seq
    order; before, they reached API nodes only with the next event."""
    url = ensure_nats()
    host, port = url.removeprefix("nats://").split(":")
    relay = TcpRelay(host, int(port))
    await relay.open()
    tag = uuid.uuid4().hex[:10]
    stream, prefix = f"PFTEST_{tag}", f"pftest{tag}"
    store = SQLiteStore(tmp_path / "history.sqlite")
    first = await NatsBus.connect(f"nats://127.0.0.1:{relay.port}", stream=stream, prefix=prefix)
    api = await NatsBus.connect(url, stream=stream, prefix=prefix, store=store)
    second = await NatsBus.connect(url, stream=stream, prefix=prefix)
    tracker = Pipeline(store, first)
    try:
        await api.start()
        clients = api.subscribe()
        await tracker.start()
        for n in range(3):
            tracker.submit(_venue(n))
        await tracker.drain()
        assert [m.seq for m in await _take(clients, 3)] == [1, 2, 3]
        await relay.cut()
        await _wait_until(lambda: not first.connected, 10)
        for n in range(3, 7):
            tracker.submit(_venue(n))
        await tracker.drain()
        await tracker.stop()
        assert await store.last_seq() == 7

        tracker = Pipeline(store, second)  # the node started again, NATS back
        await tracker.start()
        assert tracker.last_seq == 3  # a new client's live start: before what is missing
        try:
            got = [m.seq for m in await _take(clients, 4)]
        except TimeoutError:
            raise AssertionError("seqs 4-7 stored, never delivered") from None
        assert got == [4, 5, 6, 7]
        assert tracker.counters["republished"] == 4
        assert tracker.last_seq == 7
        assert await _nothing_more(clients)
    finally:
        await tracker.stop()
        for bus in (first, second, api):
            await bus.close()
        await store.close()
        client = await nats.connect(url)
        with contextlib.suppress(Exception):
            await client.jetstream().delete_stream(stream)
        await client.close()
        await relay.close()
