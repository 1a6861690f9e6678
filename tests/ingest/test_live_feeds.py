"""Every exchange's real connection spec against its fake exchange over loopback.

For each exchange with a normalizer, ``build_feeds`` builds the production specs (URLs
overridden to point at the fakes), ``run_feed`` runs them, and the fakes play every recorded
frame we have. The sink must receive exactly the oracle's events (normalizer applied to the
frames the fake delivered, unsized dropped, no repeats), the fakes must have seen the right
path and subscribe messages, and pings must have been answered both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

import pytest

from purpleflea.ingest import feeds
from purpleflea.ingest.feed_spec import FeedSpec
from purpleflea.model import VenueLiquidation
from purpleflea.venues import NORMALIZERS, FrameError
from purpleflea.venues._connection import symbols_of
from purpleflea.venues.bybit import connection as bybit_connection
from tests.fakes.exchanges import FakeExchange, Faults, dialect_for
from tests.fakes.harness import (
    Feeds,
    catalogs_for_tests,
    expected_events,
    expected_fixture_events,
    fast,
    recorded_frames,
)

FRAMES = recorded_frames()

# Exchanges whose client keeps the connection alive with application pings it sends, and
# those whose server pings and expects answers.
CLIENT_PINGS = {"binance_usdm", "binance_coinm", "bybit", "okx", "bitmex", "bitget", "gate"}
SERVER_PINGS = {"deribit", "htx"}


def test_every_normalizer_has_a_feed() -> None:
    assert feeds.available() == list(NORMALIZERS)
    assert set(NORMALIZERS) == {spec.exchange for spec in feeds.build_feeds(catalogs_for_tests())}


def test_binance_usdm_uses_the_market_url_split() -> None:
    specs = feeds.build_feeds(catalogs_for_tests(), ["binance_usdm"])
    assert [s.url for s in specs] == ["wss://fstream.binance.com/market/ws"]


def test_bybit_subscribes_every_catalog_symbol_in_bounded_batches() -> None:
    catalogs = catalogs_for_tests()
    linear, inverse = feeds.build_feeds(catalogs, ["bybit"])
    symbols = symbols_of(catalogs.get("bybit"), "linear")
    messages = linear.subscribe_messages()
    topics = [t for m in messages for t in json.loads(m)["args"]]
    assert topics == [f"allLiquidation.{s}" for s in symbols]
    assert all(len(m) < 21_000 for m in messages)
    assert "allLiquidation.BTCUSD" in inverse.subscribe_messages()[0]
    many = [f"COIN{i}USDT" for i in range(450)]
    assert len(bybit_connection.subscribe(many)) == 3


@pytest.mark.parametrize("exchange", feeds.available())
async def test_exchange_feed_delivers_exactly_the_normalized_events(exchange: str) -> None:
    catalogs = catalogs_for_tests()
    specs = feeds.build_feeds(catalogs, [exchange])
    frames_of = {spec.name: FRAMES.get(spec.name.split("#")[0], []) for spec in specs}
    assert any(frames_of.values()), f"no recorded frames for {exchange}"
    async with contextlib.AsyncExitStack() as stack:
        fakes = {}
        for spec in specs:
            # dYdX spreads markets over connections: the recorded frames go to the first one.
            frames = frames_of[spec.name] if "#" not in spec.name else []
            fake = FakeExchange(dialect_for(spec.name), frames)
            fakes[spec.name] = await stack.enter_async_context(fake)
        urls = {name: fake.url for name, fake in fakes.items()}
        specs = [fast(s) for s in feeds.build_feeds(catalogs, [exchange], urls)]
        # The oracle's own catalogs: what it learns from the frames (BitMEX's XBT price for
        # its quanto ETHUSD) must not reach the run's before the run reads it.
        oracle = feeds.build_feeds(catalogs_for_tests(), [exchange], urls)
        expected = [
            event
            for spec in oracle
            for event in expected_events(spec, frames_of[spec.name] if "#" not in spec.name else [])
        ]
        async with Feeds(specs) as run:
            for fake in fakes.values():
                await fake.wait_drained()
            await run.wait_for(lambda: len(run.received) >= len(expected))
            await run.wait_for(
                lambda: (
                    all(s.pings > 0 for f in fakes.values() for s in f.sessions)
                    if exchange in CLIENT_PINGS | SERVER_PINGS
                    else True
                )
            )
        stats = run.stats
    assert sorted(e.id for e in run.received) == sorted(e.id for e in expected)
    assert sorted(run.received, key=lambda e: e.id) == sorted(expected, key=lambda e: e.id)
    for name, fake in fakes.items():
        assert fake.violations == [], name
        assert fake.rejected_paths == [], name
        assert fake.connections == 1, name
        assert stats[name].connects == 1, name
        assert stats[name].malformed == sum(map(_malformed(specs, name), fake.delivered)), name
        assert stats[name].duplicates == 0, name
        assert stats[name].errors["refused"] == 0, f"{name}: an ack read as a refusal"
        assert fake.sessions[0].topics, f"{name}: never subscribed"
    unsized = sum(
        1
        for spec in specs
        for frame in fakes[spec.name].delivered
        for event in spec.normalize(frame)
        if event.quantity is None
    )
    assert sum(s.unsized for s in stats.values()) == unsized
    delivered = sum(len(f.delivered) for f in fakes.values())
    assert delivered == sum(len(v) for k, v in frames_of.items() if "#" not in k)
    assert sum(s.events for s in stats.values()) == len(expected)


def test_every_watchdog_outlasts_two_keepalive_answers() -> None:
    """A connection kept alive by our own ping must not be cut between two answers: each
    watchdog waits at least two keepalive intervals (one late pong is not a dead socket)."""
    for spec in feeds.build_feeds(catalogs_for_tests()):
        if spec.keepalive:
            assert spec.silence_timeout >= 2 * spec.keepalive_interval, spec.name


@pytest.mark.parametrize("exchange", feeds.available())
async def test_a_refused_subscription_is_counted_and_named(exchange: str) -> None:
    """A venue that refuses a subscription (a bad or delisted topic, a limit) keeps the socket
    open and sends nothing more: the connection must say so, not look up and calm."""
    catalogs = catalogs_for_tests()
    names = [spec.name for spec in feeds.build_feeds(catalogs, [exchange])]
    async with contextlib.AsyncExitStack() as stack:
        fakes = {}
        for name in names:
            fake = FakeExchange(dialect_for(name), faults=Faults(refuse_subscribe=True))
            fakes[name] = await stack.enter_async_context(fake)
        urls = {name: fake.url for name, fake in fakes.items()}
        specs = [fast(s) for s in feeds.build_feeds(catalogs, [exchange], urls)]
        async with Feeds(specs) as run:
            await run.wait_for(lambda: all(s.errors["refused"] for s in run.stats.values()))
    for name, stats in run.stats.items():
        assert stats.last_error.startswith("refused: "), (name, stats.last_error)
        assert stats.events == stats.malformed == 0, name


@pytest.mark.parametrize("exchange", feeds.available())
async def test_a_quiet_but_live_connection_is_never_called_silent(exchange: str) -> None:
    """No liquidations for a while is normal (32 small dYdX markets, Binance COIN-M at night);
    the venue's protocol-level pings never reach the watchdog. Every connection has an
    application heartbeat (pongs, answers, heartbeat feeds, block heights), so a quiet but
    live connection is not cut, and the watchdog can be short enough to catch a dead one."""
    catalogs = catalogs_for_tests()
    names = [spec.name for spec in feeds.build_feeds(catalogs, [exchange])]
    async with contextlib.AsyncExitStack() as stack:
        fakes = {}
        for name in names:
            fakes[name] = await stack.enter_async_context(FakeExchange(dialect_for(name)))
        urls = {name: fake.url for name, fake in fakes.items()}
        specs = [
            fast(s, silence_timeout=0.6) for s in feeds.build_feeds(catalogs, [exchange], urls)
        ]
        async with Feeds(specs) as run:
            await asyncio.sleep(1.5)
    for name, fake in fakes.items():
        assert run.stats[name].silent == 0, name
        assert fake.connections == 1, name
        assert fake.violations == [], name


def test_recorded_fixtures_reach_the_sink_as_documented() -> None:
    """The oracle itself agrees with the shared fixtures' documented events (sized ones)."""
    catalogs = catalogs_for_tests()
    specs = {s.name: s for s in feeds.build_feeds(catalogs)}
    produced: dict[tuple[object, ...], list[VenueLiquidation]] = {}
    for connection, frames in FRAMES.items():
        for e in expected_events(specs[connection], frames):
            produced.setdefault((e.exchange, e.symbol, e.ts, e.side), []).append(e)
    matched = 0
    for doc in expected_fixture_events():
        candidates = produced.get((doc["exchange"], doc["symbol"], doc["ts_ms"], doc["side"]))
        if not candidates:
            continue  # its contract is not in the bundled catalog: dropped as unsized
        assert any(
            e.price == pytest.approx(doc["price"], rel=1e-9)
            and e.quantity == pytest.approx(doc["quantity"], rel=1e-9)
            and e.size_usd == pytest.approx(doc["size_usd"], rel=1e-9)
            for e in candidates
        ), (doc, candidates)
        matched += 1
    assert matched >= 15  # most documented events need only the bundled catalog


def _malformed(specs: list[FeedSpec], name: str) -> Callable[[str | bytes], int]:
    """1 for a frame the connection's normalizer rejects (a recorded error frame), else 0."""
    spec = next(s for s in specs if s.name == name)

    def rejected(frame: str | bytes) -> int:
        try:
            spec.normalize(frame)
        except FrameError:
            return 1
        return 0

    return rejected
