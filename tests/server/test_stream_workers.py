"""Stream workers in several processes on one port (issue 21, ``--stream-workers``): main
admits and hands each WebSocket to a worker process; every rule of one process still holds."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame, Opcode

from purpleflea.server.config import ServerConfig
from purpleflea.server.stream_worker import text_frame
from purpleflea.server.worker_wire import (
    CONTROL_BYTES,
    Closed,
    Outbox,
    decode_control,
    encode_control,
    read_packets,
)
from tests.server.conftest import Running, make_config, running_server, until, venue_event
from tests.server.test_process import _key, _serve

pytestmark = pytest.mark.timeout(120)


def _per_worker(live: Running) -> list[int]:
    workers = live.server.streams.workers
    assert workers is not None, "the server runs no stream workers"
    return list(workers.streams().values())


async def _subscribe(live: Running, key: str | None = None, **fields: Any) -> ClientConnection:
    ws, _ = await _connect_subscribed(live, key, **fields)
    return ws


async def _connect_subscribed(
    live: Running, key: str | None = None, **fields: Any
) -> tuple[ClientConnection, int]:
    """A subscribed stream and the live seq its subscribed frame names."""
    ws = await connect(live.ws_url, additional_headers={"X-API-Key": key or live.key})
    await ws.send(json.dumps({"op": "subscribe", **fields}))
    reply = json.loads(await ws.recv())
    assert reply["type"] == "subscribed", reply
    return ws, int(reply["seq"])


async def _last_frames(ws: ClientConnection, timeout: float) -> list[dict[str, Any]]:
    """Every frame but heartbeats until the server closes ``ws`` (within ``timeout``)."""
    frames: list[dict[str, Any]] = []
    try:
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
            if frame["type"] != "heartbeat":
                frames.append(frame)
    except ConnectionClosed:
        return frames


async def _seqs_until(ws: ClientConnection, last: int) -> list[int]:
    """The event seqs ``ws`` receives (single or batched frames) until it has seq ``last``."""
    seqs: list[int] = []
    while not seqs or seqs[-1] < last:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
        items = frame["items"] if frame["type"] == "batch" else [frame]
        seqs.extend(item["data"]["seq"] for item in items if item["type"] == "liquidation")
    return seqs


async def test_clients_on_both_workers_get_every_event_once_in_seq_order(tmp_path: Path) -> None:
    async with running_server(make_config(tmp_path, stream_workers=2)) as live:
        clients = [await _subscribe(live, batch=n % 2 == 0) for n in range(4)]
        await until(lambda: _per_worker(live) == [2, 2], 10, "two streams on each worker")
        assert len(live.server.gate.streams) == 4  # main still counts every one
        for _burst in range(10):
            await live.push(*(venue_event() for _ in range(150)))
        last = live.server.tracker.last_seq
        assert last == 1_500
        for ws in clients:
            assert await _seqs_until(ws, last) == list(range(1, last + 1))
            await ws.close()
        await until(lambda: len(live.server.gate.streams) == 0, 10, "the streams to end")
        assert _per_worker(live) == [0, 0]
        assert live.server.streams.closed == {"client_disconnected": 4}
        # The workers' written-to-socket latency reaches main's /v1/metrics histogram.
        written = live.server.tracker.latency
        await until(lambda: written.count("written") >= 4 * last, 10, "the workers' reports")


async def test_a_worker_that_dies_releases_its_streams_and_the_other_takes_new_ones(
    tmp_path: Path,
) -> None:
    async with running_server(make_config(tmp_path, stream_workers=2)) as live:
        clients = [await _subscribe(live) for _ in range(4)]
        await until(lambda: _per_worker(live) == [2, 2], 10, "two streams on each worker")
        workers = live.server.streams.workers
        assert workers is not None
        workers.workers[0].process.kill()
        await until(lambda: len(live.server.gate.streams) == 2, 10, "main to release two")
        assert live.server.streams.closed == {"internal_error": 2}
        async with httpx.AsyncClient(base_url=live.url) as http:
            health = (await http.get("/v1/health")).json()
        assert health["stream_workers"] == {"running": 1, "streams": [0, 2]}
        late = await _subscribe(live)
        await until(lambda: _per_worker(live)[1] == 3, 10, "the new stream on the live worker")
        await live.push(venue_event())
        assert await _seqs_until(late, 1) == [1]
        for ws in (*clients, late):
            await ws.close()


async def test_the_per_account_cap_counts_streams_on_every_worker(tmp_path: Path) -> None:
    config = make_config(tmp_path, stream_workers=2, streams_per_account=3)
    async with running_server(config) as live:
        clients = [await _subscribe(live) for _ in range(3)]
        await until(lambda: sorted(_per_worker(live)) == [1, 2], 10, "three handed-off streams")
        async with connect(live.ws_url, additional_headers={"X-API-Key": live.key}) as fourth:
            refused = json.loads(await fourth.recv())
            assert refused["code"] == "too_many_streams"
            with pytest.raises(ConnectionClosed):
                await fourth.recv()
            assert fourth.close_code == 4429
        # A stream a worker ends frees its slot in main only once the worker reports it.
        await clients[0].close()
        await until(lambda: len(live.server.gate.streams) == 2, 10, "the slot to free")
        again = await _subscribe(live)
        await until(lambda: sum(_per_worker(live)) == 3, 10, "the new stream on a worker")
        for ws in (*clients[1:], again):
            await ws.close()


async def test_a_stream_on_a_worker_keeps_its_connection_slot_until_it_ends(
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path, stream_workers=2, connections_per_address=2)
    async with running_server(config) as live:
        cap = live.server.connections
        clients = [await _subscribe(live) for _ in range(2)]
        await until(lambda: sum(_per_worker(live)) == 2, 10, "two handed-off streams")
        assert cap.held("127.0.0.1") == 2
        with pytest.raises(InvalidStatus):  # the third connection from this address
            await connect(live.ws_url, additional_headers={"X-API-Key": live.key})
        await clients[0].close()
        await until(lambda: cap.held("127.0.0.1") == 1, 10, "the ended stream's slot")
        await clients[1].close()
        await until(lambda: cap.held("127.0.0.1") == 0, 10, "the other slot")


async def test_revocation_closes_a_stream_on_its_worker(tmp_path: Path) -> None:
    async with running_server(make_config(tmp_path, stream_workers=2)) as live:
        doomed = live.server.keys.create("tester", "doomed")
        other = await _subscribe(live)
        ws = await _subscribe(live, key=doomed.key)
        await until(lambda: _per_worker(live) == [1, 1], 10, "one stream on each worker")
        revoked = live.server.keys.revoke(doomed.info.key_id)
        assert revoked is not None
        assert not revoked.already
        frames = await _last_frames(ws, 10)
        assert frames[-1]["code"] == "key_revoked"
        assert ws.close_code == 4403
        assert ws.close_reason == "key_revoked"
        await until(lambda: len(live.server.gate.streams) == 1, 10, "main to release it")
        assert live.server.streams.closed == {"key_revoked": 1}
        # The other account's stream on the other worker goes on.
        await live.push(venue_event())
        assert await _seqs_until(other, 1) == [1]
        await other.close()


async def test_a_slow_consumer_on_a_worker_is_cut_and_the_fast_one_is_not(tmp_path: Path) -> None:
    config = make_config(
        tmp_path, stream_workers=2, stream_buffer_bytes=200_000, socket_send_buffer=32_768
    )
    async with running_server(config) as live:
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8_192)
        raw.connect(("127.0.0.1", int(live.url.rsplit(":", 1)[1])))
        raw.setblocking(False)
        slow = await connect(
            live.ws_url, additional_headers={"X-API-Key": live.key}, max_queue=1, sock=raw
        )
        await slow.send(json.dumps({"op": "subscribe"}))
        fast = await _subscribe(live, batch=True)
        await until(lambda: _per_worker(live) == [1, 1], 10, "one stream on each worker")
        reader = asyncio.create_task(_seqs_until(fast, 6_000))
        for _burst in range(60):
            await live.push(*(venue_event(size_usd=200_000.0) for _ in range(100)))
            await asyncio.sleep(0.01)
        assert await asyncio.wait_for(reader, 30) == list(range(1, 6_001))
        await until(lambda: len(live.server.gate.streams) == 1, 20, "the slow one to be cut")
        assert live.server.streams.closed == {"slow_consumer": 1}
        frames = await _last_frames(slow, 10)
        assert frames[-1]["code"] == "slow_consumer"
        assert "since_seq" in frames[-1]["message"]
        assert slow.close_code == 4008
        await fast.close()


async def test_since_seq_resume_across_the_handoff_has_no_gap_or_duplicate(
    tmp_path: Path,
) -> None:
    async with running_server(make_config(tmp_path, stream_workers=2)) as live:
        await live.push(*(venue_event() for _ in range(3_000)))
        stop = asyncio.Event()

        async def publish() -> None:  # events keep coming while the clients are handed off
            while not stop.is_set():
                await live.push(*(venue_event() for _ in range(20)))
                await asyncio.sleep(0.002)

        publisher = asyncio.create_task(publish())
        clients = []
        for since in (0, 1_234, 2_999, 3_000):
            clients.append((since, await _subscribe(live, since_seq=since, batch=since > 1_000)))
            await asyncio.sleep(0.02)
        await until(lambda: _per_worker(live) == [2, 2], 10, "two resumed streams per worker")
        stop.set()
        await publisher
        last = live.server.tracker.last_seq
        assert last > 3_000
        for since, ws in clients:
            assert await _seqs_until(ws, last) == list(range(since + 1, last + 1)), since
            await ws.close()


async def test_a_replay_on_a_worker_is_paced_by_its_account_s_rate_limit(
    tmp_path: Path,
) -> None:
    """A worker reads a resumed stream's history itself: it paces the pages by the account's
    rate limit as main does (counted in the worker), or the replay would be free there."""
    config = make_config(tmp_path, stream_workers=2, rate_per_s=2.0, rate_burst=2.0)
    async with running_server(config) as live:
        await live.push(*(venue_event() for _ in range(3_500)))  # 4 page reads
        # A worker's replay ends at its own live position: wait until both have all 3,500
        # (probing with another account, so this one's rate is untouched).
        probe = live.server.keys.create("prober", "probe").key
        while True:
            probes = [await _connect_subscribed(live, probe) for _ in range(2)]
            for ws, _ in probes:
                await ws.close()
            await until(lambda: sum(_per_worker(live)) == 0, 10, "the probes' streams to end")
            if all(seq == 3_500 for _, seq in probes):  # one probe on each worker
                break
            await asyncio.sleep(0.05)
        started = time.monotonic()
        ws = await _subscribe(live, since_seq=0, coverages=["sampled"])
        beat = json.loads(await asyncio.wait_for(ws.recv(), 10))
        waited = time.monotonic() - started
        assert _per_worker(live) in ([1, 0], [0, 1])
        assert beat["type"] == "heartbeat"
        assert beat["seq"] == 3_500
        assert waited >= 0.9, waited
        await ws.close()


async def test_sigterm_closes_worker_streams_with_1001_within_5_s(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    key = _key(data)
    with _serve(data, "--source", "none", "--stream-workers", "2") as served:
        process = served.process
        url = f"ws://127.0.0.1:{served.port}/v1/stream"
        clients = []
        for _ in range(4):
            ws = await connect(url, additional_headers={"X-API-Key": key})
            await ws.send(json.dumps({"op": "subscribe"}))
            assert json.loads(await ws.recv())["type"] == "subscribed"
            clients.append(ws)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        for ws in clients:
            frames = await _last_frames(ws, 5)
            assert frames[-1]["code"] == "server_shutdown"
            assert ws.close_code == 1001
            assert ws.close_reason == "server_shutdown"
        assert time.monotonic() - started < 5
        await asyncio.to_thread(process.wait, 5)
        assert time.monotonic() - started < 5


async def test_a_ping_sent_with_the_subscription_is_answered_by_the_worker(
    tmp_path: Path,
) -> None:
    async with (
        running_server(make_config(tmp_path, stream_workers=2)) as live,
        connect(live.ws_url, additional_headers={"X-API-Key": live.key}) as ws,
    ):
        # Both at once: main may have read the ping before it hands the socket over.
        await ws.send(json.dumps({"op": "subscribe"}))
        await ws.send('{"op":"ping"}')
        kinds = [json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] for _ in range(3)]
        assert kinds[0] == "subscribed"
        assert "pong" in kinds
        assert sum(_per_worker(live)) == 1
        await ws.send('{"op":"ping"}')
        while (frame := json.loads(await asyncio.wait_for(ws.recv(), 5)))["type"] != "pong":
            assert frame["type"] == "heartbeat"


async def test_a_flooding_client_is_cut_by_the_worker_as_by_main(tmp_path: Path) -> None:
    async with running_server(make_config(tmp_path, stream_workers=2)) as live:
        ws = await _subscribe(live)
        assert sum(_per_worker(live)) == 1
        # Pings still arrive after the worker sent its reason: it waits for the client's close
        # before closing the socket, so the client reads that reason (not a reset).
        with contextlib.suppress(ConnectionClosed):
            for _ in range(200):
                await ws.send('{"op":"ping"}')
        errors = []
        with contextlib.suppress(ConnectionClosed):
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if frame["type"] == "error":
                    errors.append(frame["code"])
        assert (errors, ws.close_code) == (["flood"], 4429)
        # Its worker ended the stream with flood, reported to main as every stream's end.
        await until(lambda: live.server.streams.closed.get("flood") == 1, 10, "the flood end")
        await until(lambda: sum(_per_worker(live)) == 0, 10, "the stream to be released")
        await ws.close()


def test_stream_workers_must_be_positive_and_only_where_streams_are_served() -> None:
    with pytest.raises(ValueError, match="stream_workers must be at least 1, got 0"):
        ServerConfig(stream_workers=0)
    with pytest.raises(ValueError, match="role 'ingest' serves no streams"):
        ServerConfig(role="ingest", bus_url="nats://127.0.0.1:4222", stream_workers=2)
    assert (
        ServerConfig(
            role="api", bus_url="nats://127.0.0.1:4222", source="none", stream_workers=4
        ).stream_workers
        == 4
    )


async def test_control_messages_wait_for_a_busy_peer_and_none_is_dropped() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4_096)
    outbox = Outbox(ours)
    for n in range(2_000):  # far more than the socket holds while the peer reads nothing
        outbox.send(Closed(n, "client_disconnected"))
    assert outbox.waiting > 0
    theirs.setblocking(False)
    received: list[int] = []
    deadline = time.monotonic() + 10
    while len(received) < 2_000 and time.monotonic() < deadline:
        try:
            message = decode_control(theirs.recv(CONTROL_BYTES))
        except BlockingIOError:
            await asyncio.sleep(0.001)  # the outbox sends the rest once there is room
            continue
        assert isinstance(message, Closed)
        received.append(message.id)
    assert received == list(range(2_000))
    assert outbox.waiting == 0
    outbox.close()
    ours.close()
    theirs.close()


@pytest.mark.parametrize("max_fds", [0, 1], ids=["main", "worker"])
async def test_the_control_reader_takes_every_packet_in_order_until_the_peer_closes(
    max_fds: int,
) -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    theirs.setblocking(False)
    got: list[tuple[int, int]] = []

    def on_packet(data: bytes, fds: list[int]) -> None:
        message = decode_control(data)
        assert isinstance(message, Closed)
        got.append((message.id, len(fds)))
        for fd in fds:
            os.close(fd)

    reader = asyncio.create_task(read_packets(ours, on_packet, max_fds=max_fds))
    outbox = Outbox(theirs)
    for n in range(2_000):  # more than one wake-up's worth: the reader drains each
        outbox.send(Closed(n, "client_disconnected"))
    await until(lambda: outbox.waiting == 0, 10, "the outbox to empty")
    if max_fds:  # a worker's Open carries the client's socket
        readable, writable = os.pipe()
        socket.send_fds(theirs, [encode_control(Closed(2_000, "fd"))], [readable])
        os.close(readable)
        os.close(writable)
    theirs.close()
    await asyncio.wait_for(reader, 10)  # returns once the peer is gone
    last = 2_000 + max_fds
    assert [n for n, _ in got] == list(range(last))
    assert [n for n, fds in got if fds] == list(range(2_000, last))
    ours.close()


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 70_000])
def test_a_worker_frames_text_as_websockets_does(size: int) -> None:
    data = b"x" * size
    expected = Frame(Opcode.TEXT, data).serialize(mask=False, extensions=[])
    assert text_frame(data) == expected
