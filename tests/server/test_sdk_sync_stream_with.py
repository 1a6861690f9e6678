"""The blocking stream held as the async one is: ``with liq.stream(...) as stream: for item in
stream`` (the README's ``async with`` example without ``async``) raised "TypeError: 'generator'
object does not support the context manager protocol"; leaving the block closes the stream.

Entering the block subscribes, as ``async with`` does: an event published once the block is
entered arrives (the stream used to connect only at the first ``next()``, so one published in
between was never sent)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

import purpleflea
from purpleflea.model import Liquidation
from tests.server.conftest import Running, venue_event
from tests.server.test_sdk_sync_stream import _until

Seen = list[Liquidation | purpleflea.CascadeAlert]


@asynccontextmanager
async def _consumer(live: Running, consume: Callable[[], None]) -> AsyncIterator[threading.Thread]:
    """Run ``consume`` on a daemon thread: one still waiting for an item when the test
    fails is ended by revoking the key (its stream raises), and being a daemon it cannot
    hold the event loop's shutdown, and the whole session, for ever (a pytest session hung
    25 minutes on this test's consumer, blocked in ``next()``, when its event was lost)."""
    reader = threading.Thread(target=consume, name="test-consumer", daemon=True)
    reader.start()
    try:
        yield reader
    finally:
        if reader.is_alive():
            live.server.keys.revoke(live.server.gate.authenticate(live.key).key_id)
            await asyncio.to_thread(reader.join, 20)  # the server must run meanwhile


def _first_item(live: Running, seen: Seen, got_one: threading.Event) -> Callable[[], None]:
    def consume() -> None:
        with (
            purpleflea.SyncLiquidationClient(live.key, live.url) as client,
            client.stream(markets="ETH-PERP", channels=["liquidations", "cascades"]) as stream,
        ):
            for item in stream:
                seen.append(item)
                got_one.set()
                break

    return consume


async def test_sync_stream_in_a_with_block_yields_and_closes_on_leaving(live: Running) -> None:
    got_one = threading.Event()
    seen: Seen = []
    async with _consumer(live, _first_item(live, seen, got_one)) as reader:
        await _until(lambda: live.server.gate.streams.open_for("tester") == 1)
        await live.push(venue_event(market="ETH-PERP"))
        assert await asyncio.to_thread(got_one.wait, 10), "the event never arrived"
        await asyncio.to_thread(reader.join, 10)
        assert not reader.is_alive()
    await _until(lambda: live.server.gate.streams.open_for("tester") == 0, 5)
    assert [(e.market, e.side) for e in seen] == [("ETH-PERP", "long")]


async def test_entering_the_block_subscribes_so_a_later_event_arrives(live: Running) -> None:
    entered, pushed = threading.Event(), threading.Event()
    seen: Seen = []

    def consume() -> None:
        with (
            purpleflea.SyncLiquidationClient(live.key, live.url) as client,
            client.stream(markets="ETH-PERP") as stream,
        ):
            entered.set()
            pushed.wait(10)  # the event is out before the first next()
            seen.append(next(stream))

    async with _consumer(live, consume) as reader:
        assert await asyncio.to_thread(entered.wait, 10)
        await live.push(venue_event(market="ETH-PERP"))
        pushed.set()
        await asyncio.to_thread(reader.join, 10)
        assert not reader.is_alive(), "the event published after entering never arrived"
    assert [e.market for e in seen] == ["ETH-PERP"]


async def test_entering_the_block_with_a_bad_key_raises_there(live: Running) -> None:
    def enter() -> None:
        with (
            purpleflea.SyncLiquidationClient("pf_not_a_key", live.url) as client,
            client.stream(),
        ):
            pass

    with pytest.raises(purpleflea.AuthenticationError):
        await asyncio.wait_for(asyncio.to_thread(enter), 20)
