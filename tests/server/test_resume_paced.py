"""A stream's replay from storage goes at its account's pace (each page read is charged to its
rate limit, docs/security.md); what is published meanwhile is not the client's slowness."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from purpleflea.server.keys import KeyInfo
from tests.server.conftest import make_config, running_server, until, venue_event

_BUFFER = 20_000


async def test_a_resume_held_back_by_its_account_s_pace_is_not_cut_as_a_slow_consumer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A client back from a disconnect resumes (since_seq) while its account's budget is
    # spent (its other streams' replays, its REST requests, a costly request's charge): its
    # replay waits for the refill, and the live events published meanwhile queued for it
    # until they passed the stream buffer. It was then cut as a slow consumer, though it had
    # read everything it was sent, and resuming again it waited again: at a live rate that
    # fills the buffer before the budget lets the replay through, it never got its gap.
    config = make_config(tmp_path, stream_buffer_bytes=_BUFFER)
    async with running_server(config) as live:
        await live.push(*(venue_event(size_usd=5_000.0) for _ in range(5)))  # the gap
        refilled = asyncio.Event()
        paced: list[str] = []

        async def pace(info: KeyInfo) -> None:  # the account's budget, spent until refilled
            paced.append(info.account)
            await refilled.wait()

        monkeypatch.setattr(live.server.gate, "pace", pace)
        async with connect(live.ws_url, additional_headers={"X-API-Key": live.key}) as ws:
            await ws.send(json.dumps({"op": "subscribe", "since_seq": 0}))
            assert json.loads(await ws.recv())["type"] == "subscribed"
            await until(lambda: bool(paced), 10, "the replay to wait for its account's pace")
            for _ in range(10):  # published while it waits: more than its buffer holds
                await live.push(*(venue_event(size_usd=5_000.0) for _ in range(20)))
            last = live.server.tracker.last_seq
            refilled.set()
            seqs: list[int] = []
            published_meanwhile = 0  # bytes of the frames of the events published while waiting
            while not seqs or seqs[-1] < last:
                raw = await asyncio.wait_for(ws.recv(), 10)
                frame = json.loads(raw)
                assert frame["type"] != "error", frame
                if frame["type"] == "liquidation":
                    seqs.append(frame["data"]["seq"])
                    published_meanwhile += len(raw) if seqs[-1] > 5 else 0
        assert seqs == list(range(1, last + 1))
        assert published_meanwhile > _BUFFER
        assert live.server.streams.closed.get("slow_consumer", 0) == 0


async def test_a_client_that_stops_reading_during_its_replay_is_still_cut(
    tmp_path: Path,
) -> None:
    # On hold only while the server reads a page: a client that takes none of what the replay
    # writes holds the writer, and what is published meanwhile counts against it as before.
    config = make_config(tmp_path, stream_buffer_bytes=_BUFFER, socket_send_buffer=32_768)
    async with running_server(config) as live:
        await live.push(*(venue_event(size_usd=5_000.0) for _ in range(3_000)))  # ~1 MB
        raw = socket.socket()  # a small receive window: the backlog builds on the server
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8_192)
        raw.connect(("127.0.0.1", int(live.url.rsplit(":", 1)[1])))
        raw.setblocking(False)
        headers = {"X-API-Key": live.key}
        stalled = connect(
            live.ws_url, additional_headers=headers, max_queue=1, sock=raw, close_timeout=0.5
        )
        async with stalled as ws:
            await ws.send(json.dumps({"op": "subscribe", "since_seq": 0}))
            for _ in range(20):  # while its replay waits on it: more than its buffer holds
                await live.push(*(venue_event(size_usd=5_000.0) for _ in range(20)))
            await until(
                lambda: live.server.streams.closed.get("slow_consumer") == 1,
                10,
                "the stalled client to be cut",
            )
