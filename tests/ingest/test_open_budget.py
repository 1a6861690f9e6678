"""A venue's cap on new connections a minute holds across its feeds' reconnects."""

from __future__ import annotations

import asyncio
import time

from websockets.asyncio.server import ServerConnection, serve

from purpleflea.ingest.backoff import Backoff
from purpleflea.ingest.connection import run_feed
from purpleflea.ingest.feed_spec import FeedSpec
from purpleflea.ingest.open_budget import OpenBudget


def test_slots_are_taken_up_to_the_cap_and_free_again_a_window_later() -> None:
    now = [0]
    budget = OpenBudget(2, clock=lambda: now[0])
    assert budget.try_take()
    now[0] = 30_000
    assert budget.try_take()
    assert not budget.try_take()
    assert budget.left() == 0
    now[0] = 60_000  # the first open ages out, the second not yet
    assert budget.left() == 1
    now[0] = 90_000
    assert budget.left() == 2


async def test_feeds_sharing_a_budget_never_open_more_than_it_allows() -> None:
    """Hyperliquid allows 30 new connections a minute per IP; its feeds reconnect on their own
    (a backoff from half a second: ~7 tries a minute each, 11 connections). During an outage
    (here: every connection closed at once) the opens of all feeds together stay within the
    cap of every window, and the feeds go on reconnecting as slots free up."""
    accepted: list[float] = []

    async def handler(ws: ServerConnection) -> None:
        accepted.append(time.monotonic())
        await ws.close(1013, "try again later")

    window_ms, cap = 400, 4
    budget = OpenBudget(cap, clock=lambda: int(time.monotonic() * 1000), window_ms=window_ms)
    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        tasks = [
            asyncio.create_task(
                run_feed(
                    FeedSpec(
                        name=f"hyperliquid_user_{i}",
                        exchange="hyperliquid",
                        url=f"ws://127.0.0.1:{port}",
                        normalize=lambda frame: [],
                    ),
                    lambda event, at: None,
                    backoff=Backoff(base=0.01, cap=0.02),
                    opens=budget,
                )
            )
            for i in range(3)
        ]
        await asyncio.sleep(1.3)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    # Without the budget three feeds made ~50 opens each in this time.
    assert 2 * cap <= len(accepted) <= 4 * cap, accepted
    # A take comes before its handshake, so an accept may trail its slot by a few ms.
    span = (window_ms - 60) / 1000
    for i, t in enumerate(accepted):
        assert sum(t <= u < t + span for u in accepted[i:]) <= cap, accepted
    assert budget.waited > 0
