"""Contracts OKX pushes on the liquidation socket size the liquidations after them at once.

OKX changes a contract's value (``ctVal``) while the contract's trading is suspended ("Adjustment
of Face Value for USDT-margined Perpetual Swap & Futures Trading", okx.com help, 2020-03-04:
ETHUSDT 0.001 -> 0.1 ETH, BTCUSDT 0.0001 -> 0.01 BTC, trading suspended about 30 minutes), and
no liquidation push carries the value. Before, the change reached the catalog at the next
hourly REST fetch: the liquidations in between were sized with the old value (quantity and USD
off by the ratio, 100 times there), and the fetch only logged a WARNING saying so. OKX's
``instruments`` channel pushes the whole list on subscribe and every contract whose state
changes after ("When trading resumes, the instrument status will be changed to live", OKX v5
docs, Instruments Channel): the liquidation connection now subscribes it and merges each push
into the catalog before the next frame is read.

Venues whose contract size can change and where we read it (docs/live.md, "What it connects
to"): OKX (above; by the push now), Gate ``quanto_multiplier``, BitMEX ``multiplier``, HTX
``contract_size`` (hourly REST fetch: no announcement of a change was found for these).
"""

from __future__ import annotations

import asyncio
import json

import pytest

from purpleflea.ingest import feeds
from purpleflea.model import Instrument
from tests.fakes.exchanges import FakeExchange, Okx
from tests.fakes.harness import Feeds, catalogs_for_tests, fast


def instrument(inst_id: str, ct_val: str, state: str = "live") -> dict[str, str]:
    """One row of OKX's instrument list, the fields of its docs' push example."""
    coin = inst_id.split("-", maxsplit=1)[0]
    return {
        "instType": "SWAP",
        "instId": inst_id,
        "uly": f"{coin}-USDT",
        "instFamily": f"{coin}-USDT",
        "settleCcy": "USDT",
        "ctVal": ct_val,
        "ctMult": "1",
        "ctValCcy": coin,
        "ctType": "linear",
        "state": state,
    }


def liquidation(inst_id: str, ts: int) -> str:
    detail = {"side": "sell", "posSide": "net", "bkPx": "2.5", "sz": "4", "ts": str(ts)}
    item = {"instId": inst_id, "instType": "SWAP", "details": [detail]}
    return json.dumps(
        {"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": [item]}
    )


async def _send(fake: FakeExchange, frame: str) -> None:
    """``frame`` to the subscribed socket, once it counts as subscribed there (the fake sets
    its session's event before it adds the socket to those it broadcasts to)."""
    while await fake.broadcast(frame) == 0:
        await asyncio.sleep(0.01)


async def _run(dialect: Okx, *frames: str | dict[str, object], events: int) -> Feeds:
    """``frames`` broadcast on the OKX connection (a dict: an ``instruments`` push of it),
    each after the events before it were received."""
    catalogs = catalogs_for_tests()
    live = catalogs.get("okx")
    old = Instrument(exchange="okx", symbol="XRP-USDT-SWAP", kind="linear", contract_size=100.0)
    live.replace({**live, old.symbol: old})
    async with FakeExchange(dialect) as fake:
        [spec] = feeds.build_feeds(catalogs, ["okx"], {"okx": fake.url})
        async with Feeds([fast(spec)]) as run:
            await run.wait_for(lambda: bool(fake.sessions) and fake.sessions[0].subscribed.is_set())
            for frame in frames:
                arg = {"channel": "instruments", "instType": "SWAP"}
                text = (
                    json.dumps({"arg": arg, "data": [frame]}) if isinstance(frame, dict) else frame
                )
                await _send(fake, text)
            await run.wait_for(lambda: len(run.received) + run.stats["okx"].unsized == events)
    assert fake.violations == []
    return run


async def test_a_contract_value_okx_pushes_sizes_the_liquidations_after_it() -> None:
    dialect = Okx()
    dialect.instruments = [instrument("XRP-USDT-SWAP", "100")]  # the first push: as we have it
    run = await _run(
        dialect,
        liquidation("XRP-USDT-SWAP", 1_700_000_000_001),
        # Suspended, its value adjusted to 10 XRP, live again: OKX pushes the contract.
        instrument("XRP-USDT-SWAP", "10"),
        liquidation("XRP-USDT-SWAP", 1_700_000_000_002),
        events=2,
    )
    # 400.0 for both before: the new value waited for the hourly fetch.
    assert [e.quantity for e in run.received] == [400.0, 40.0]


async def test_a_contract_listed_since_the_last_fetch_is_sized_from_the_subscribe_push() -> None:
    dialect = Okx()
    dialect.instruments = [instrument("XRP-USDT-SWAP", "100"), instrument("NEW-USDT-SWAP", "5")]
    run = await _run(dialect, liquidation("NEW-USDT-SWAP", 1_700_000_000_001), events=1)
    # Before: dropped as unsized until the next fetch (early, at most once in 5 minutes).
    assert run.stats["okx"].unsized == 0
    assert [e.quantity for e in run.received] == [20.0]


async def test_bitmex_quanto_liquidations_are_sized_at_the_xbt_price_pushed_on_the_socket() -> None:
    """A BitMEX quanto (ETHUSD) settles in XBT: USD = contracts x multiplier x price x XBT's
    USD price (EXCHANGES.md, BitMEX). The catalog took XBT's price from XBTUSD's mark at its
    hourly fetch; XBTUSD's instrument row, pushed on the same socket about every second (the
    connection's liveness channel), now sets it as it moves. The push's mark here is the
    recorded 8,773.99 (altangent/ccxws issue 98); the fetch's 10,000 is an hour old."""
    from tests.fakes.exchanges import Bitmex

    catalogs = catalogs_for_tests()
    live = catalogs.get("bitmex")
    ethusd = Instrument(
        exchange="bitmex", symbol="ETHUSD", kind="quanto", contract_size=1e-6, settle_usd=10_000
    )
    live.replace({**live, "ETHUSD": ethusd})
    row = {"orderID": "e1", "symbol": "ETHUSD", "side": "Buy", "price": 200, "leavesQty": 1000}
    insert = json.dumps({"table": "liquidation", "action": "insert", "data": [row]})
    async with FakeExchange(Bitmex()) as fake:
        [spec] = feeds.build_feeds(catalogs, ["bitmex"], {"bitmex": fake.url})
        async with Feeds([fast(spec)]) as run:
            await run.wait_for(lambda: bool(fake.sessions) and fake.sessions[0].liveness_pushes > 0)
            await _send(fake, insert)
            await run.wait_for(lambda: len(run.received) == 1)
    [event] = run.received
    # 1,000 contracts x 1e-6 XBT x 200 = 0.2 XBT; at 8,773.99 USD (2,000.0 before: 10,000).
    assert event.size_usd == pytest.approx(0.2 * 8773.99)
    assert live["ETHUSD"].settle_usd == 8773.99
    assert fake.violations == []
