"""The blocking client's stream: items as the async stream yields them, errors raised in the
caller's thread, and leaving the loop closes the connection at once, even on a quiet stream."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import pytest

import purpleflea
from purpleflea.model import Liquidation
from tests.server.conftest import Running, venue_event


async def _until(condition: object, timeout: float = 10.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def _end_consumer(live: Running, reader: asyncio.Task[None], stop: threading.Event) -> None:
    """A consumer thread still waiting for an item after a failed check is ended by revoking
    its key (the stream raises in its thread): a blocked thread would otherwise hold the event
    loop's shutdown, and the whole run, for ever (pytest-timeout does not reach it there)."""
    if reader.done():
        return
    stop.set()
    live.server.keys.revoke(live.server.gate.authenticate(live.key).key_id)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(reader, 20)


@pytest.mark.timing
async def test_sync_stream_yields_filtered_events_and_closes_when_left(live: Running) -> None:
    started = threading.Event()
    stop = threading.Event()
    seen: list[Liquidation] = []

    def consume() -> None:
        with purpleflea.SyncLiquidationClient(live.key, live.url) as client:
            for item in client.stream(min_usd=100_000, markets="ETH-PERP"):
                assert isinstance(item, Liquidation)
                seen.append(item)
                started.set()
                if len(seen) == 2:
                    stop.wait(10)  # hold the connection open until the test has looked
                    break

    reader = asyncio.create_task(asyncio.to_thread(consume))
    try:
        await _until(lambda: live.server.gate.streams.open_for("tester") == 1)
        await live.push(
            venue_event(market="ETH-PERP", size_usd=5_000.0),  # below min_usd
            venue_event(market="BTC-PERP"),  # another market
            venue_event(market="ETH-PERP"),
            venue_event(market="ETH-PERP"),
        )
        await asyncio.to_thread(started.wait, 10)
        await _until(lambda: len(seen) == 2)
        assert live.server.gate.streams.open_for("tester") == 1
        stop.set()
        await asyncio.wait_for(reader, 10)
    finally:
        await _end_consumer(live, reader, stop)
    # No further event arrives, yet the stream is gone: breaking out closed it.
    await _until(lambda: live.server.gate.streams.open_for("tester") == 0, 5)
    assert [(e.market, e.size_usd) for e in seen] == [("ETH-PERP", 150_000.0)] * 2


async def test_sync_stream_raises_a_bad_key_in_the_caller_s_thread(live: Running) -> None:
    def consume() -> None:
        with purpleflea.SyncLiquidationClient("pf_not_a_key", live.url) as client:
            next(iter(client.stream()))

    with pytest.raises(purpleflea.AuthenticationError):
        await asyncio.wait_for(asyncio.to_thread(consume), 20)
