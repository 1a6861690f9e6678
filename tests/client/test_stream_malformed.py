"""A frame the SDK cannot read (not JSON, an event with a field of the wrong type, a batch
item that is no event) is skipped, counted in ``Stream.dropped`` and logged with what was
wrong: the events around it still come, and the consumer's loop does not end on it. Fields
and frame types a newer server adds are read past, not counted."""

from __future__ import annotations

import logging

import msgspec
import pytest
from websockets.asyncio.server import ServerConnection, serve

from purpleflea.client import LiquidationClient, PurpleFleaError, ServerUnreachableError
from purpleflea.client.stream import Stream
from tests.client.test_stream_receive import _batch, _event, _server
from tests.events import stored_event


def _with_unknown_field(seq: int) -> str:
    data = msgspec.to_builtins(stored_event(seq))
    data["venue_note"] = {"from": "a newer server"}
    return msgspec.json.encode({"type": "liquidation", "data": data, "trace": 7}).decode()


async def test_a_frame_it_cannot_read_is_skipped_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(ws: ServerConnection, _: dict[str, object]) -> None:
        await ws.send(_event(1))
        await ws.send('{"type":"batch","items":[\x1b[2J')  # not JSON (and a terminal code)
        await ws.send('{"type":"liquidation","data":{"seq":"x"}}')  # seq is no number
        # A batch with one item that is no event: the others still come.
        bad_item = '{"type":"liquidation","data":{"id":5}}'
        await ws.send(_batch(range(2, 3))[:-2] + "," + bad_item + "," + _event(3) + "]}")
        await ws.send("[1,2]")  # JSON, but no frame
        await ws.send('{"type":"notice","text":"a newer server\'s frame"}')  # read past
        await ws.send(_with_unknown_field(4))
        await ws.send(_batch(range(5, 7)))
        await ws.wait_closed()

    async with _server(handler) as (url, _):
        client = LiquidationClient(api_key="pf_test", base_url=url)
        seqs = []
        with caplog.at_level(logging.WARNING, "purpleflea.client"):
            async with client.stream() as stream:
                async for event in stream:
                    seqs.append(event.seq)
                    if event.seq == 6:
                        break
    assert seqs == [1, 2, 3, 4, 5, 6]
    assert stream.dropped == 4
    assert stream.reconnects == 0
    [warning] = [r.getMessage() for r in caplog.records if "cannot read" in r.getMessage()]
    # The frame as it came, escaped (it must not drive a terminal), and what was wrong.
    assert '{"type":"batch","items":[\\x1b[2J' in warning
    assert "\x1b" not in warning
    assert "JSON is malformed" in warning
    assert "1 skipped so far" in warning  # once a minute at most: the rest only counted


async def test_an_unreadable_answer_to_subscribe_is_a_protocol_error_retried() -> None:
    async def session(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send("<html>not a stream</html>")
        await ws.wait_closed()

    async with serve(session, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        client = LiquidationClient(api_key="pf_test", base_url=f"http://127.0.0.1:{port}")
        with pytest.raises(ServerUnreachableError) as caught:
            async with client.stream(give_up_after=0.3, max_backoff=0.05):
                pass
    cause = caught.value.__cause__
    assert isinstance(cause, PurpleFleaError)
    assert cause.code == "protocol"
    assert "'<html>not a stream</html>'" in str(cause)


def test_unknown_fields_read_in_one_pass() -> None:
    stream = Stream.__new__(Stream)
    stream.last_seq = None
    assert stream._batch(_with_unknown_field(4)) == [stored_event(4)]
