"""The real services the scale-out tests run against: PostgreSQL and NATS JetStream on loopback.

A fresh machine may have them installed but stopped, so each helper starts its service when
nothing answers on its port, and skips (loudly, naming what is missing) only when the service
is not installed at all. A start that fails is an error, never a skip.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

PG_HOST, PG_PORT = "127.0.0.1", 5432
NATS_HOST, NATS_PORT = "127.0.0.1", 4222
NATS_SERVER = "/usr/sbin/nats-server"
_START_TIMEOUT_S = 20.0

_databases: list[str] = []  # this session's database, once created


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait_for(host: str, port: int, what: str) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not _answers(host, port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} was started but nothing answers on {host}:{port}")
        time.sleep(0.1)


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"could not start {what}: {' '.join(command)} exited {done.returncode}: "
            f"{done.stderr.strip() or done.stdout.strip()}"
        )


def _start_postgres() -> None:
    clusters = Path("/etc/postgresql")
    if shutil.which("pg_ctlcluster") is None or not clusters.is_dir():
        pytest.skip(
            "PostgreSQL IS NOT INSTALLED (no pg_ctlcluster or /etc/postgresql): the PostgreSQL "
            "store tests cannot run on this machine"
        )
    versions = sorted(p.name for p in clusters.iterdir() if p.is_dir())
    if not versions:
        pytest.skip("PostgreSQL IS NOT INSTALLED: /etc/postgresql has no cluster")
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"]
    _run(command, "PostgreSQL")
    _wait_for(PG_HOST, PG_PORT, "PostgreSQL")


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"postgresql://{PG_HOST}:{PG_PORT}/postgres", autocommit=True) as conn:
        conn.execute(sql.encode())  # composed by this module from its own names


def _drop_database(name: str) -> None:
    with contextlib.suppress(Exception):  # the server went away first: nothing to clean
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def ensure_postgres() -> str:
    """A DSN of this test session's own database (created once, dropped at exit)."""
    if not _answers(PG_HOST, PG_PORT):
        _start_postgres()
    if not _databases:
        name = f"purpleflea_test_{os.getpid()}"
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _admin(f'CREATE DATABASE "{name}"')
        atexit.register(_drop_database, name)
        _databases.append(name)
    return f"postgresql://{PG_HOST}:{PG_PORT}/{_databases[0]}"


async def drop_connections(dsn: str, application_name: str) -> None:
    """Have the server end every connection ``application_name`` holds to ``dsn``'s database
    (what a PostgreSQL restart does to a store's idle connections)."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as admin:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND datname = current_database()",
            (application_name,),
        )


def ensure_nats() -> str:
    """The URL of a JetStream-enabled NATS server on loopback, started if need be."""
    if not _answers(NATS_HOST, NATS_PORT):
        if not Path(NATS_SERVER).exists():
            pytest.skip(f"NATS IS NOT INSTALLED ({NATS_SERVER} missing): the bus tests cannot run")
        Path("/var/lib/nats-server").mkdir(parents=True, exist_ok=True)
        command = [
            "start-stop-daemon",
            "--start",
            "--oknodo",
            "--background",
            "--exec",
            NATS_SERVER,
            "--",
            "-a",
            NATS_HOST,
            "-p",
            str(NATS_PORT),
            "-js",
            "-sd",
            "/var/lib/nats-server",
            "-l",
            "/var/log/nats-server.log",
        ]
        _run(command, "NATS")
        _wait_for(NATS_HOST, NATS_PORT, "NATS")
    return f"nats://{NATS_HOST}:{NATS_PORT}"


class TcpRelay:
    """A TCP relay to a service (NATS, PostgreSQL) that a test can cut (every connection
    closed, new ones refused) and restore on the same port: the service going away and back
    as its clients see it, without touching the service other tests share.

    The relay holds its port from :meth:`reserve` (or the first :meth:`open`) to :meth:`close`,
    outages included: a cut released it and the next open bound its number again, and another
    process (another test's server binding port 0) could take it in between."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._socket: socket.socket | None = None

    def reserve(self) -> None:
        """Take the relay's port before :meth:`open`, refusing connections until then: a port
        picked and released for later could be bound by another process meanwhile."""
        if self._socket is None:
            self._socket = _held_port()
            self.port = self._socket.getsockname()[1]

    async def open(self) -> None:
        """Accept and relay connections (again, after a cut) on the relay's port."""
        self.reserve()
        assert self._socket is not None
        assert self._server is None
        # asyncio's server closes the socket it serves: it gets a duplicate (which it makes
        # listen), and the relay's own descriptor keeps the port through a cut.
        self._server = await asyncio.start_server(self._relay, sock=self._socket.dup())

    async def cut(self) -> None:
        """The service goes away: every connection closed, new ones refused, the port kept."""
        assert self._server is not None
        assert self._socket is not None
        self._server.close()
        # Its duplicate closed, the socket still listens: shut down, it listens no more (a
        # connection is refused) and stays bound, its port having been bound by number.
        self._socket.shutdown(socket.SHUT_RD)
        writers, self._writers = self._writers, []
        for writer in writers:
            writer.transport.abort()
        # Closed on the loop's next turn: until then a connection still holds the port, and
        # listening on it again would fail (EADDRINUSE).
        for writer in writers:
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        await self._server.wait_closed()
        self._server = None

    async def close(self) -> None:
        """Cut, if open, and give the port back."""
        if self._server is not None:
            await self.cut()
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Held from its accept: one accepted while its upstream connection was being made
        # was missed by a cut, and the cut's wait_closed waited for it for ever (a NATS
        # client reconnecting at the moment of the cut; the test timed out in CI).
        self._writers.append(writer)
        # Ended by a reset, not a FIN: a connection of the port's left in TIME_WAIT by its
        # close would stop the relay listening on the port again after a cut (the relay's
        # socket takes no SO_REUSEADDR, which would let another socket bind the port).
        accepted = writer.get_extra_info("socket")
        if accepted is not None:
            accepted.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        if writer.transport.is_closing():  # cut meanwhile
            up_writer.transport.abort()
            return
        self._writers.append(up_writer)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while chunk := await source.read(65536):
                    sink.write(chunk)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


def _held_port() -> socket.socket:
    """A loopback TCP socket bound to a port by its number, not listening.

    Linux gives back the port of a socket bound to port 0 when a listening socket is shut
    down, but keeps one bound by number: so the number is found by a first socket bound to 0
    and bound by the second beside it (both with SO_REUSEPORT, which the second then drops,
    so that no binding to port 0 shares it), and the first is closed."""
    with socket.socket() as finder:
        finder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        finder.bind(("127.0.0.1", 0))
        held = socket.socket()
        try:
            held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            held.bind(finder.getsockname())
            held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 0)
        except OSError:
            held.close()
            raise
    return held


class StartupOptionsRefusingRelay:
    """A relay to PostgreSQL that refuses a connection whose startup packet carries the
    ``options`` parameter, as PgBouncer does unless told to ignore it (``FATAL: unsupported
    startup parameter: options``, SQLSTATE 08P01); any other is passed through. It answers
    "no" to TLS and GSS encryption requests, so the client speaks in the clear."""

    _SSL, _GSS = 80877103, 80877104

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.refused = 0
        self._server: asyncio.Server | None = None

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length = int.from_bytes(await reader.readexactly(4), "big")
                body = await reader.readexactly(length - 4)
                if int.from_bytes(body[:4], "big") in (self._SSL, self._GSS):
                    writer.write(b"N")
                    continue
                break
            parts = body[4:].split(b"\0")
            names = parts[0:-2:2]
            if b"options" in names:
                self.refused += 1
                fields = b"".join(
                    code + text + b"\0"
                    for code, text in (
                        (b"S", b"FATAL"),
                        (b"V", b"FATAL"),
                        (b"C", b"08P01"),
                        (b"M", b"unsupported startup parameter: options"),
                    )
                )
                payload = fields + b"\0"
                writer.write(b"E" + (len(payload) + 4).to_bytes(4, "big") + payload)
                await writer.drain()
                writer.close()
                return
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except (OSError, asyncio.IncompleteReadError):
            writer.close()
            return
        up_writer.write(length.to_bytes(4, "big") + body)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while chunk := await source.read(65536):
                    sink.write(chunk)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
