"""The connection runner against misbehaving fake exchanges.

The fakes drop every connection every ~0.3 s, stall for longer than the watchdog, interleave
garbage with good frames and send bursts. Every time the runner must reconnect, lose none of
the good frames the fake delivered to an open socket, deliver no event twice (replays on
subscribe are deduplicated), never crash, and count exactly what happened.
"""

from __future__ import annotations

import json

from purpleflea.ingest import feeds
from purpleflea.ingest.feed_spec import FeedSpec
from tests.fakes.exchanges import FakeExchange, Faults, dialect_for
from tests.fakes.harness import Feeds, catalogs_for_tests, count_events, expected_events, fast

T0 = 1_700_000_000_000


def binance_frame(i: int) -> str:
    order = {
        "s": "BTCUSDT",
        "S": "SELL" if i % 2 else "BUY",
        "o": "LIMIT",
        "f": "IOC",
        "q": "0.010",
        "p": "36000.0",
        "ap": f"{36100 + i}.5",
        "X": "FILLED",
        "l": "0.010",
        "z": "0.010",
        "T": T0 + i,
    }
    return json.dumps({"e": "forceOrder", "E": T0 + i + 5, "o": order})


def kraken_frame(i: int) -> str:
    trade = {
        "feed": "trade",
        "product_id": "PF_XBTUSD",
        "uid": f"00000000-0000-0000-0000-{i:012d}",
        "side": "sell",
        "type": "liquidation",
        "seq": 1000 + i,
        "time": T0 + i,
        "qty": 0.5,
        "price": 36000.0 + i,
    }
    return json.dumps(trade)


def htx_frame(i: int) -> str:
    item = {
        "symbol": "BTC",
        "contract_code": "BTC-USDT",
        "direction": "buy" if i % 2 else "sell",
        "offset": "close",
        "volume": 10.0 + i,
        "price": 36000.0 + i,
        "created_at": T0 + i,
        "amount": (10.0 + i) / 1000,
        "trade_turnover": (10.0 + i) / 1000 * (36000.0 + i),
    }
    frame = {"op": "notify", "topic": "public.BTC-USDT.liquidation_orders", "ts": T0 + i}
    return json.dumps({**frame, "data": [item]})


def spec_for(connection: str, exchange: str, url: str, **timing: float) -> FeedSpec:
    specs = feeds.build_feeds(catalogs_for_tests(), [exchange], {connection: url})
    return fast(next(s for s in specs if s.name == connection), **timing)


def assert_exactly_delivered(run: Feeds, spec: FeedSpec, fake: FakeExchange) -> None:
    expected = expected_events(spec, fake.delivered)
    ids = [e.id for e in run.received]
    assert len(ids) == len(set(ids)), "an event reached the sink twice"
    assert ids == [e.id for e in expected], "events lost, added or reordered"
    assert run.stats[spec.name].events == len(expected)


async def test_drops_every_300ms_lose_nothing_and_duplicate_nothing() -> None:
    frames = [binance_frame(i) for i in range(200)]
    async with FakeExchange(dialect_for("binance_usdm"), frames, Faults(drop_every=0.3)) as fake:
        spec = spec_for("binance_usdm", "binance_usdm", fake.url)
        async with Feeds([spec]) as run:
            await fake.wait_drained(timeout=10)
            await run.wait_for(lambda: len(run.received) == 200)
    stats = run.stats[spec.name]
    assert fake.connections >= 3  # 200 frames x 5 ms > 0.9 s: at least 3 drops
    assert stats.connects == fake.connections
    assert stats.errors["closed"] == fake.connections - 1  # the last one was still open
    assert stats.reconnects == fake.connections - 1
    assert stats.duplicates == 0
    assert stats.malformed == 0
    assert stats.silent == 0
    assert_exactly_delivered(run, spec, fake)


async def test_replays_after_reconnects_are_counted_as_duplicates_not_delivered() -> None:
    # Kraken replays recent trades (trade_snapshot) on every subscribe.
    frames = [kraken_frame(i) for i in range(200)]
    async with FakeExchange(dialect_for("kraken_futures"), frames, Faults(drop_every=0.3)) as fake:
        spec = spec_for("kraken_futures", "kraken_futures", fake.url)
        async with Feeds([spec]) as run:
            await fake.wait_drained(timeout=10)
            await run.wait_for(lambda: len(run.received) == 200)
    stats = run.stats[spec.name]
    replayed = count_events(spec, fake.snapshots)
    assert fake.connections >= 3
    assert replayed > 0
    assert stats.duplicates == replayed
    assert stats.replays == 0  # every replayed trade had been seen live
    assert_exactly_delivered(run, spec, fake)


async def test_stalls_longer_than_the_watchdog_are_detected_and_recovered() -> None:
    frames = [binance_frame(i) for i in range(80)]
    faults = Faults(stall_every=20, stall_for=3.0)
    async with FakeExchange(dialect_for("binance_usdm"), frames, faults) as fake:
        spec = spec_for("binance_usdm", "binance_usdm", fake.url, silence_timeout=0.5)
        async with Feeds([spec]) as run:
            await fake.wait_drained(timeout=10)
            await run.wait_for(lambda: len(run.received) == 80)
    stats = run.stats[spec.name]
    # 20 frames per connection: connections 1-3 stalled, the 4th sent the last 20.
    assert fake.connections == 4
    assert stats.silent == 3
    assert stats.errors["silent"] == 3
    assert stats.connects == 4
    assert stats.reconnects == 3
    assert stats.duplicates == 0
    assert stats.malformed == 0
    assert_exactly_delivered(run, spec, fake)


async def test_garbage_and_bursts_are_counted_and_skipped() -> None:
    frames = [binance_frame(i) for i in range(300)]
    faults = Faults(garbage_every=3, burst=25)
    async with FakeExchange(dialect_for("binance_usdm"), frames, faults) as fake:
        # No keepalive within the test: every frame counted below is the fake's.
        spec = spec_for("binance_usdm", "binance_usdm", fake.url, keepalive_interval=3600)
        async with Feeds([spec]) as run:
            await fake.wait_drained(timeout=10)
            await run.wait_for(lambda: run.stats[spec.name].malformed == 100)
            await run.wait_for(lambda: len(run.received) == 300)
    stats = run.stats[spec.name]
    assert fake.garbage_delivered == 100
    assert stats.malformed == 100
    assert stats.errors["malformed_frame"] == 100
    assert stats.connects == 1
    assert stats.reconnects == 0
    # Every good frame, every garbage frame and the subscribe ack were counted.
    assert stats.frames == 300 + 100 + 1
    assert_exactly_delivered(run, spec, fake)


async def test_gzip_exchange_under_drops_garbage_and_its_own_pings() -> None:
    frames = [htx_frame(i) for i in range(250)]
    faults = Faults(drop_every=0.3, garbage_every=5)
    async with FakeExchange(dialect_for("htx_linear"), frames, faults) as fake:
        spec = spec_for("htx_linear", "htx", fake.url)
        async with Feeds([spec]) as run:
            await fake.wait_drained(timeout=10)
            await run.wait_for(lambda: len(run.received) == 250)
            await run.wait_for(lambda: run.stats[spec.name].malformed == fake.garbage_delivered)
    stats = run.stats[spec.name]
    assert fake.connections >= 3
    assert fake.garbage_delivered >= 40  # every 5th frame of each connection
    assert stats.malformed == fake.garbage_delivered
    assert sum(s.pings for s in fake.sessions) > 0  # HTX pings answered with pongs
    assert fake.violations == []
    assert stats.duplicates == 0
    assert stats.silent == 0
    assert_exactly_delivered(run, spec, fake)
