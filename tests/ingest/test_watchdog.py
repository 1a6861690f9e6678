"""The silence watchdog (ingest/watchdog.py) against a real WebSocket on a stalled loop.

A loop that was held past the deadline (a long garbage-collector pass, a starved process)
finds, in its next turn, both the venue's frame in the socket and the watchdog's timer due.
asyncio reads the socket first, but the receive loop only wakes in the turn after: a
watchdog that judged in that first turn ended a connection whose frame had arrived, as
silent, and the frames after it were lost with the socket.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

from purpleflea.ingest.watchdog import Watchdog

TIMEOUT_S = 0.2


@pytest.fixture
async def pair() -> AsyncIterator[tuple[ServerConnection, ClientConnection]]:
    """A venue's end and our end of one WebSocket."""
    accepted: asyncio.Queue[ServerConnection] = asyncio.Queue()
    done = asyncio.Event()

    async def handler(venue: ServerConnection) -> None:
        accepted.put_nowait(venue)
        await done.wait()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}") as ours:
            yield await accepted.get(), ours
            done.set()


def stall(seconds: float) -> None:
    """Hold the whole event loop, as a long synchronous step does."""
    time.sleep(seconds)


@pytest.mark.parametrize("clock", ["frame", "data"])
async def test_a_frame_in_the_socket_when_a_stalled_loop_wakes_keeps_the_connection(
    pair: tuple[ServerConnection, ClientConnection], clock: str
) -> None:
    venue, ours = pair
    data_timeout = TIMEOUT_S if clock == "data" else None
    watchdog = Watchdog(TIMEOUT_S if clock == "frame" else 60.0, data_timeout)
    async with asyncio.timeout(None) as scope:
        watchdog.start(scope)
        await venue.send("liquidation")  # in our socket now, not read: the loop is ours
        stall(TIMEOUT_S * 1.5)  # the deadline passes with the frame waiting
        assert await ours.recv() == "liquidation"
        watchdog.last_frame = watchdog.last_data = time.monotonic()  # what the runner stamps
        await asyncio.sleep(0.01)  # the receive loop's next wait
    watchdog.cancel()
    assert not watchdog.expired, watchdog.expired_by


async def test_silence_past_the_deadline_still_ends_the_connection(
    pair: tuple[ServerConnection, ClientConnection],
) -> None:
    _, ours = pair
    watchdog = Watchdog(TIMEOUT_S)

    async def receive_after_a_stall() -> None:
        async with asyncio.timeout(None) as scope:
            watchdog.start(scope)
            stall(TIMEOUT_S * 1.5)  # nothing waits in the socket this time
            await ours.recv()

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await receive_after_a_stall()
    watchdog.cancel()
    assert watchdog.expired_by == "frame"
    assert time.monotonic() - started < 10 * TIMEOUT_S
