"""The per-address connection cap: one address cannot hold every file descriptor."""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import websockets

from purpleflea.server import serving
from purpleflea.server.conncap import REFUSAL, REFUSAL_FULL, ConnectionCap, process_cap
from tests.ports import announced_port
from tests.server.conftest import Running, make_config, running_server, until, venue_event


@contextlib.asynccontextmanager
async def connection(
    live: Running, source: str = "127.0.0.1"
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    port = int(live.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def health(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """One keep-alive request on a raw connection; the response's status line."""
    writer.write(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    status = await asyncio.wait_for(reader.readline(), 5)
    headers = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = next(
        int(line.split(b":")[1]) for line in headers.split(b"\r\n") if b"content-length" in line
    )
    await reader.readexactly(length)
    return status


async def test_an_address_past_its_cap_is_refused_others_are_not_and_a_close_frees_a_slot(
    tmp_path: Path,
) -> None:
    async with (
        running_server(make_config(tmp_path, connections_per_address=3)) as live,
        contextlib.AsyncExitStack() as held,
    ):
        cap = live.server.connections
        # Three from 127.0.0.1: two keep-alive HTTP connections and a WebSocket stream.
        first = await held.enter_async_context(connection(live))
        second = await held.enter_async_context(connection(live))
        for conn in (first, second):
            assert (await health(*conn)).startswith(b"HTTP/1.1 200")
        stream = await held.enter_async_context(
            websockets.connect(live.ws_url, additional_headers={"X-API-Key": live.key})
        )
        await stream.send('{"op": "subscribe"}')
        assert cap.held("127.0.0.1") == 3

        # The fourth is refused when it is accepted, before its request is read.
        async with connection(live) as (reader, writer):
            writer.write(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 5)
        assert answer.startswith(b"HTTP/1.1 503"), answer
        assert b"too_many_connections" in answer
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(live.ws_url, additional_headers={"X-API-Key": live.key})
        assert refused.value.response.status_code == 503

        # Another address is counted apart.
        async with connection(live, "127.0.0.2") as other:
            assert (await health(*other)).startswith(b"HTTP/1.1 200")
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        async with httpx.AsyncClient(transport=transport) as client:
            metrics = (await client.get(f"{live.url}/v1/metrics")).text
        assert "purpleflea_connections_refused_total 2" in metrics

        # A closed connection frees its slot, an upgraded one too.
        first[1].close()
        await until(lambda: cap.held("127.0.0.1") == 2, 5, "the closed connection's slot")
        async with connection(live) as again:
            assert (await health(*again)).startswith(b"HTTP/1.1 200")
        await stream.close()
        await until(lambda: cap.held("127.0.0.1") == 1, 5, "the WebSocket's slot")


async def test_a_trusted_proxy_is_not_capped(tmp_path: Path) -> None:
    config = make_config(tmp_path, connections_per_address=1, trusted_proxies=("127.0.0.1",))
    async with running_server(config) as live, connection(live) as one, connection(live) as two:
        for conn in (one, two):
            assert (await health(*conn)).startswith(b"HTTP/1.1 200")
        assert live.server.connections.refused == 0


def test_ipv6_is_counted_by_its_64_and_ipv4_mapped_as_ipv4() -> None:
    cap = ConnectionCap(2)
    assert cap.admit(("2001:db8:1:2::1", 5000, 0, 0)) == "2001:db8:1:2::/64"
    assert cap.admit(("2001:db8:1:2:ffff::9", 5001, 0, 0)) == "2001:db8:1:2::/64"
    assert cap.admit(("2001:db8:1:2::77", 5002, 0, 0)) == REFUSAL  # same /64: the third
    assert cap.admit(("2001:db8:1:3::1", 5003, 0, 0)) == "2001:db8:1:3::/64"
    assert cap.admit(("::ffff:192.0.2.7", 5004, 0, 0)) == "192.0.2.7"
    assert cap.admit(("192.0.2.7", 5005)) == "192.0.2.7"
    assert cap.admit(("192.0.2.7", 5006)) == REFUSAL
    cap.release("2001:db8:1:2::/64")
    assert cap.admit(("2001:db8:1:2::77", 5007, 0, 0)) == "2001:db8:1:2::/64"
    assert cap.refused == 2


def test_no_cap_counts_nothing() -> None:
    cap = ConnectionCap(0)
    assert all(cap.admit(("192.0.2.7", port)) == "" for port in range(1000))
    assert cap.held("192.0.2.7") == 0


def test_the_process_wide_cap_counts_every_address_and_trusted_proxies() -> None:
    cap = ConnectionCap(256, total=3, exempt=("10.0.0.5",))
    first = cap.admit(("192.0.2.1", 1))
    assert first == "192.0.2.1"
    assert cap.admit(("2001:db8:9::1", 2, 0, 0)) == "2001:db8:9::/64"
    proxied = cap.admit(("10.0.0.5", 3))  # not capped per address, but a descriptor all the same
    assert isinstance(proxied, str)
    assert proxied
    assert cap.admit(("192.0.2.99", 4)) == REFUSAL_FULL
    assert cap.admit(("10.0.0.5", 5)) == REFUSAL_FULL
    assert (cap.refused_full, cap.refused, cap.open) == (2, 0, 3)
    cap.release(proxied)
    assert cap.admit(("192.0.2.99", 6)) == "192.0.2.99"
    cap.release(first)
    assert cap.held("192.0.2.1") == 0
    assert cap.open == 2
    # No per-address cap: the process-wide one still counts.
    alone = ConnectionCap(0, total=1)
    slot = alone.admit(("192.0.2.1", 1))
    assert slot
    assert alone.admit(("192.0.2.2", 2)) == REFUSAL_FULL
    alone.release(slot)
    assert alone.open == 0


def test_the_process_cap_leaves_a_reserve_of_the_open_files_limit() -> None:
    assert process_cap(1024) == 1024 - 128
    assert process_cap(20_000) == 18_000
    assert process_cap(100) == 16
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert process_cap() == process_cap(soft if soft != resource.RLIM_INFINITY else 1 << 20)


async def test_a_full_server_refuses_new_connections_from_any_address_and_serves_the_rest(
    tmp_path: Path,
) -> None:
    async with (
        running_server(make_config(tmp_path, max_connections=2)) as live,
        connection(live, "127.0.0.2") as one,
        connection(live, "127.0.0.3") as two,
    ):
        for conn in (one, two):
            assert (await health(*conn)).startswith(b"HTTP/1.1 200")
        async with connection(live, "127.0.0.4") as (reader, writer):
            writer.write(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 5)
        assert answer.startswith(b"HTTP/1.1 503"), answer
        assert b"server_full" in answer
        assert b"retry-after: 1" in answer
        # The connections held are served, and events are stored meanwhile.
        before = live.server.tracker.last_seq
        await live.push(venue_event())
        assert live.server.tracker.last_seq == before + 1
        assert (await health(*one)).startswith(b"HTTP/1.1 200")
        one[1].write(b"GET /v1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        metrics = await asyncio.wait_for(one[0].readuntil(b"purpleflea_connections_max"), 5)
        assert b"purpleflea_connections_refused_full_total 1" in metrics
        assert b"purpleflea_connections_open 2" in metrics


def _read_to_end(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65_536):
        chunks.append(chunk)
    return b"".join(chunks)


async def test_a_refused_client_reads_its_503_though_it_sent_its_request_first(
    tmp_path: Path,
) -> None:
    """Written and closed at once, the 503 met the client's request arriving at a closed
    socket: the kernel answered with a reset, and the client (asyncio's streams, and others
    that check the error first) got ConnectionResetError instead of the answer in its buffer.
    The refused connection is half-closed and kept to read the request, then closed."""
    async with running_server(make_config(tmp_path, connections_per_address=1)) as live:
        async with connection(live) as first:
            assert (await health(*first)).startswith(b"HTTP/1.1 200")
            port = int(live.url.rsplit(":", 1)[1])
            for n in range(5):
                # Connected and sent on a blocking socket, with no turn of the loop between:
                # the request is in the server's buffer when the server takes the connection.
                with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                    sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                    # Read once the server has answered and acted (the old close's reset).
                    refused = lambda n=n: live.server.connections.refused > n  # noqa: E731
                    await until(refused, 30, "the refusal")
                    answer = await asyncio.to_thread(_read_to_end, sock)
                assert answer.startswith(b"HTTP/1.1 503"), answer
                assert b"too_many_connections" in answer
        await until(lambda: live.server.connections.lingering == 0, 5, "refusals closed")
        assert live.server.connections.refused == 5


#: The server's open-files limit in the process test: its cap is then 64 connections.
_NOFILE = 192


async def _ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[bytes, bytes]:
    """One keep-alive GET /v1/health: the status line and body ((b"", b"") if no answer)."""
    writer.write(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    try:
        status = await asyncio.wait_for(reader.readline(), 10)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
        return b"", b""
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if b"content-length" in line
    )
    return status, await asyncio.wait_for(reader.readexactly(length), 10)


async def test_many_addresses_cannot_take_the_servers_descriptors(tmp_path: Path) -> None:
    """Per-address caps alone let many addresses (127.0.1.x here; an IPv6 attacker's /64s)
    open connections until the process ran out of descriptors: it then accepted nothing more
    (the kernel queued connections unanswered) and could not open a file. With the open-files
    limit at 192, the server holds at most 64 client connections and answers the next with a
    503 ``server_full``, while ingest goes on and a slot freed serves again."""

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (_NOFILE, _NOFILE))

    log = (tmp_path / "server.log").open("wb")
    command = [sys.executable, "-m", "purpleflea.cli", "serve", "--source", "sim", "--markets"]
    command += ["5", "--data-dir", str(tmp_path / "data"), "--port", "0"]
    server = subprocess.Popen(command, stdout=log, stderr=log, preexec_fn=low_limit)  # noqa: PLW1509
    held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    port = 0  # of its choosing, which its banner names once it answers (tests/ports.py)
    try:
        deadline = time.monotonic() + 90
        while True:  # until it serves and the simulator's events are being stored
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            port = port or announced_port((tmp_path / "server.log").read_text())
            with contextlib.suppress(OSError):
                if port:
                    victim = await asyncio.open_connection("127.0.0.1", port)
                    status, body = await _ask(*victim)
                    if status.startswith(b"HTTP/1.1 200") and json.loads(body)["last_seq"] > 0:
                        break
                    victim[1].close()
            assert time.monotonic() < deadline, "the server did not start"
            await asyncio.sleep(0.5)
        first = json.loads((await _ask(*victim))[1])["last_seq"]

        refusals: list[bytes] = []
        for n in range(_NOFILE * 2):
            source = f"127.0.1.{1 + n // 2}"  # two connections per address
            try:
                conn = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)), 3
                )
            except (TimeoutError, OSError):
                refusals.append(b"(no connection)")
                break
            status, body = await _ask(*conn)
            if not status.startswith(b"HTTP/1.1 200"):
                refusals.append(status + body)
                conn[1].close()
                break
            held.append(conn)
        assert refusals, f"{len(held)} connections held and none refused"
        refusal = refusals[0]
        assert refusal.startswith(b"HTTP/1.1 503"), f"after {len(held)} connections: {refusal!r}"
        assert b"server_full" in refusal
        assert len(held) == process_cap(_NOFILE) - 1  # the victim's connection is one

        # At the cap the server still works: the store takes events, health says ok.
        deadline = time.monotonic() + 60
        while True:
            status, body = await _ask(*victim)
            assert status.startswith(b"HTTP/1.1 200"), status
            answer = json.loads(body)
            assert answer["status"] == "ok", answer["reasons"]
            if answer["last_seq"] > first:
                break
            assert time.monotonic() < deadline, f"no event stored at the cap: {answer}"
            await asyncio.sleep(0.2)
        for _, writer in held:
            writer.close()
        held.clear()
        # A slot freed serves again, once the server has seen the closes (its own time).
        for n in range(1, 250):
            again = await asyncio.open_connection("127.0.0.1", port, local_addr=(f"127.0.2.{n}", 0))
            status = (await _ask(*again))[0]
            again[1].close()
            if status.startswith(b"HTTP/1.1 200"):
                break
            assert b"503" in status, status
            await asyncio.sleep(0.2)
        assert status.startswith(b"HTTP/1.1 200"), status
        victim[1].close()
    finally:
        for _, writer in held:
            writer.close()
        server.terminate()
        server.wait(10)
        log.close()
    assert "Too many open files" not in (tmp_path / "server.log").read_text()


async def test_a_client_that_takes_nothing_of_an_answer_loses_its_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer the client does not read waited in the server's buffer for as long as the
    client kept its window shut (the header deadline's close waits for the buffer to drain):
    memory and a descriptor per unread answer, a few MB each for a week's 1m aggregate."""
    monkeypatch.setattr(serving, "DRAIN_TIMEOUT_S", 0.5)
    config = make_config(tmp_path, socket_send_buffer=4096)
    async with running_server(config) as live:
        await live.push(*(venue_event() for _ in range(1_000)))
        cap = live.server.connections
        port = int(live.url.rsplit(":", 1)[1])
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        try:
            sock.sendall(
                b"GET /v1/liquidations?limit=1000 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                + f"X-API-Key: {live.key}\r\n\r\n".encode()
            )
            await until(lambda: cap.open == 1, 5, "the connection counted")
            # ~290 KB, far more than the kernel buffers hold: the rest waits in the server.
            await until(lambda: cap.open == 0, 10, "the stalled connection aborted")
            assert cap.stalled == 1
        finally:
            sock.close()
        # A client that reads gets the whole answer.
        async with httpx.AsyncClient(base_url=live.url) as http:
            page = await http.get("/v1/liquidations?limit=1000", headers={"X-API-Key": live.key})
        assert len(page.json()["events"]) == 1_000
        assert cap.stalled == 1


class _Buffered:
    """A transport's write buffer as the drain check sees it, and whether it was aborted."""

    def __init__(self) -> None:
        self.size = 0
        self.aborted = False

    def get_write_buffer_size(self) -> int:
        return self.size

    def abort(self) -> None:
        self.aborted = True


class _Timer:
    """A timer of :class:`_Timers`: its callback, and whether it was cancelled."""

    def __init__(self, callback: Callable[..., object], args: tuple[object, ...]) -> None:
        self.callback, self.args = callback, args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class _Timers:
    """``loop.call_later`` that runs a timer only when the test says its time came."""

    def __init__(self) -> None:
        self.pending: list[_Timer] = []

    def call_later(self, _delay: float, callback: Callable[..., object], *args: object) -> _Timer:
        timer = _Timer(callback, args)
        self.pending.append(timer)
        return timer

    def run_due(self) -> None:
        """The timers set so far come due (those set meanwhile wait for the next call)."""
        due, self.pending = self.pending, []
        for timer in due:
            if not timer.cancelled:
                timer.callback(*timer.args)


def test_a_slow_keep_alive_reader_of_two_answers_keeps_its_connection() -> None:
    """A client that takes some of what is buffered every DRAIN_TIMEOUT_S keeps its connection,
    also across answers: the first answer's check, still running when the second was
    buffered, compared the two answers' bytes with the first's rest and aborted it."""
    timers, buffer = _Timers(), _Buffered()
    protocol = object.__new__(serving._H11WithHeaderTimeout)
    protocol.transport = buffer  # type: ignore[assignment]
    protocol.loop = timers  # type: ignore[assignment]
    protocol.cap = ConnectionCap(0)
    buffer.size = 100_000
    protocol._await_drain(-1)  # the first answer is buffered
    buffer.size = 50_000
    timers.run_due()  # the client took some: checked again later
    buffer.size = 100_000
    protocol._await_drain(-1)  # it took the rest and asked again: a second answer
    buffer.size = 80_000
    timers.run_due()  # it takes some of the second answer
    assert not buffer.aborted
    buffer.size = 30_000
    timers.run_due()
    buffer.size = 0
    timers.run_due()
    assert not buffer.aborted
    assert not timers.pending
    assert protocol.cap.stalled == 0
    # One that stops taking anything is still cut.
    buffer.size = 100_000
    protocol._await_drain(-1)
    timers.run_due()
    assert buffer.aborted
    assert protocol.cap.stalled == 1
