"""A contract listed while a connection is up is subscribed on that connection.

Bybit, Kraken Futures and dYdX are subscribed one topic per contract of the catalog (HTX's
delivery endpoint one per coin), and none
closes a healthy connection on a schedule: the catalog refresh (hourly, or early for a
dropped unsized symbol) learns of a new listing, but the subscribe was built when the socket
opened, so before, a coin listed mid-session had no liquidation received until the next
reconnect, days later maybe, while new listings are among the busiest markets. Each
connection now looks at its subscribe rebuilt from the live catalog every
``Connection.follow_catalog`` seconds and asks for what it gained, on the same socket.

dYdX's markets are split over its connections once a process, each with free places for
markets listed later (dydx/connection.py): before, a market listed after the start waited
for the process to restart.

Frames: Bybit's ``allLiquidation`` push (tardis-node's recording of 2025-02-25, shared
fixture ``bybit_allliquidation_recorded_tardis``) and Kraken Futures' ``trade`` of type
``liquidation`` (``krakenfutures_trade_liquidation_inverse_eth_recorded_tardis``) and dYdX's
``v4_trades`` doc example (``dydx_v4_trades_liquidated_doc``), each for the new contract.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from purpleflea.ingest import feeds
from purpleflea.ingest.resubscribe import Resubscriber
from purpleflea.model import Instrument
from purpleflea.venues.bybit.connection import BATCHING as BYBIT_BATCHING
from tests.fakes.exchanges import FakeExchange, dialect_for
from tests.fakes.harness import Feeds, catalogs_for_tests, fast

if TYPE_CHECKING:
    from purpleflea.ingest.catalog import Catalogs
    from purpleflea.ingest.live import LiveIngest

BYBIT_NEW = json.dumps(
    {
        "topic": "allLiquidation.NEWUSDT",
        "type": "snapshot",
        "ts": 1740480207578,
        "data": [{"T": 1740480207110, "s": "NEWUSDT", "S": "Sell", "v": "2846", "p": "0.02456"}],
    }
)
KRAKEN_NEW = json.dumps(
    {
        "feed": "trade",
        "product_id": "PF_NEWUSD",
        "uid": "e7f3a144-5c04-4ed6-999e-5922cd0b6160",
        "side": "buy",
        "type": "liquidation",
        "seq": 253796,
        "time": 1593620853613,
        "qty": 250,
        "price": 231.6,
    }
)

DYDX_NEW = json.dumps(
    {
        "type": "channel_data",
        "connection_id": "57844645-0b1d-4c3f-ad71-1c6154154a13",
        "message_id": 4,
        "id": "NEW-USD",
        "channel": "v4_trades",
        "version": "1.1.0",
        "contents": {
            "trades": [
                {
                    "id": "8ee6d90d-272d-5edd-bf0f-2e4d6ae3d3b7",
                    "size": "0.000100431",
                    "price": "27839",
                    "side": "BUY",
                    "createdAt": "2023-04-04T00:29:19.353Z",
                    "type": "LIQUIDATED",
                }
            ]
        },
    }
)

# The linear swap push's shape (shared fixture htx_linear_swap_liquidation_orders_recorded_
# tardis) for a coin-margined delivery contract of a new coin, on its per-coin topic.
HTX_NEW = json.dumps(
    {
        "op": "notify",
        "topic": "public.NEW.liquidation_orders",
        "ts": 1608226502344,
        "data": [
            {
                "symbol": "NEW",
                "contract_code": "NEW230929",
                "direction": "sell",
                "offset": "close",
                "volume": 3.0,
                "price": 1.5,
                "created_at": 1608226502284,
                "amount": 20.0,
            }
        ],
    }
)

#: connection -> (exchange, the new contract, its kind, its topic, a liquidation of it).
LISTINGS = {
    # dYdX lists markets permissionlessly; its connections are built once a process.
    "dydx_v4": ("dydx_v4", "NEW-USD", "linear", "NEW-USD", DYDX_NEW),
    "bybit_linear": ("bybit", "NEWUSDT", "linear", "allLiquidation.NEWUSDT", BYBIT_NEW),
    "kraken_futures": ("kraken_futures", "PF_NEWUSD", "linear", "PF_NEWUSD", KRAKEN_NEW),
    # HTX's delivery endpoint subscribes one coin a sub, from the coin-margined contracts.
    "htx_futures": ("htx", "NEW230929", "inverse", "public.NEW.liquidation_orders", HTX_NEW),
}


@pytest.mark.parametrize("connection", sorted(LISTINGS))
async def test_a_contract_listed_mid_session_is_subscribed_on_the_same_socket(
    connection: str,
) -> None:
    exchange, symbol, kind, topic, frame = LISTINGS[connection]
    catalogs = catalogs_for_tests()
    async with FakeExchange(dialect_for(connection)) as fake:
        built = feeds.build_feeds(catalogs, [exchange], {connection: fake.url})
        spec = fast(next(s for s in built if s.name == connection), follow_catalog=0.05)
        async with Feeds([spec]) as run:
            await run.wait_for(lambda: bool(fake.sessions) and fake.sessions[0].subscribed.is_set())
            assert topic not in fake.sessions[0].topics
            # The catalog refresh lists the new contract (one coin, or one USD, a contract).
            live = catalogs.get(exchange)
            new = Instrument(exchange=exchange, symbol=symbol, kind=kind, contract_size=1.0)
            live.replace({**live, symbol: new})
            await run.wait_for(lambda: topic in fake.sessions[0].topics, timeout=3.0)
            await fake.broadcast(frame)
            await run.wait_for(lambda: any(e.symbol == symbol for e in run.received))
    stats = run.stats[connection]
    assert fake.connections == 1  # asked for on the same socket, no reconnect
    assert stats.errors["newly_listed"] == 1
    assert fake.sessions[0].topics.count(topic) == 1  # asked once, not at every look
    assert fake.violations == []


def _following_ingest(exchange: str, urls: dict[str, str], catalogs: Catalogs) -> LiveIngest:
    """A live ingest of ``exchange`` on fakes at ``urls``, its subscribes rebuilt from
    ``catalogs`` every 0.05 s (no catalog fetched, no poller)."""
    from purpleflea.ingest.live import LiveIngest
    from tests.fakes.harness import quick_backoff

    return LiveIngest(
        lambda event, received_at: None,
        exchanges=[exchange],
        urls=urls,
        catalogs=catalogs,
        catalog_sources=(),
        poll_sources=(),
        backoff=quick_backoff,
        tune=lambda spec: fast(spec, follow_catalog=0.05),
    )


def test_extend_asks_only_for_topics_never_asked_in_batches_no_larger_than_the_first() -> None:
    resubscriber = Resubscriber(BYBIT_BATCHING)

    def subscribe(*symbols: str) -> str:
        return json.dumps({"op": "subscribe", "args": [f"allLiquidation.{s}" for s in symbols]})

    resubscriber.start([subscribe("BTCUSDT", "ETHUSDT")])
    assert resubscriber.extend([subscribe("BTCUSDT", "ETHUSDT")]) == ((), [])
    topics, messages = resubscriber.extend([subscribe("BTCUSDT", "A", "B", "ETHUSDT", "C")])
    assert topics == ("allLiquidation.A", "allLiquidation.B", "allLiquidation.C")
    assert [json.loads(m)["args"] for m in messages] == [
        ["allLiquidation.A", "allLiquidation.B"],
        ["allLiquidation.C"],
    ]
    # Asked once: the next look finds nothing new, and a contract the catalog lost is not
    # asked about at all.
    assert resubscriber.extend([subscribe("A", "B", "C")]) == ((), [])


async def test_dydx_markets_listed_past_every_free_place_get_a_connection_of_their_own() -> None:
    """The indexer takes 32 ``v4_trades`` a connection (socks config.ts
    V4_TRADES_CHANNEL_LIMIT; a 33rd is refused: "Per-connection subscription limit reached")
    and documents no cap on connections (docs.dydx.exchange, Indexer Websocket, "Rate
    Limiting": 2 subscribes a second per connection and market). Before, markets listed past
    the 16 places left free at the start waited for a restart; now the ingest opens another
    connection for them."""
    from purpleflea.ingest.catalog import Catalogs

    def row(market: str) -> Instrument:
        return Instrument(exchange="dydx_v4", symbol=market, kind="linear", contract_size=1.0)

    catalogs = Catalogs()
    live = catalogs.get("dydx_v4")
    live.replace({f"C{i:02d}-USD": row(f"C{i:02d}-USD") for i in range(48)})  # 2 x 24

    def subscribed(fake: FakeExchange) -> set[str]:
        return {market for session in fake.sessions for market in session.topics}

    async with FakeExchange(dialect_for("dydx_v4")) as fake:
        ingest = _following_ingest("dydx_v4", {"dydx_v4": fake.url}, catalogs)
        await ingest.start()
        try:
            harness = Feeds([])
            await harness.wait_for(lambda: len(subscribed(fake)) == 48)
            # 20 listed since: 16 take the free places, 4 have none left.
            live.replace({**live, **{f"N{i:02d}-USD": row(f"N{i:02d}-USD") for i in range(20)}})
            await harness.wait_for(lambda: len(subscribed(fake)) == 68, timeout=5.0)
            stats = {s["name"]: s for s in ingest.stats()}
        finally:
            await ingest.stop()
    assert fake.violations == []
    assert [len(session.topics) for session in fake.sessions] == [32, 32, 4]
    assert set(stats) == {"dydx_v4", "dydx_v4#2", "dydx_v4#3"}


async def test_bybit_topics_listed_past_a_connections_args_limit_get_another_connection() -> None:
    """Bybit caps a public connection at 21,000 characters of args (docs/v5/websocket/
    wss-authentication.mdx; the zh-TW page: summed over the connection). A catalog fetched
    after the start (the bundled 13 linear symbols, then the whole list) was subscribed on
    the one linear socket: past the limit, Bybit refuses the rest. Now they go on another."""
    from purpleflea.ingest.catalog import Catalogs

    catalogs = Catalogs()
    live = catalogs.get("bybit")
    many = [f"C{i:05d}USDT" for i in range(1000)]  # 25,000 characters of topics

    def subscribed(fake: FakeExchange) -> list[str]:
        return [topic for session in fake.sessions for topic in session.topics]

    async with (
        FakeExchange(dialect_for("bybit_linear")) as linear,
        FakeExchange(dialect_for("bybit_inverse")) as inverse,
    ):
        urls = {"bybit_linear": linear.url, "bybit_inverse": inverse.url}
        ingest = _following_ingest("bybit", urls, catalogs)
        await ingest.start()
        try:
            harness = Feeds([])
            bundled = sum(1 for row in live.values() if row.kind == "linear")
            await harness.wait_for(lambda: len(subscribed(linear)) == bundled)
            rows = {s: Instrument(exchange="bybit", symbol=s, kind="linear", contract_size=1.0)
                    for s in many}  # fmt: skip
            live.replace({**live, **rows})
            await harness.wait_for(lambda: len(subscribed(linear)) == bundled + 1000, timeout=8)
            stats = {s["name"]: s for s in ingest.stats()}
        finally:
            await ingest.stop()
    assert linear.violations == []
    assert len(linear.sessions) == 2
    assert sorted(set(subscribed(linear))) == sorted(subscribed(linear))  # each topic once
    assert {"bybit_linear", "bybit_linear#2", "bybit_inverse"} == set(stats)
