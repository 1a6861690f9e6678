"""The SDK stream's reading of batch frames: one pass into events, the same events as frame by
frame, the resume cursor, and a batch it cannot type read the general way."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import msgspec

from purpleflea.client.stream import Stream, _frame
from purpleflea.model import CascadeAlert, Liquidation
from tests.events import stored_event


def _alert(seq: int) -> CascadeAlert:
    return CascadeAlert(
        id=f"ETH-PERP:long:{seq}", status="started", market="ETH-PERP", side="long", score=7,
        peak_score=7, window_usd=1e6, window_s=90, total_usd=1e6, events=12,
        started_at=1_700_000_000_000, updated_at=1_700_000_010_000, duration_s=10.0,
        start_price=3000.0, last_price=2950.0, price_move_pct=-1.67, exchanges=("okx",),
        message="ETH-PERP: cascade", seq=seq,
    )  # fmt: skip


def _batch(items: list[Liquidation | CascadeAlert], *extra: bytes) -> str:
    frames = [
        msgspec.json.encode(
            {"type": "liquidation" if isinstance(i, Liquidation) else "cascade", "data": i}
        )
        for i in items
    ]
    return (b'{"type":"batch","items":[' + b",".join([*frames, *extra]) + b"]}").decode()


def _stream(last_seq: int | None = None) -> Stream:
    stream = Stream.__new__(Stream)  # the decoding only: no client, no socket
    stream.last_seq = last_seq
    return stream


def _general(stream: Stream, raw: str) -> list[Liquidation | CascadeAlert]:
    return list(stream._batch_items(_frame.decode(raw)))


def test_a_batch_reads_in_one_pass_as_frame_by_frame() -> None:
    items: list[Liquidation | CascadeAlert] = [stored_event(1), _alert(2), stored_event(3)]
    raw = _batch(items)
    assert _stream()._batch(raw) == _stream()._batch(raw.encode()) == _general(_stream(), raw)
    assert _general(_stream(), raw) == items


def test_events_at_or_below_the_cursor_are_not_delivered_again() -> None:
    stream = _stream(last_seq=2)
    events = stream._batch(_batch([stored_event(1), stored_event(2), stored_event(3)]))
    assert [e.seq for e in events or []] == [3]


class _Socket:
    """Hands the stream its frames, then nothing (an idle server)."""

    def __init__(self, frames: list[str]) -> None:
        self.frames = frames

    async def recv(self) -> str:
        if self.frames:
            return self.frames.pop(0)
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


async def test_a_consumer_that_stops_mid_batch_resumes_after_what_it_took() -> None:
    # The cursor moves as each event is handed over, not when the frame is read: a consumer
    # that breaks after the first event of a batch has not seen the rest, and a resume from
    # last_seq must send them again.
    stream = _stream()
    stream._ws = cast(Any, _Socket([_batch([stored_event(1), stored_event(2), stored_event(3)])]))
    stream._closed = False
    stream._idle_timeout = 3600.0
    stream.reconnects = 0
    taken = []
    async for event in stream._items():
        taken.append(event.seq)
        break
    assert taken == [1]
    assert stream.last_seq == 1


def test_a_batch_with_an_item_this_sdk_does_not_know_goes_the_general_way() -> None:
    raw = _batch([stored_event(1)], b'{"type":"notice","data":{"text":"new"}}')
    stream = _stream()
    assert stream._batch(raw) is None  # not typed: left to the general path
    assert stream.last_seq is None
    assert _general(stream, raw) == [stored_event(1)]  # which skips the unknown item
    assert _stream()._batch('{"type":"heartbeat","seq":5}') is None
