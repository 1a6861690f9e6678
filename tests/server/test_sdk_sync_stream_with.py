"""The blocking stream held as the async one is: ``with liq.stream(...) as stream: for item in
stream`` (the README's ``async with`` example without ``async``) raised "TypeError: 'generator'
object does not support the context manager protocol"; leaving the block closes the stream."""

from __future__ import annotations

import asyncio
import threading

import purpleflea
from purpleflea.model import Liquidation
from tests.server.conftest import Running, venue_event
from tests.server.test_sdk_sync_stream import _until


async def test_sync_stream_in_a_with_block_yields_and_closes_on_leaving(live: Running) -> None:
    got_one = threading.Event()
    seen: list[Liquidation | purpleflea.CascadeAlert] = []

    def consume() -> None:
        with (
            purpleflea.SyncLiquidationClient(live.key, live.url) as client,
            client.stream(markets="ETH-PERP", channels=["liquidations", "cascades"]) as stream,
        ):
            for item in stream:
                seen.append(item)
                got_one.set()
                break

    reader = asyncio.create_task(asyncio.to_thread(consume))
    await _until(lambda: live.server.gate.streams.open_for("tester") == 1)
    await live.push(venue_event(market="ETH-PERP"))
    await asyncio.to_thread(got_one.wait, 10)
    await asyncio.wait_for(reader, 10)
    await _until(lambda: live.server.gate.streams.open_for("tester") == 0, 5)
    assert [(e.market, e.side) for e in seen] == [("ETH-PERP", "long")]
