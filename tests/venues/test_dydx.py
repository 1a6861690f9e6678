"""dYdX v4 trades: only LIQUIDATED trades, taker side is the liquidation order."""

from __future__ import annotations

import json

import pytest

from purpleflea.venues import FrameError, dydx
from purpleflea.venues.venue import Connection


def _trade(**overrides: object) -> dict[str, object]:
    trade: dict[str, object] = {
        "id": "t-1",
        "size": "0.5",
        "price": "3000",
        "side": "SELL",
        "createdAt": "2024-06-10T08:00:01.250Z",
        "type": "LIQUIDATED",
    }
    trade.update(overrides)
    return trade


def _frame(*trades: dict[str, object], kind: str = "channel_data") -> bytes:
    message = {"type": kind, "channel": "v4_trades", "id": "ETH-USD"}
    message["contents"] = {"trades": list(trades)}  # type: ignore[assignment]
    return json.dumps(message).encode()


def test_liquidated_sell_is_a_long_liquidated() -> None:
    [event] = dydx.normalize(_frame(_trade()))
    assert event.side == "long"
    assert event.market == "ETH-PERP"
    assert event.size_usd == 1500.0
    assert event.ts == 1_718_006_401_250
    assert event.id == "dydx_v4:t-1"
    assert not event.replay


def test_only_liquidated_trades_count() -> None:
    assert dydx.normalize(_frame(_trade(type="DELEVERAGED"))) == []  # ADL, not a liquidation
    assert dydx.normalize(_frame(_trade(type="LIMIT"))) == []


def test_subscribed_history_is_replayed() -> None:
    [event] = dydx.normalize(_frame(_trade(side="BUY"), kind="subscribed"))
    assert (event.side, event.replay) == ("short", True)


def test_batched_contents_are_read() -> None:
    contents = [{"trades": [_trade(id="a")]}, {"trades": [_trade(id="b")]}]
    message = {"type": "channel_batch_data", "channel": "v4_trades", "id": "ETH-USD"}
    frame = json.dumps({**message, "contents": contents}).encode()
    assert [e.trade_id for e in dydx.normalize(frame)] == ["a", "b"]


def test_control_frames_yield_nothing() -> None:
    assert dydx.normalize(b'{"type":"connected","connection_id":"c","message_id":0}') == []
    assert dydx.normalize(b'{"type":"unsubscribed","channel":"v4_trades","id":"ETH-USD"}') == []
    assert dydx.normalize(b'{"type":"error","message":"Invalid subscribe message"}') == []


def test_malformed_trades_raise_frame_error_naming_the_field() -> None:
    with pytest.raises(FrameError, match=r"^dydx_v4 frame: contents\.trades\[0\]\.createdAt"):
        dydx.normalize(_frame(_trade(createdAt="yesterday")))
    with pytest.raises(FrameError, match="has no time zone"):
        dydx.normalize(_frame(_trade(createdAt="2024-06-10T08:00:01")))
    with pytest.raises(FrameError, match=r"side is not BUY/SELL: 'HOLD'"):
        dydx.normalize(_frame(_trade(side="HOLD")))


def test_live_frames_of_2026_09_17() -> None:
    # Captured live (belyjelli/ai-rates, apps/collector-go/internal/stream/liquidations_test.go;
    # connection ids shortened there to "x"): indexer version 2.4.0, trades with createdAtHeight.
    def trade(message_id: int, ticker: str, body: str) -> bytes:
        return (
            f'{{"type":"channel_data","connection_id":"x","message_id":{message_id},'
            f'"id":"{ticker}","channel":"v4_trades","version":"2.4.0",'
            f'"contents":{{"trades":[{body}]}}}}'
        ).encode()

    liquidated = trade(
        7,
        "BTC-USD",
        '{"id":"064e89330000000200000002","side":"SELL","size":"0.0004","price":"75974",'
        '"type":"LIQUIDATED","createdAt":"2026-09-17T13:39:47.542Z","createdAtHeight":"105810227"}',
    )
    limit = trade(
        8,
        "BTC-USD",
        '{"id":"064f03900000000200000005","side":"SELL","size":"0.0002","price":"76467",'
        '"type":"LIMIT","createdAt":"2026-09-17T19:18:42.257Z","createdAtHeight":"105841552"}',
    )
    deleveraged = trade(
        9,
        "ETH-USD",
        '{"id":"064e89330000000200000009","side":"BUY","size":"1.5","price":"2460",'
        '"type":"DELEVERAGED","createdAt":"2026-09-17T13:40:00.000Z","createdAtHeight":"105810230"}',
    )
    [event] = dydx.normalize(liquidated)
    assert (event.side, event.market, event.ts) == ("long", "BTC-PERP", 1789652387542)
    assert event.size_usd == pytest.approx(0.0004 * 75974)
    assert event.id == "dydx_v4:064e89330000000200000002"
    for nothing in (
        limit,
        deleveraged,
        b'{"type":"connected","connection_id":"x","message_id":0}',
        b'{"type":"error","message":"Invalid channel","connection_id":"x"}',
    ):
        assert dydx.normalize(nothing) == []


def _messages(connection: Connection) -> tuple[str, ...]:
    """What ``connection`` sends on connecting, built now (as the runner does)."""
    subscribe = connection.subscribe
    return subscribe if isinstance(subscribe, tuple) else subscribe()


def test_every_connection_has_one_block_height_heartbeat_and_at_most_32_markets() -> None:
    """The indexer allows 32 v4_trades and one v4_block_height subscription per connection
    (v4-chain socks config); the heartbeat is what lets the watchdog call a quiet connection
    of small markets alive and a dead one dead within a minute (it waited 600 s). The
    markets are spread evenly, leaving places for markets listed later."""
    from typing import cast

    from purpleflea.model import Catalog
    from purpleflea.venues.dydx.connection import SPARE_PLACES, connections

    markets = [f"C{i:02d}-USD" for i in range(70)]
    specs = connections(cast(Catalog, dict.fromkeys(markets)))
    subscribes = [_messages(spec) for spec in specs]
    assert [len(messages) for messages in subscribes] == [25, 24, 24]  # 24 + 23 + 23 markets
    assert sum(33 - len(messages) for messages in subscribes) >= SPARE_PLACES
    seen = []
    for spec, messages in zip(specs, subscribes, strict=True):
        heartbeat, *trades = (json.loads(m) for m in messages)
        assert heartbeat == {"type": "subscribe", "channel": "v4_block_height"}
        assert all(t["channel"] == "v4_trades" for t in trades)
        seen += [t["id"] for t in trades]
        assert spec.silence_timeout <= 60
    assert seen == markets


def test_markets_listed_after_the_build_take_free_places_and_never_move() -> None:
    """dYdX lists markets at any time (permissionless listings); the connections are built
    once a process. Before, a market listed after the build was never subscribed until the
    process restarted: each connection's subscribe now takes listed markets into its free
    places, the emptiest connection first, each market on one connection for good."""
    from purpleflea.ingest.catalog import LiveCatalog
    from purpleflea.model import Instrument
    from purpleflea.venues.dydx.connection import connections

    def row(market: str) -> Instrument:
        return Instrument(exchange="dydx_v4", symbol=market, kind="linear", contract_size=1.0)

    catalog = LiveCatalog({f"C{i:02d}-USD": row(f"C{i:02d}-USD") for i in range(70)})
    specs = connections(catalog)

    def markets(index: int) -> list[str]:
        return [json.loads(m)["id"] for m in _messages(specs[index])[1:]]

    # Listed since: the first goes to the emptiest connection (the second, 23 markets), the
    # next to the other one with 23, then a market that sorts before them all.
    for market in ("ZZ1-USD", "ZZ2-USD", "AAA-USD"):
        catalog.replace({**catalog, market: row(market)})
        for index in range(len(specs)):
            markets(index)  # each connection looks as the runner does
    found = {index: markets(index) for index in range(len(specs))}
    assert found[1][-1:] == ["ZZ1-USD"]
    assert found[2][-1:] == ["ZZ2-USD"]
    assert found[0][-1:] == ["AAA-USD"]
    every = [market for index in found for market in found[index]]
    assert len(every) == len(set(every)) == 73
    assert all(len(found[index]) <= 32 for index in found)
    # Full: the markets with no free place left go to a connection of their own, which the
    # first connection's ``more`` gives the ingest to open (before, they waited for a restart).
    more = {f"N{i:02d}-USD": row(f"N{i:02d}-USD") for i in range(30)}
    catalog.replace({**catalog, **more})
    found = {index: markets(index) for index in range(len(specs))}
    assert [len(found[index]) for index in found] == [32, 32, 32]
    assert specs[0].more is not None
    assert specs[1].more is None
    [opened] = specs[0].more()
    assert opened.name == "dydx_v4#4"
    # 23 took the free places (32 - 25, 32 - 24, 32 - 24), the 7 after them have their own.
    assert [json.loads(m)["id"] for m in _messages(opened)[1:]] == [
        f"N{i:02d}-USD" for i in range(23, 30)
    ]
    assert [c.name for c in specs[0].more()] == ["dydx_v4#4"]  # the same, asked again
