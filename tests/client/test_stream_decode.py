"""The SDK stream's reading of batch frames: one pass into events, the same events as frame by
frame, the resume cursor, and a batch it cannot type read the general way."""

from __future__ import annotations

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
    return [e for item in _frame.decode(raw).items for e in stream._item(_frame.decode(item))]


def test_a_batch_reads_in_one_pass_as_frame_by_frame() -> None:
    items: list[Liquidation | CascadeAlert] = [stored_event(1), _alert(2), stored_event(3)]
    raw = _batch(items)
    fast, general = _stream(), _stream()
    assert fast._batch(raw) == _general(general, raw) == items
    assert fast.last_seq == general.last_seq == 3
    assert fast._batch(raw.encode()) == []  # bytes too; all at or below the cursor now


def test_events_at_or_below_the_cursor_are_not_delivered_again() -> None:
    stream = _stream(last_seq=2)
    events = stream._batch(_batch([stored_event(1), stored_event(2), stored_event(3)]))
    assert [e.seq for e in events or []] == [3]
    assert stream.last_seq == 3


def test_a_batch_with_an_item_this_sdk_does_not_know_goes_the_general_way() -> None:
    raw = _batch([stored_event(1)], b'{"type":"notice","data":{"text":"new"}}')
    stream = _stream()
    assert stream._batch(raw) is None  # not typed: left to the general path
    assert stream.last_seq is None
    assert _general(stream, raw) == [stored_event(1)]  # which skips the unknown item
    assert _stream()._batch('{"type":"heartbeat","seq":5}') is None
