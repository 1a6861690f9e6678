"""The wait for a WebSocket client's subscribe message, when its deadline and the message fall
due in the same turn of the event loop: the message is the subscription, not a timeout."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import pytest
from starlette.websockets import WebSocket
from websockets.sync.client import connect

from purpleflea.server import streaming
from tests.asyncio_versions import wait_for_since_3_12
from tests.server.conftest import make_config, running_server

_DEADLINE_S = 0.5


@pytest.mark.parametrize("python", ["running", "3.12+"])
async def test_a_subscribe_in_the_socket_when_a_held_loop_wakes_is_read_not_timed_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, python: str
) -> None:
    # A busy server (a long synchronous step, a starved process) wakes past the subscribe
    # deadline with the client's subscribe in the socket. asyncio reads the socket before it
    # runs the due timer, but the read's wait wakes only in the next turn: ended in the
    # timer's own turn, the wait refused as bad_subscription a client that had subscribed in
    # time. ``asyncio.wait_for`` did so from Python 3.12 on (it is ``asyncio.timeout``
    # there); 3.11's ran the read in a task of its own and happened to look a turn later.
    if python == "3.12+":
        monkeypatch.setattr(asyncio, "wait_for", wait_for_since_3_12)
    monkeypatch.setattr(streaming, "_SUBSCRIBE_TIMEOUT_S", _DEADLINE_S)
    armed = asyncio.Event()
    receive = streaming._receive_text

    async def receiving(ws: WebSocket) -> str | None:
        armed.set()  # the deadline is set: the wait for the message has begun
        return await receive(ws)

    monkeypatch.setattr(streaming, "_receive_text", receiving)
    async with running_server(make_config(tmp_path)) as live:
        go, sent = threading.Event(), threading.Event()
        replies: list[str] = []

        def client() -> None:  # a thread: it writes while the server's loop is held
            headers = {"Authorization": f"Bearer {live.key}"}
            with connect(live.ws_url, additional_headers=headers) as ws:
                go.wait(10)
                ws.send(json.dumps({"op": "subscribe"}))
                sent.set()
                replies.append(str(ws.recv(10)))

        thread = threading.Thread(target=client)
        thread.start()
        try:
            await asyncio.wait_for(armed.wait(), 10)
            go.set()
            assert sent.wait(10)  # the loop held from here: the message waits in the socket
            time.sleep(_DEADLINE_S + 0.2)  # past the deadline before the loop runs again
        finally:
            go.set()
            await asyncio.to_thread(thread.join, 15)
    assert replies, "the client got no answer"
    assert json.loads(replies[0])["type"] == "subscribed", replies[0]
