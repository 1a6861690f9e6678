"""The SDK stream reads one event's or alert's frame in one pass, as it reads a batch: the same
item as the general path (frame, then its data), the cursor applied, anything else left to the
general path."""

from __future__ import annotations

import msgspec
import pytest

from purpleflea.bus.base import cascade_frame, liquidation_frame
from purpleflea.client.stream import Stream, _frame
from tests.events import stored_alert, stored_event


def _stream(last_seq: int | None = None) -> Stream:
    stream = Stream.__new__(Stream)  # the decoding only: no client, no socket
    stream.last_seq = last_seq
    return stream


def test_a_single_frame_reads_in_one_pass_as_the_general_path_reads_it() -> None:
    event, alert = stored_event(7), stored_alert(8)
    for item, raw in ((event, liquidation_frame(event)), (alert, cascade_frame(alert))):
        assert _stream()._batch(raw) == _stream()._batch(raw.decode()) == [item]
        assert _stream()._item(_frame.decode(raw)) == [item]
    # The type need not come first: read by its tag wherever it is.
    assert _stream()._batch(b'{"data":' + msgspec.json.encode(event) + b',"type":"liquidation"}')
    assert _stream()._batch(liquidation_frame(event)) == [event]


def test_a_single_frame_at_or_below_the_cursor_is_not_delivered_again() -> None:
    raw = liquidation_frame(stored_event(7))
    assert _stream(last_seq=7)._batch(raw) == []
    assert _stream(last_seq=6)._batch(raw) == [stored_event(7)]


def test_other_frames_go_the_general_way_and_a_bad_event_still_raises() -> None:
    for raw in (
        b'{"type":"heartbeat","seq":5,"ts":1}',
        b'{"type":"error","code":"slow_consumer","message":"behind"}',
        b'{"type":"liquidation"}',  # no data: the general path skips it
        b'{"type":"notice","data":{"text":"new"}}',
    ):
        assert _stream()._batch(raw) is None
    assert _stream()._item(_frame.decode(b'{"type":"liquidation"}')) == []
    bad = b'{"type":"liquidation","data":{"seq":"x"}}'
    assert _stream()._batch(bad) is None
    with pytest.raises(msgspec.ValidationError):  # as before: the consumer sees it
        _stream()._item(_frame.decode(bad))
