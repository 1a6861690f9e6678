"""HTX liquidation_orders: gzip frames, order side, linear and coin-margined contracts."""

from __future__ import annotations

import gzip
import json

import pytest

from purpleflea.model import Instrument
from purpleflea.venues import FrameError, htx

CATALOG = {
    "BTC-USDT": Instrument(exchange="htx", symbol="BTC-USDT", kind="linear", contract_size=0.001),
    "ETH-USD": Instrument(exchange="htx", symbol="ETH-USD", kind="inverse", contract_size=10.0),
}


def _plain(**overrides: object) -> bytes:
    item: dict[str, object] = {
        "contract_code": "BTC-USDT",
        "direction": "sell",
        "offset": "close",
        "volume": 200,
        "price": 50000,
        "created_at": 1_718_000_000_000,
    }
    item.update(overrides)
    topic = f"public.{item['contract_code']}.liquidation_orders"
    return json.dumps({"op": "notify", "topic": topic, "ts": 1, "data": [item]}).encode()


def test_gzip_and_plain_frames_give_the_same_events() -> None:
    assert htx.normalize(gzip.compress(_plain()), CATALOG) == htx.normalize(_plain(), CATALOG)


def test_sell_order_is_a_long_liquidated_in_linear_contracts() -> None:
    [event] = htx.normalize(gzip.compress(_plain()), CATALOG)
    assert event.side == "long"
    assert event.quantity == pytest.approx(0.2)  # 200 x 0.001 BTC
    assert event.size_usd == pytest.approx(10_000.0)


def test_coin_margined_contracts_are_usd() -> None:
    frame = _plain(contract_code="ETH-USD", direction="buy", volume=231, price=229.95)
    [event] = htx.normalize(frame, CATALOG)
    assert (event.side, event.market, event.size_usd) == ("short", "ETH-PERP", 2310.0)
    assert event.quantity == pytest.approx(2310 / 229.95)


def test_without_catalog_the_exchange_conversions_are_used_if_present() -> None:
    [reported] = htx.normalize(_plain(amount=0.2, trade_turnover=10_000.5))
    assert (reported.quantity, reported.size_usd) == (0.2, 10_000.5)
    [unknown] = htx.normalize(_plain())
    assert (unknown.quantity, unknown.size_usd, unknown.contracts) == (None, None, 200)


def test_delivery_contract_codes_are_dated() -> None:
    assert htx.market("BTC210326") == ("BTC-20210326", 1.0)
    assert htx.market("BTC-USDT-211231") == ("BTC-20211231", 1.0)


def test_control_frames_yield_nothing() -> None:
    assert htx.normalize(gzip.compress(b'{"op":"ping","ts":1718000000000}')) == []
    sub = b'{"op":"sub","cid":"1","topic":"public.*.liquidation_orders","ts":1,"err-code":0}'
    assert htx.normalize(sub) == []


def test_a_live_session_of_2026_09_18() -> None:
    # Frames captured live on 2026-09-18 (belyjelli/ai-rates,
    # apps/collector-go/internal/stream/liquidations_test.go and liqhtx.go), gzipped as sent.
    # HTX quotes the ping's ts but not the ack's; a per-contract subscribe after the wildcard
    # is refused with 2014; the push carries contract_type/pair/business_type/trade_partition.
    ping = b'{"op":"ping","ts":"1789676355591"}'
    ack = (
        b'{"op":"sub","cid":"airates-liq","topic":"public.*.liquidation_orders",'
        b'"ts":1789670081489,"err-code":0}'
    )
    repeated = (
        b'{"op":"sub","cid":"probe-1","topic":"public.BTC-USDT.liquidation_orders",'
        b'"err-code":2014,"err-msg":"Repeated subscription.","ts":1789669865635}'
    )
    push = (
        b'{"op":"notify","topic":"public.ETH-USDT.liquidation_orders","ts":1789670297217,'
        b'"data":[{"symbol":"ETH","contract_code":"ETH-USDT","direction":"buy","offset":"close",'
        b'"volume":500,"price":2446.26,"created_at":1789670297212,"amount":5,'
        b'"trade_turnover":12231.3,"contract_type":"swap","pair":"ETH-USDT",'
        b'"business_type":"swap","trade_partition":"USDT"}]}'
    )
    for control in (ping, ack, repeated):
        assert htx.normalize(gzip.compress(control)) == []
    assert htx.connection.answer(gzip.compress(ping)) == '{"op":"pong","ts":"1789676355591"}'
    eth_usdt = Instrument(exchange="htx", symbol="ETH-USDT", kind="linear", contract_size=0.01)
    [event] = htx.normalize(gzip.compress(push), {"ETH-USDT": eth_usdt})
    assert (event.side, event.market, event.ts, event.contracts) == (
        "short",
        "ETH-PERP",
        1789670297212,
        500,
    )
    assert event.quantity == pytest.approx(5.0)  # 500 x 0.01 ETH = the push's own amount
    assert event.size_usd == pytest.approx(12231.3)  # = its trade_turnover
    [unlisted] = htx.normalize(gzip.compress(push))  # not in the catalog: HTX's own figures
    assert (unlisted.quantity, unlisted.size_usd) == (5.0, 12231.3)


def test_corrupt_and_malformed_frames_raise_frame_error() -> None:
    with pytest.raises(FrameError, match=r"^htx frame: corrupt gzip frame"):
        htx.normalize(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(FrameError, match=r"data\[0\]\.direction is not buy/sell: 'up'"):
        htx.normalize(_plain(direction="up"))


def test_identical_rows_of_one_push_are_two_liquidations() -> None:
    # ``data`` is a list, and public.* pushes every contract's orders: two positions of the same
    # size closed at the same bankruptcy price in the same millisecond are two rows alike. HTX
    # gives no order id, so read as one id the second would be dropped downstream as a duplicate.
    item = {
        "contract_code": "BTC-USDT",
        "direction": "sell",
        "offset": "close",
        "volume": 40,
        "price": 60000,
        "created_at": 1_718_000_000_000,
    }
    push = {"op": "notify", "topic": "public.*.liquidation_orders", "ts": 1, "data": [item, item]}
    first, second = htx.normalize(json.dumps(push).encode(), CATALOG)
    assert first.id == htx.normalize(_plain(volume=40, price=60000), CATALOG)[0].id
    assert second.id == f"{first.id}#2"
    assert first.size_usd == second.size_usd == pytest.approx(2400.0)


# Coin-margined delivery futures, recorded 2020-07-01 (tardis-node test/mappers.test.ts): their
# topic is per coin on wss://api.hbdm.com/notification, which we did not subscribe at all.
_DELIVERY_PUSHES = [
    b'{"op":"notify","topic":"public.BTC.liquidation_orders","ts":1593561769911,"data":[{"symbol":"BTC","contract_code":"BTC200703","direction":"sell","offset":"close","volume":1450,"price":9062.71,"created_at":1593561769833}]}',
    b'{"op":"notify","topic":"public.BTC.liquidation_orders","ts":1593561773080,"data":[{"symbol":"BTC","contract_code":"BTC200925","direction":"sell","offset":"close","volume":319,"price":9115.43,"created_at":1593561773025}]}',
]


def test_delivery_futures_are_subscribed_per_coin_and_sized_in_usd() -> None:
    delivery = {
        code: Instrument(exchange="htx", symbol=code, kind="inverse", contract_size=100.0)
        for code in ("BTC200703", "BTC200925")
    }
    catalog = {**CATALOG, **delivery}
    [futures] = [c for c in htx.connection.connections(catalog) if c.name == "htx_futures"]
    assert futures.url == "wss://api.hbdm.com/notification"
    assert callable(futures.subscribe)
    topics = [json.loads(m)["topic"] for m in futures.subscribe()]
    # Each coin's liquidations, then BTC's contract info: the liveness channel (60 s pushes).
    assert topics == [
        "public.BTC.liquidation_orders",
        "public.ETH.liquidation_orders",
        "public.BTC.contract_info",
    ]
    events = [e for push in _DELIVERY_PUSHES for e in htx.normalize(gzip.compress(push), catalog)]
    assert [(e.market, e.side, e.contracts, e.size_usd) for e in events] == [
        ("BTC-20200703", "long", 1450, 145_000.0),
        ("BTC-20200925", "long", 319, 31_900.0),
    ]
    assert events[0].quantity == pytest.approx(145_000 / 9062.71)


def test_a_gzip_frame_that_inflates_past_the_frame_limit_is_refused_unread() -> None:
    # 16 MB on the wire is websockets' limit; gzip of zeros packs ~1000:1, so a frame inside
    # it would inflate to gigabytes. The inflater stops at the limit instead.
    from purpleflea.venues._frame import MAX_FRAME_BYTES

    bomb = gzip.compress(b" " * (MAX_FRAME_BYTES + 1))
    assert len(bomb) < MAX_FRAME_BYTES // 100
    with pytest.raises(FrameError, match=r"^htx frame: gzip frame inflates past 16777216 bytes"):
        htx.normalize(bomb)
    whole = gzip.compress(b" " * (MAX_FRAME_BYTES - 100) + b"[]")
    with pytest.raises(FrameError, match="unexpected shape"):  # inflated, then read
        htx.normalize(whole)
    two_members = gzip.compress(b'{"op":"ping",') + gzip.compress(b'"ts":1}')
    assert htx.normalize(two_members) == []  # read whole, as gzip.decompress would
