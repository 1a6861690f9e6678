"""The tracker: sequencing, persist-before-publish, dedupe, and a warm restart of the engine."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import msgspec
import pytest

from purpleflea.backtest import start
from purpleflea.backtest.strategy import Playbook
from purpleflea.bus.base import Message, Subscription
from purpleflea.bus.local import LocalBus
from purpleflea.engine import CascadeEngine
from purpleflea.model import CascadeAlert, Liquidation, VenueLiquidation
from purpleflea.server import pipeline as pipeline_module
from purpleflea.server import publish_backlog
from purpleflea.server.app import default_scorer
from purpleflea.server.fanout import Fanout
from purpleflea.server.feed import client_feed
from purpleflea.server.filters import StreamFilter
from purpleflea.server.pipeline import Pipeline
from purpleflea.store.sqlite import SQLiteStore
from tests.engine.test_cascade import T0 as ENGINE_T0
from tests.engine.test_cascade import _mixed_kinds, calm, run
from tests.server.conftest import T0, venue_event


def _burst(n: int) -> list[VenueLiquidation]:
    # A falling market liquidating longs faster and faster: the engine's scores move.
    return [
        venue_event(size_usd=20_000.0 * (1 + i // 20), price=60_000.0 - 5 * i, ts=T0 + 400 * i)
        for i in range(n)
    ]


class _CheckingBus(LocalBus):
    """Records, at the moment of each publish, whether the item is already in the store."""

    def __init__(self, store: SQLiteStore) -> None:
        super().__init__()
        self.store = store
        self.stored_at_publish: list[bool] = []

    async def publish(self, message: Message) -> None:
        if message.channel == "liquidations":
            found: list[object] = list(await self.store.since(message.seq - 1, 1))
        else:
            found = list(await self.store.cascades_since(message.seq - 1, 1))
        self.stored_at_publish.append(bool(found) and getattr(found[0], "seq", 0) == message.seq)
        await super().publish(message)


async def test_events_are_stored_before_they_are_published_and_dedupe(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    bus = _CheckingBus(store)
    subscription = bus.subscribe()
    tracker = Pipeline(store, bus, scorer=CascadeEngine())
    await tracker.start()
    events = _burst(50)
    for event in events + events[:10]:  # the first ten arrive twice
        tracker.submit(event)
    await tracker.drain()
    published = subscription.drain()
    liquidations = [m for m in published if m.channel == "liquidations"]
    assert len(liquidations) == 50
    assert len(bus.stored_at_publish) == len(published)
    assert all(bus.stored_at_publish)
    seqs = [m.seq for m in published]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert tracker.counters["duplicates"] == 10
    await tracker.stop()
    await store.close()


async def test_a_restarted_tracker_scores_like_one_that_never_stopped(tmp_path: Path) -> None:
    events = _burst(200)
    follow_up = venue_event(size_usd=60_000.0, price=58_900.0, ts=T0 + 400 * 200)

    async def run(path: Path, stop_after: int | None) -> int:
        store = SQLiteStore(path)
        bus = LocalBus()
        tracker = Pipeline(store, bus, scorer=CascadeEngine())
        await tracker.start()
        subscription = bus.subscribe()
        for event in events[:stop_after]:
            tracker.submit(event)
        await tracker.drain()
        if stop_after is not None:  # restart on the same store
            await tracker.stop()
            tracker = Pipeline(store, bus, scorer=CascadeEngine())
            await tracker.start()
            subscription.drain()
            for event in events[stop_after:]:
                tracker.submit(event)
            await tracker.drain()
        tracker.submit(msgspec.structs.replace(follow_up, id=f"follow:{path.name}"))
        await tracker.drain()
        last = [m.payload for m in subscription.drain() if m.channel == "liquidations"][-1]
        await tracker.stop()
        await store.close()
        assert isinstance(last, Liquidation)
        return last.cascade_score

    continuous = await run(tmp_path / "a.sqlite", None)
    restarted = await run(tmp_path / "b.sqlite", 150)
    assert continuous == restarted
    assert continuous > 0


class _SlowStore(SQLiteStore):
    """Holds each append until released: a batch sits between sequencing and publishing."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.release = asyncio.Event()
        self.holding = asyncio.Event()
        self.held: list[Liquidation] = []

    async def append(self, events: Sequence[Liquidation]) -> list[Liquidation]:
        self.held = list(events)
        self.holding.set()
        await self.release.wait()
        return await super().append(events)


async def test_a_client_joining_mid_batch_still_gets_the_batch(tmp_path: Path) -> None:
    store = _SlowStore(tmp_path / "db.sqlite")
    bus = LocalBus()
    tracker = Pipeline(store, bus)
    await tracker.start()
    for event in _burst(5):
        tracker.submit(event)
    # Sequenced, and now held in the store's write: seqs assigned, none published yet.
    await asyncio.wait_for(store.holding.wait(), 2)
    assert [event.seq for event in store.held] == [1, 2, 3, 4, 5]
    assert tracker.last_seq == 0
    # A stream client subscribes now and starts from the tracker's live position.
    subscription = Fanout(bus, heartbeat_s=60).subscribe(1 << 20)
    start = tracker.last_seq
    feed = client_feed(store, subscription, StreamFilter(), start_seq=start)
    assert (await feed.__anext__()).kind == "heartbeat"
    store.release.set()
    got = [await asyncio.wait_for(feed.__anext__(), 2) for _ in range(5)]
    assert [item.kind for item in got] == ["liquidation"] * 5
    assert [item.seq for item in got] == [1, 2, 3, 4, 5]
    await tracker.stop()
    await store.close()


async def test_a_restart_warms_the_engine_with_the_stored_open_interest(tmp_path: Path) -> None:
    """The first live event after a restart is sized against the stored open interest (as the
    engine before the restart had it), not scored without it until the next snapshots."""
    from purpleflea.store.base import OpenInterest

    events = _burst(120)
    follow_up = venue_event(size_usd=60_000.0, price=59_300.0, ts=T0 + 400 * 120)
    # A thin market: the burst is a large share of it, so the size term lifts the score.
    rows = [OpenInterest(ts=T0 - 60_000, market=events[0].market, open_interest_usd=2e6)]

    async def first_live_score(with_rows: bool) -> int:
        path = tmp_path / f"{with_rows}.sqlite"
        store = SQLiteStore(path)
        tracker = Pipeline(store, LocalBus(), scorer=CascadeEngine())
        await tracker.start()
        for event in events:
            tracker.submit(event)
        await tracker.drain()
        await tracker.stop()
        if with_rows:
            await store.append_open_interest(rows)
        bus = LocalBus()
        subscription = bus.subscribe()
        tracker = Pipeline(store, bus, scorer=CascadeEngine())
        await tracker.start()
        tracker.submit(follow_up)
        await tracker.drain()
        last = [m.payload for m in subscription.drain() if m.channel == "liquidations"][-1]
        await tracker.stop()
        await store.close()
        assert isinstance(last, Liquidation)
        return last.cascade_score

    # The reference: one engine told the open interest, then every event in time order.
    engine = CascadeEngine()
    engine.set_open_interest(rows[0].market, rows[0].open_interest_usd)
    for event in [*events, follow_up]:
        assert event.size_usd is not None
        assert event.ts is not None
        expected = engine.observe(
            event.market, event.side, event.size_usd, event.price, event.ts, event.exchange
        )
    assert await first_live_score(True) == expected
    assert await first_live_score(False) != expected


class _FlakyStore(SQLiteStore):
    """Fails the first ``event_failures`` event appends and ``alert_failures`` alert appends
    with SQLite's full-disk error, then works."""

    def __init__(self, path: Path, *, event_failures: int = 0, alert_failures: int = 0) -> None:
        super().__init__(path)
        self.event_failures = event_failures
        self.alert_failures = alert_failures

    async def append(self, events: Sequence[Liquidation]) -> list[Liquidation]:
        if self.event_failures > 0:
            self.event_failures -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return await super().append(events)

    async def append_cascades(self, alerts: Sequence[CascadeAlert]) -> None:
        if self.alert_failures > 0:
            self.alert_failures -= 1
            raise sqlite3.OperationalError("database or disk is full")
        await super().append_cascades(alerts)


async def test_a_failed_write_is_retried_under_the_same_seqs_and_alerts_wait_for_it(
    tmp_path: Path,
) -> None:
    store = _FlakyStore(tmp_path / "db.sqlite", event_failures=3, alert_failures=2)
    bus = _CheckingBus(store)
    subscription = bus.subscribe()
    tracker = Pipeline(store, bus, scorer=CascadeEngine(), retry_initial_s=0.001, batch_limit=50)
    await tracker.start()
    # Steeper than _burst: the engine starts a cascade (and updates it) within 400 events.
    burst = [
        venue_event(size_usd=50_000.0 * (1 + i // 10), price=60_000.0 - 20 * i, ts=T0 + 200 * i)
        for i in range(400)
    ]
    for event in burst:
        tracker.submit(event)
    await asyncio.wait_for(tracker.drain(), 30)
    published = subscription.drain()
    assert any(m.channel == "cascades" for m in published), "the burst should raise alerts"
    assert all(bus.stored_at_publish)  # nothing went out before it was stored
    seqs = [m.seq for m in published]
    assert seqs == list(range(1, len(seqs) + 1))  # gapless: no seq burned by the failures
    assert sum(m.channel == "liquidations" for m in published) == 400
    assert tracker.counters["store_write_errors"] == 5
    assert not tracker.writes.failing  # recovered
    await tracker.stop()
    await store.close()


async def test_the_ingest_buffer_is_bounded_and_counts_what_it_drops(tmp_path: Path) -> None:
    store = _FlakyStore(tmp_path / "db.sqlite", event_failures=1_000_000)
    tracker = Pipeline(store, LocalBus(), buffer_limit=50, retry_initial_s=0.001)
    await tracker.start()
    events = _burst(300)
    tracker.submit(events[0])
    while not tracker.writes.failing:  # the flush loop holds that batch, retrying
        await asyncio.sleep(0.01)
    for event in events[1:]:
        tracker.submit(event)
    held = tracker.buffered
    assert held == 51  # the one in the failing batch, and the buffer's 50
    assert tracker.counters["dropped_buffer_full"] == 300 - held
    store.event_failures = 0  # the space comes back
    await asyncio.wait_for(tracker.drain(), 30)
    assert not tracker.writes.failing
    assert tracker.counters["published"] == held
    assert await store.last_seq() == held
    await tracker.stop()
    await store.close()


async def test_stop_gives_up_on_a_store_that_stays_broken(tmp_path: Path) -> None:
    store = _FlakyStore(tmp_path / "db.sqlite", event_failures=1_000_000)
    tracker = Pipeline(store, LocalBus(), retry_initial_s=0.001)
    await tracker.start()
    tracker.submit(venue_event())
    while not tracker.writes.failing:  # the flush loop holds it, retrying (a sleep stood in)
        await asyncio.sleep(0.01)
    await asyncio.wait_for(tracker.stop(grace_s=0.2), 5)
    assert tracker.counters["dropped_at_shutdown"] == 1
    await store.close()


async def test_an_outage_logs_one_line_when_it_starts_and_one_when_it_ends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = _FlakyStore(tmp_path / "db.sqlite", event_failures=500)
    tracker = Pipeline(
        store, LocalBus(), buffer_limit=20, retry_initial_s=0.0001, retry_max_s=0.0001
    )
    await tracker.start()
    caplog.set_level(logging.DEBUG)
    for event in _burst(100):  # overflows the buffer too
        tracker.submit(event)
    await asyncio.wait_for(tracker.drain(), 30)
    assert tracker.counters["store_write_errors"] == 500
    lines = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(lines) == 3, caplog.text  # 500 failed writes; 3 state changes
    messages = sorted(r.message for r in lines)
    assert messages[0].startswith("ingest buffer full (20 events waiting")
    assert messages[1].startswith(
        "store: events writes failing: OperationalError: database or disk is full"
    )
    assert messages[2].startswith("store: events writes recovered after")
    assert messages[2].endswith(
        "500 failed attempts; backlog stored, 80 events dropped (buffer full)"
    )
    assert not any(r.exc_info for r in caplog.records)  # no traceback per failed batch
    await tracker.stop()
    await store.close()


async def test_an_event_after_a_quiet_spell_is_not_held_for_the_coalesce(tmp_path: Path) -> None:
    # The coalesce wait batches events that keep arriving; alone, an event would only wait.
    store = SQLiteStore(tmp_path / "db.sqlite")
    tracker = Pipeline(store, LocalBus(), coalesce_s=5.0)
    await tracker.start()
    await asyncio.sleep(0.1)
    tracker.submit(_burst(1)[0])
    await asyncio.wait_for(tracker.drain(), 2.0)  # the old rule held it for the whole 5 s
    assert [e.seq for e in await store.since(0, 10)] == [1]
    await tracker.stop()
    await store.close()


async def test_events_arriving_right_after_a_flush_wait_to_be_batched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline_module, "_BUSY_S", 60.0)  # every wakeup counts as busy
    store = SQLiteStore(tmp_path / "db.sqlite")
    # Two 0.1 s sleeps below stay inside the coalesce wait with room for a loaded machine's
    # stalls (at 0.5 s a 0.3 s stall flushed them first).
    tracker = Pipeline(store, LocalBus(), coalesce_s=2.0)
    await tracker.start()
    first, second, third = _burst(3)
    tracker.submit(first)  # nothing flushed yet: at once
    await asyncio.wait_for(tracker.drain(), 2.0)
    tracker.submit(second)
    await asyncio.sleep(0.1)
    tracker.submit(third)
    await asyncio.sleep(0.1)
    assert [e.seq for e in await store.since(0, 10)] == [1]  # still coalescing
    await tracker.drain()
    assert [e.seq for e in await store.since(0, 10)] == [1, 2, 3]
    await tracker.stop()
    await store.close()


def test_the_servers_and_the_backtests_engines_read_alert_prices_from_fills() -> None:
    """Both engines know which venues' prices are fills (registry.fill_priced): a cascade seen
    through a fill venue and a bankruptcy-priced one (OKX, 0.5 % below the market here) moves
    by the fills, not by the gap between the two kinds of price."""
    events = calm("ETH-PERP", 2, per_hour=120, size=5_000, seed=2)
    burst = _mixed_kinds(ENGINE_T0 + 2 * 3_600_000, count=61, seconds=120)
    fills = {e[3] for e in burst if e[5] == "binance_usdm"}
    scorer = default_scorer()
    assert isinstance(scorer, CascadeEngine)
    for engine in (scorer, start(Playbook()).engine):
        _, alerts = run(events + burst, engine)
        started = next(a for a in alerts if a.status == "started" and a.side == "long")
        assert started.start_price in fills
        assert started.last_price in fills


class _Swept:
    """A heatmap sink that records the prices it is told of."""

    def __init__(self) -> None:
        self.prices: list[tuple[str, float]] = []

    def note_price(self, market: str, price: float) -> None:
        self.prices.append((market, price))

    def retire_prices(self, market: str) -> bool:  # pragma: no cover - no market retires here
        return True

    def on_snapshot(self, snapshot: object) -> None:  # pragma: no cover - not fed here
        raise AssertionError("no snapshot in this test")


def _priced(seq: int, exchange: str, market: str, price: float, ts: int) -> Liquidation:
    return Liquidation(
        id=f"{exchange}:{seq}", seq=seq, exchange=exchange, symbol=market, market=market,
        side="long", price=price, quantity=1.0, size_usd=price, ts=ts, received_at=ts,
        coverage="complete",
    )  # fmt: skip


def test_the_swept_range_and_a_markets_last_price_take_fills_not_bankruptcy_prices(
    tmp_path: Path,
) -> None:
    # OKX's bkPx of a long sits ~0.5 % under the market: told to the heatmap, it widened the
    # swept range past where the market went (dropping positions never reached), and it was
    # /v1/markets' last_price whenever it came last.
    swept = _Swept()
    store = SQLiteStore(tmp_path / "s.sqlite")
    tracker = Pipeline(
        store,
        LocalBus(),
        heatmap=swept,
        fill_priced={"binance_usdm", "deribit"},
    )
    tracker._remember(_priced(1, "binance_usdm", "BTC-PERP", 100_000.0, T0))
    tracker._remember(_priced(2, "okx", "BTC-PERP", 99_500.0, T0 + 1_000))  # bankruptcy price
    tracker._remember(_priced(3, "okx", "XYZ-PERP", 2.0, T0))  # a market no fill venue lists
    tracker._remember(_priced(4, "okx", "XYZ-PERP", 2.1, T0 + 1_000))
    tracker._remember(_priced(5, "deribit", "XYZ-PERP", 2.05, T0 + 500))  # an older fill
    # XYZ's bankruptcy prices count until its first fill (as in backtests), none after BTC's.
    assert swept.prices == [
        ("BTC-PERP", 100_000.0),
        ("XYZ-PERP", 2.0),
        ("XYZ-PERP", 2.1),
        ("XYZ-PERP", 2.05),
    ]
    btc = tracker.markets["BTC-PERP"]
    assert btc.last_price == 100_000.0
    assert btc.last_ts == T0 + 1_000  # the latest event's time, whatever its venue
    assert btc.price_ts == T0  # the price's own time: the fill's, a second older
    xyz = tracker.markets["XYZ-PERP"]
    assert xyz.last_price == 2.05  # a fill beats a later bankruptcy price
    assert (xyz.price_ts, xyz.last_ts) == (T0 + 500, T0 + 1_000)
    # Without a fill set every price is the market's (the simulator, bench callers).
    plain = Pipeline(store, LocalBus(), heatmap=_Swept())
    plain._remember(_priced(1, "okx", "BTC-PERP", 99_500.0, T0))
    assert plain.markets["BTC-PERP"].last_price == 99_500.0


def test_a_markets_last_price_is_its_newest_fill_even_when_a_later_bankruptcy_came_first(
    tmp_path: Path,
) -> None:
    # Venues' feeds lag differently: a fill can arrive after a bankruptcy-priced event of a
    # later time. It is still the newest fill, so it is the market's last price; only a fill
    # older than the price already held is too late.
    tracker = Pipeline(SQLiteStore(tmp_path / "s.sqlite"), LocalBus(), fill_priced={"binance_usdm"})
    tracker._remember(_priced(1, "binance_usdm", "BTC-PERP", 100_000.0, T0))
    tracker._remember(_priced(2, "okx", "BTC-PERP", 99_000.0, T0 + 1_000))  # bankruptcy
    tracker._remember(_priced(3, "binance_usdm", "BTC-PERP", 99_800.0, T0 + 500))  # late fill
    btc = tracker.markets["BTC-PERP"]
    assert (btc.last_price, btc.price_ts, btc.last_ts) == (99_800.0, T0 + 500, T0 + 1_000)
    tracker._remember(_priced(4, "binance_usdm", "BTC-PERP", 99_900.0, T0 + 200))  # older
    assert (btc.last_price, btc.price_ts, btc.last_ts) == (99_800.0, T0 + 500, T0 + 1_000)


class _DownBus(LocalBus):
    """A bus that refuses every publish while ``down``, once ``accepted`` more went out."""

    down = True
    accepted = 0

    async def publish(self, message: Message) -> None:
        if self.down and self.accepted <= 0:
            raise ConnectionError("NATS bus PF: not connected, seq not published")
        if self.down:
            self.accepted -= 1
        await super().publish(message)


async def test_a_bus_outage_is_two_log_lines_and_every_event_is_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Each batch the bus refused logged an ERROR: during a NATS outage, a line per batch."""
    store = SQLiteStore(tmp_path / "db.sqlite")
    bus = _DownBus()
    tracker = Pipeline(store, bus, batch_limit=5)
    await tracker.start()
    caplog.set_level(logging.INFO, logger="purpleflea.pipeline")
    for event in _burst(40):
        tracker.submit(event)
        await tracker.drain()  # a batch each
    bus.down = False
    tracker.submit(venue_event(ts=T0 + 100_000))
    await tracker.drain()
    await tracker.stop()
    stored = await store.since(0, 1000)
    assert [e.seq for e in stored][:41] == list(range(1, 42))
    assert tracker.counters["publish_errors"] >= 10
    lines = [r.getMessage() for r in caplog.records if "bus:" in r.getMessage()]
    assert len(lines) == 2, lines
    assert lines[0].startswith("bus: could not publish a stored batch: ConnectionError")
    assert lines[1].startswith("bus: publishing again after ")
    await store.close()


class _HeldStore(SQLiteStore):
    """Holds every event append until ``go`` is set: a slow disk, not a failing one."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.go = asyncio.Event()

    async def append(self, events: Sequence[Liquidation]) -> list[Liquidation]:
        await self.go.wait()
        return await super().append(events)


async def test_a_drained_buffer_is_logged_while_another_writer_is_failing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The open-interest writer's outage is not the events' one: the buffer that filled behind a
    # slow events write still says, once drained, how many events it dropped (it was skipped
    # while any writer failed, and its count lost).
    store = _HeldStore(tmp_path / "db.sqlite")
    tracker = Pipeline(store, LocalBus(), buffer_limit=10, retry_initial_s=0.001)
    await tracker.start()
    tracker.writes.failed("open_interest", OSError("disk full"))
    caplog.set_level(logging.WARNING)
    for event in _burst(40):
        tracker.submit(event)
    dropped = tracker.counters["dropped_buffer_full"]
    assert dropped > 0
    store.go.set()
    await asyncio.wait_for(tracker.drain(), 30)
    drained = [r.message for r in caplog.records if "buffer drained" in r.message]
    assert drained == [f"ingest buffer drained: {dropped} events were dropped while full"]
    assert tracker.writes.failing  # the open-interest writer's outage goes on
    await tracker.stop(grace_s=0.1)
    await store.close()


async def test_events_stored_while_the_bus_refuses_them_are_counted_as_such(
    tmp_path: Path,
) -> None:
    # A 30 s NATS outage under a 100/s replay: 2,800 events stored and in `received`, in no
    # other outcome of /v1/metrics, which read as that many events lost.
    store = SQLiteStore(tmp_path / "db.sqlite")
    bus = _DownBus()
    bus.accepted = 3
    tracker = Pipeline(store, bus)
    await tracker.start()
    for event in _burst(40):
        tracker.submit(event)
    await tracker.drain()
    counters = tracker.counters
    assert await store.last_seq() == 40
    assert tracker.last_seq == 3  # the bus took seqs 1-3, then refused every one
    assert counters["stored_unpublished"] == 37
    await tracker.stop()
    await store.close()


async def _published(subscription: Subscription, count: int) -> list[int]:
    return [(await asyncio.wait_for(subscription.next(), 5.0)).seq for _ in range(count)]


async def test_what_the_bus_refused_is_published_from_the_store_once_it_is_back(
    tmp_path: Path,
) -> None:
    """Events stored while the bus refused them reached it only as part of an API node's
    backfill at the next event: with no next event (a quiet market, a stop), never. Now they
    are published from the store, in seq order, as soon as the bus takes them again."""
    store = SQLiteStore(tmp_path / "db.sqlite")
    bus = _DownBus()
    bus.down = False
    tracker = Pipeline(store, bus)
    tracker.backlog.republish_s = 0.05
    reader = bus.subscribe()
    await tracker.start()
    tracker.submit(venue_event(ts=T0))
    await tracker.drain()
    bus.down = True
    for n in range(1, 6):
        tracker.submit(venue_event(ts=T0 + n))
        await tracker.drain()  # a batch each
    assert tracker.counters["stored_unpublished"] == 5
    assert tracker.last_seq == 1
    unpublished = tracker.unpublished_seqs
    bus.down = False  # and no event comes
    assert await _published(reader, 6) == [1, 2, 3, 4, 5, 6]
    assert unpublished == 5
    assert tracker.counters["republished"] == 5
    assert (tracker.last_seq, tracker.unpublished_seqs) == (6, 0)
    tracker.submit(venue_event(ts=T0 + 10))
    await tracker.drain()
    assert await _published(reader, 1) == [7]
    await tracker.stop()
    await store.close()


async def test_a_backlog_longer_than_a_page_goes_out_in_seq_order_ahead_of_new_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New events keep coming while the backlog is published: each batch publishes a page of
    the backlog ahead of it and joins it, so the bus carries every seq once, ascending."""
    monkeypatch.setattr(publish_backlog, "_REPUBLISH_PAGE", 3)
    store = SQLiteStore(tmp_path / "db.sqlite")
    bus = _DownBus()
    tracker = Pipeline(store, bus, batch_limit=2)
    tracker.backlog.republish_s = 3600.0  # only new events move it here
    reader = bus.subscribe()
    await tracker.start()
    for event in _burst(20):
        tracker.submit(event)
    await tracker.drain()
    assert tracker.counters["stored_unpublished"] == 20
    bus.down = False
    for n in range(30):
        tracker.submit(venue_event(ts=T0 + 100_000 + n))
        await tracker.drain()
    assert await _published(reader, 50) == list(range(1, 51))
    assert await store.last_seq() == 50
    assert tracker.counters["republished"] + tracker.counters["published"] == 50
    assert reader.drain() == []
    await tracker.stop()
    await store.close()


class _ReadFailsOnce(SQLiteStore):
    """A store whose next ``cascades_since`` fails once ``armed`` (a PostgreSQL blip while
    the backlog is read back)."""

    armed = failed = False

    async def cascades_since(self, seq: int, limit: int = 1000) -> list[CascadeAlert]:
        if self.armed and not self.failed:
            self.failed = True
            raise OSError("database is away")
        return await super().cascades_since(seq, limit)


async def test_a_backlog_whose_read_fails_is_read_again(tmp_path: Path) -> None:
    store = _ReadFailsOnce(tmp_path / "db.sqlite")
    bus = _DownBus()
    tracker = Pipeline(store, bus)
    tracker.backlog.republish_s = 0.05
    reader = bus.subscribe()
    await tracker.start()
    for n in range(3):
        tracker.submit(venue_event(ts=T0 + n))
        await tracker.drain()
    async with tracker._serial:  # between two tries of the backlog
        errors = tracker.counters["republish_errors"]  # the bus's refusals so far
        store.armed, bus.down = True, False
    assert await _published(reader, 3) == [1, 2, 3]
    assert store.failed
    assert tracker.counters["republish_errors"] == errors + 1
    await tracker.stop()
    await store.close()
