"""The blocking stream hands the caller's thread every event its thread read in one go as one
handoff: the events in order, the stream's end (an error) after them, and its buffer bounded
in events, not in handoffs."""

from __future__ import annotations

import asyncio
import queue

import pytest
from websockets.asyncio.server import ServerConnection

from purpleflea.client import AuthenticationError, SyncLiquidationClient
from purpleflea.client.sync import _Handoff
from tests.client.test_stream_receive import _batch, _event, _server
from tests.events import stored_event


async def test_events_read_together_come_in_order_and_an_error_after_them() -> None:
    async def handler(ws: ServerConnection, _: dict[str, object]) -> None:
        await ws.send(_batch(range(1, 41)))
        for seq in range(41, 44):
            await ws.send(_event(seq))
        await ws.send('{"type":"error","code":"key_revoked","message":"key revoked"}')
        await ws.wait_closed()

    def consume(url: str) -> tuple[list[int], BaseException | None]:
        seqs: list[int] = []
        with SyncLiquidationClient(api_key="pf_test", base_url=url) as client:
            try:
                for event in client.stream():
                    seqs.append(event.seq)
            except AuthenticationError as exc:
                return seqs, exc
        return seqs, None

    async with _server(handler) as (url, _):
        seqs, error = await asyncio.wait_for(asyncio.to_thread(consume, url), 30)
    assert seqs == list(range(1, 44))
    assert isinstance(error, AuthenticationError)
    assert error.code == "key_revoked"


def test_the_buffer_is_bounded_in_events_passed_by_at_most_one_handoff() -> None:
    handoff = _Handoff(4)
    handoff.put(None)  # subscribed: counts as one
    handoff.put_nowait([stored_event(1), stored_event(2)])
    assert (handoff.qsize(), handoff.full()) == (3, False)
    handoff.put_nowait([stored_event(seq) for seq in (3, 4, 5)])  # room for one: taken whole
    assert (handoff.qsize(), handoff.full()) == (6, True)
    with pytest.raises(queue.Full):
        handoff.put_nowait([stored_event(6)])
    assert handoff.get_nowait() is None
    assert [e.seq for e in handoff.get_nowait() or []] == [1, 2]
    assert (handoff.qsize(), handoff.full()) == (3, False)
