"""The stream's idle timeout (one timer for every wait): a wait that lasts the timeout ends in
TimeoutError, waits that each end sooner never do however long they add up to, a message
already in the socket when a held loop wakes is returned, and a cancel from elsewhere stays a
cancel."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from purpleflea.idle import IdleTimeout


async def test_a_wait_that_lasts_the_timeout_ends_in_timeout_error() -> None:
    idle = IdleTimeout()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await idle.wait(asyncio.sleep(10), 0.2)
    assert 0.2 <= time.monotonic() - started < 2.0
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0  # its own cancel taken back


async def test_short_waits_never_time_out_however_long_they_add_up_to() -> None:
    # One timer serves every wait: when it fires during a later wait it must re-arm for that
    # wait's own deadline, not end it; and time between waits is the consumer's, not counted.
    idle = IdleTimeout()
    started = time.monotonic()
    while time.monotonic() - started < 0.8:  # the timer comes due in the middle of a wait
        assert await idle.wait(asyncio.sleep(0.12, "message"), 0.2) == "message"
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)  # longer than the timeout, outside any wait
    assert await idle.wait(asyncio.sleep(0.05, "message"), 0.2) == "message"
    with pytest.raises(TimeoutError):  # and the timer still ends a wait that lasts
        await idle.wait(asyncio.sleep(10), 0.2)


async def test_a_cancel_from_elsewhere_is_a_cancel_not_a_timeout() -> None:
    idle = IdleTimeout()
    waiting = asyncio.create_task(idle.wait(asyncio.sleep(10), 0.2))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    # Cancelled by its owner in the same turn of the loop as the timer ends the wait: still
    # the owner's cancel.
    both = asyncio.create_task(idle.wait(asyncio.sleep(10), 30.0))
    await asyncio.sleep(0)  # waiting now
    idle.close()
    idle._deadline = 0.0
    idle._fire(looked=True)  # the timer, come due (and looked again)
    both.cancel()
    with pytest.raises(asyncio.CancelledError):
        await both


async def test_close_cancels_the_pending_timer() -> None:
    idle = IdleTimeout()
    assert await idle.wait(asyncio.sleep(0, "message"), 30.0) == "message"
    assert idle._timer is not None  # armed by the wait, lapsing at its deadline
    idle.close()
    assert idle._timer is None


async def test_a_message_in_the_socket_when_a_held_loop_wakes_is_returned_not_a_timeout() -> None:
    # A consumer's synchronous work (or a starved process) holds the loop past the deadline
    # while the server's heartbeat arrives. In the next turn asyncio reads the socket before
    # it runs the due timer, but the wait wakes only in the turn after: a timer that judged
    # at once ended a wait whose message had come, and the stream reconnected for nothing.
    loop = asyncio.get_running_loop()
    ours, server = socket.socketpair()
    with ours, server:
        ours.setblocking(False)
        idle = IdleTimeout()
        waiting = asyncio.create_task(idle.wait(loop.sock_recv(ours, 100), 0.5))
        await asyncio.sleep(0)  # the wait began: its timer armed, the socket watched
        server.send(b"heartbeat")
        time.sleep(0.7)  # the loop held past the deadline, the message in the socket
        assert await waiting == b"heartbeat"
        idle.close()
