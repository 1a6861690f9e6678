"""The liveness channel: a connection whose liquidations are quiet for hours still has a
data watchdog, fed by an always-busy public channel subscribed on the same socket.

Gate, HTX, BitMEX, Bitget and Bybit inverse carry liquidation feeds that are legitimately
quiet for hours, so no liquidation-silence watchdog could be sized for them, and a gateway that
acks the subscribe and answers every ping but sends nothing looked healthy for ever. Each now
subscribes a ticker (or HTX's 60 s contract snapshot) beside its liquidations, and any push of
it counts as data: a dead gateway is replaced as ``silent`` within the watchdog, while a live
one whose liquidations are rare is left alone.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from purpleflea.ingest import feeds
from purpleflea.ingest.feed_spec import FeedSpec
from tests.fakes.exchanges import FakeExchange, Faults, Session, dialect_for
from tests.fakes.harness import Feeds, catalogs_for_tests
from tests.ingest.test_faults import spec_for

#: The data watchdog's seconds in these tests (the venues' own are minutes); the fakes push
#: their liveness channel every 0.05 s.
DATA_TIMEOUT = 0.4

#: (connection, exchange) of every connection with a liveness channel.
LIVENESS_CONNECTIONS = [
    ("bybit_inverse", "bybit"),
    ("gate_usdt", "gate"),
    ("gate_btc", "gate"),
    ("gate_usd1", "gate"),
    ("htx_linear", "htx"),
    ("htx_coin", "htx"),
    ("htx_futures", "htx"),
    ("bitmex", "bitmex"),
    ("bitget", "bitget"),
]


def _short(connection: str, exchange: str, url: str) -> FeedSpec:
    spec = spec_for(connection, exchange, url)
    assert spec.liveness is not None, f"{connection} has no liveness channel"
    assert spec.data_timeout is not None, f"{connection} has no data watchdog"
    return replace(spec, data_timeout=DATA_TIMEOUT)


@pytest.mark.parametrize(("connection", "exchange"), LIVENESS_CONNECTIONS)
async def test_a_gateway_that_acks_and_pongs_but_pushes_nothing_is_replaced_as_silent(
    connection: str, exchange: str
) -> None:
    # The fake acks both subscriptions and answers every ping, and pushes nothing. Before,
    # these connections had no data watchdog: the pongs fed the frame watchdog for ever.
    muted = Faults(mute_liveness=True)
    async with FakeExchange(dialect_for(connection), faults=muted) as fake:
        spec = _short(connection, exchange, fake.url)
        async with Feeds([spec]) as run:
            await run.wait_for(lambda: run.stats[connection].silent >= 2, timeout=10)
    stats = run.stats[connection].snapshot()
    assert fake.violations == []
    assert fake.connections >= 2
    assert all(s.liveness is not None for s in fake.sessions[:2])  # asked, acked
    assert all(s.liveness_pushes == 0 for s in fake.sessions)
    assert stats["silent"] == stats["errors"]["silent"] >= 2
    assert str(stats["last_error"]).startswith(
        f"silent: no liquidation or liveness push for {DATA_TIMEOUT:g} s"
    )


@pytest.mark.parametrize(("connection", "exchange"), LIVENESS_CONNECTIONS)
async def test_a_live_gateway_with_no_liquidation_for_a_while_is_kept(
    connection: str, exchange: str
) -> None:
    # The liveness channel flows, liquidations do not: for four data timeouts the one
    # connection stays up and nothing is counted.
    async with FakeExchange(dialect_for(connection)) as fake:
        spec = _short(connection, exchange, fake.url)
        async with Feeds([spec]) as run:
            await run.wait_for(lambda: bool(fake.sessions) and fake.sessions[0].liveness_pushes > 0)
            await asyncio.sleep(4 * DATA_TIMEOUT)
    stats = run.stats[connection].snapshot()
    assert fake.violations == []
    assert fake.connections == 1, stats
    assert stats["silent"] == 0, stats
    assert stats["malformed"] == 0, stats  # its pushes are no liquidation and no bad frame
    assert stats["events"] == 0


def test_each_liveness_watchdog_is_several_times_its_channel_s_cadence() -> None:
    # Bybit's ticker: 100 ms (documented); HTX's contract_info: 60 s (documented); Gate's,
    # BitMEX's and Bitget's tickers: undocumented, about a second when recorded.
    specs = {s.name: s for s in feeds.build_feeds(catalogs_for_tests())}
    cadence = {"bybit_inverse": 0.1, "htx_linear": 60, "htx_coin": 60, "htx_futures": 60}
    for name, _ in LIVENESS_CONNECTIONS:
        data_timeout = specs[name].data_timeout
        assert data_timeout is not None, name
        assert data_timeout >= 3 * cadence.get(name, 1.0), (name, data_timeout)
        assert data_timeout <= 180, (name, data_timeout)  # a dead gateway told in minutes


@pytest.mark.parametrize(("connection", "exchange"), LIVENESS_CONNECTIONS)
def test_only_the_channel_s_pushes_count_not_its_ack_nor_a_pong(
    connection: str, exchange: str
) -> None:
    # An ack and a pong are what a dead gateway still sends: they must not feed the watchdog.
    spec = spec_for(connection, exchange, "ws://127.0.0.1:1/")
    assert spec.liveness is not None
    dialect, session = dialect_for(connection), Session()
    replies = [
        dialect.encode(reply)
        for message in spec.subscribe_messages()
        for reply in dialect.handle(message, session)
    ]
    assert session.liveness is not None, f"{connection}: no liveness subscription sent"
    assert replies
    assert not any(spec.liveness(reply) for reply in replies)
    push = dialect.liveness_push(session)
    assert push is not None
    assert spec.liveness(dialect.encode(push))
    assert spec.normalize(dialect.encode(push)) == []  # and it is no liquidation
    ping = dialect.ping(session)  # the venue's own ping (HTX)
    if ping is not None:
        assert not spec.liveness(dialect.encode(ping))
    keepalive = spec.keepalive if isinstance(spec.keepalive, str) else None
    if keepalive is None and spec.keepalive is not None:
        keepalive = spec.keepalive()
    if keepalive is not None:  # our ping, and the venue's pong
        pongs = [dialect.encode(reply) for reply in dialect.handle(keepalive, session)]
        assert pongs
        assert not any(spec.liveness(pong) for pong in pongs)
