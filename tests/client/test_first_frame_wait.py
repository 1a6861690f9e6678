"""The SDK stream's wait for the server's first frame (``subscribed``), when its deadline and
the frame fall due in the same turn of the event loop: the frame is the answer, and the stream
opens on that connection instead of counting a timeout and connecting again."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.sync.server import ServerConnection, serve

from purpleflea.client import LiquidationClient
from tests.asyncio_versions import wait_for_since_3_12

_TIMEOUT_S = 0.5


@pytest.mark.parametrize("python", ["running", "3.12+"])
async def test_a_first_frame_in_the_socket_when_a_held_loop_wakes_is_read_not_timed_out(
    monkeypatch: pytest.MonkeyPatch, python: str
) -> None:
    # The consumer's process is busy (its own synchronous work, a starved machine) past the
    # deadline while the server's answer arrives. asyncio reads the socket before it runs
    # the due timer, but the read's wait wakes only in the next turn: ended in the timer's
    # own turn, the wait dropped a connection that had been answered and opened another.
    # ``asyncio.wait_for`` did so from Python 3.12 on (it is ``asyncio.timeout`` there);
    # 3.11's ran the read in a task of its own and happened to look a turn later.
    if python == "3.12+":
        monkeypatch.setattr(asyncio, "wait_for", wait_for_since_3_12)
    armed = asyncio.Event()
    recv = ClientConnection.recv

    async def receiving(self: ClientConnection, *args: Any, **kwargs: Any) -> Any:
        armed.set()  # the deadline is set: the wait for the frame has begun
        return await recv(self, *args, **kwargs)

    monkeypatch.setattr(ClientConnection, "recv", receiving)
    go, answered = threading.Event(), threading.Event()
    subscribes: list[str] = []

    def session(ws: ServerConnection) -> None:  # a thread: it writes while the loop is held
        subscribes.append(str(ws.recv(10)))
        go.wait(10)
        ws.send('{"type":"subscribed","seq":0}')
        answered.set()
        for _ in ws:  # until the client closes
            pass

    with serve(session, "127.0.0.1", 0) as server:
        serving = threading.Thread(target=server.serve_forever)
        serving.start()
        try:
            port = server.socket.getsockname()[1]
            client = LiquidationClient("pf_x", f"http://127.0.0.1:{port}", timeout=_TIMEOUT_S)
            stream = client.stream()
            opening = asyncio.create_task(stream.__aenter__())
            await asyncio.wait_for(armed.wait(), 10)
            go.set()
            assert answered.wait(10)  # the loop held from here: the frame waits in the socket
            time.sleep(_TIMEOUT_S + 0.2)  # past the deadline before the loop runs again
            await asyncio.wait_for(opening, 10)
            await stream.aclose()
            await client.aclose()
        finally:
            go.set()
            server.shutdown()
            await asyncio.to_thread(serving.join, 10)
    assert len(subscribes) == 1, subscribes  # one connection: the first answer was taken
