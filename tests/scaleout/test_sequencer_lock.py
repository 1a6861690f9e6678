"""The sequencer lock across a PostgreSQL restart (operator findings, bench/results/operator.md).

A restart ends every session, the lock's too. Measured before: the standby waiting for the
lock died with a traceback (``AdminShutdown``), and the holder went on appending without the
lock; the standby started again took it, and two ingest nodes sequenced one store (the
second's appends failed on ``liquidations_pkey`` for as long as both ran). The restart is
played here by ending the sessions with ``pg_terminate_backend``, as the server's shutdown does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from purpleflea.server.sequencer import SequencerLock, hold_sequencer_lock
from purpleflea.store.base import StoreUnavailable
from purpleflea.store.postgres import PostgresStore
from tests.events import stored_event
from tests.services import PG_HOST, PG_PORT, StartupOptionsRefusingRelay
from tests.store.test_store import _empty_postgres

_APP = "purpleflea-sequencer"


async def _sessions(dsn: str) -> set[int]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as admin:
        cursor = await admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s "
            "AND datname = current_database()",
            (_APP,),
        )
        return {int(row[0]) for row in await cursor.fetchall()}


async def _terminate(dsn: str, pids: set[int]) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as admin:
        for pid in pids:
            await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


async def _until(condition: object, what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def _guarded_store(
    dsn: str, lock_dsn: str
) -> AsyncIterator[tuple[PostgresStore, SequencerLock, list[bool]]]:
    """A store on ``dsn`` that writes only while a sequencer lock taken through ``lock_dsn``
    holds (its watch running), and the list its supersession appends to; all closed after."""
    store = await PostgresStore.connect(dsn)
    lock = await hold_sequencer_lock(lock_dsn, poll_s=0.05)
    superseded: list[bool] = []
    lock.on_superseded = lambda: superseded.append(True)
    store.write_guard = lock.check
    watch = asyncio.create_task(lock.watch())
    try:
        yield store, lock, superseded
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
        await lock.release()
        await store.close()


async def test_a_standby_whose_session_is_cut_goes_on_waiting() -> None:
    dsn = await _empty_postgres()
    holder = await hold_sequencer_lock(dsn, poll_s=0.05)
    holder_pid = await _sessions(dsn)
    standby = asyncio.create_task(hold_sequencer_lock(dsn, poll_s=0.05))
    deadline = time.monotonic() + 10
    while not (await _sessions(dsn)) - holder_pid:
        assert time.monotonic() < deadline, "the standby never connected"
        await asyncio.sleep(0.02)
    await _terminate(dsn, (await _sessions(dsn)) - holder_pid)  # the standby's session only
    await asyncio.sleep(0.3)
    assert not standby.done() or standby.exception() is None, standby.exception()
    assert not standby.done(), "the standby took a lock the holder still has"
    await holder.release()  # the holder stops: the standby takes over
    taken = await asyncio.wait_for(standby, 10)
    assert taken.held
    await taken.release()


@pytest.mark.parametrize("standby", [False, True], ids=["alone", "with-a-standby"])
async def test_the_holder_writes_only_while_its_session_holds_the_lock(standby: bool) -> None:
    dsn = await _empty_postgres()
    async with _guarded_store(dsn, dsn) as (store, lock, superseded):
        await store.append([stored_event(1)])
        holder_pid = await _sessions(dsn)
        other = None
        if standby:  # waiting for the lock before the restart
            waiting = asyncio.create_task(hold_sequencer_lock(dsn, poll_s=0.01))
            while not (await _sessions(dsn)) - holder_pid:
                await asyncio.sleep(0.01)
        await _terminate(dsn, holder_pid)  # the restart, as the holder's lock sees it
        if standby:
            other = await asyncio.wait_for(waiting, 10)  # it takes the freed lock
            # The holder's next write is refused, not stored beside the new sequencer's.
            with pytest.raises(StoreUnavailable, match=r"another ingest node|session was lost"):
                await store.append([stored_event(2)])
            await _until(lambda: superseded, "the holder to learn it was superseded")
            with pytest.raises(StoreUnavailable, match="another ingest node took over"):
                await store.append([stored_event(2)])
            assert await store.last_seq() == 1
            assert other.held
            await other.release()
        else:  # no one else: it holds the lock again and writes on
            await _until(lambda: lock._lost_at is not None and lock.held, "the lock again")
            await store.append([stored_event(2)])
            assert await store.last_seq() == 2
            assert not superseded


class _OneSidedCut:
    """A TCP relay to PostgreSQL that can cut its connections on the client's side alone:
    the client sees its connection reset while the database, told nothing, keeps an idle
    session (as when a network path fails long enough for the client to give up)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._clients: list[asyncio.StreamWriter] = []
        self.kept: list[asyncio.StreamWriter] = []  # the database's side, left open
        self._pipes: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def cut_clients(self) -> None:
        for pipe in self._pipes:
            pipe.cancel()
        for writer in self._clients:
            writer.transport.abort()
        self._pipes.clear()
        self._clients.clear()

    async def close(self) -> None:
        self.cut_clients()
        for writer in self.kept:
            writer.transport.abort()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._clients.append(writer)
        self.kept.append(up_writer)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while chunk := await source.read(65536):
                    sink.write(chunk)
                    await sink.drain()

        self._pipes += [
            asyncio.create_task(pipe(reader, up_writer)),
            asyncio.create_task(pipe(up_reader, writer)),
        ]


async def test_the_holder_takes_the_lock_back_from_its_own_cut_session() -> None:
    """Its lock connection cut on its side alone, the holder found the lock held (by its own
    old session, still running in the database) and stopped as if another node had taken
    over: with no standby, no node sequenced until the database dropped that idle session
    (its keepalives: two hours by default)."""
    dsn = await _empty_postgres()
    parts = urlsplit(dsn)
    assert parts.hostname is not None
    assert parts.port is not None
    relay = _OneSidedCut(parts.hostname, parts.port)
    await relay.open()
    through_relay = urlunsplit(parts._replace(netloc=f"127.0.0.1:{relay.port}"))
    try:
        async with _guarded_store(dsn, through_relay) as (store, lock, superseded):
            await store.append([stored_event(1)])
            old = await _sessions(dsn)
            relay.cut_clients()
            await _until(lambda: lock._lost_at is not None, "the holder to see its session lost")
            await _until(lambda: lock.held or superseded, "the lock again")
            assert not superseded
            assert not old & await _sessions(dsn)  # the old session was ended
            await store.append([stored_event(2)])
            assert await store.last_seq() == 2
    finally:
        await relay.close()


async def test_the_database_probes_the_lock_session_of_a_holder_that_may_vanish() -> None:
    """A standby takes over from a vanished machine when the database drops the holder's
    session, so the database must probe it (within ~10 s, docs/scaleout.md): libpq's
    keepalives set this side's socket alone, and the server's default is two hours."""
    dsn = await _empty_postgres()
    parts = urlsplit(dsn)
    with_options = urlunsplit(parts._replace(query="options=-c%20search_path%3Dpublic"))
    lock = await hold_sequencer_lock(with_options, keepalive=10)
    try:
        assert lock._connection is not None
        probes = {}
        for name in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count"):
            row = await (await lock._connection.execute(f"SHOW {name}")).fetchone()
            assert row is not None
            probes[name] = int(row[0])
        assert probes == {
            "tcp_keepalives_idle": 5,
            "tcp_keepalives_interval": 1,
            "tcp_keepalives_count": 3,
        }
        # The store URL's own options are kept beside them.
        row = await (await lock._connection.execute("SHOW search_path")).fetchone()
        assert row == ("public",)
    finally:
        await lock.release()


async def test_a_server_that_refuses_the_startup_options_is_a_clear_error() -> None:
    # The lock's connection sends options=-c tcp_keepalives_* (the database probes the
    # holder's session); PgBouncer refuses a startup parameter it does not know. The node
    # stopped with "cannot connect: connection failed: ... FATAL: unsupported startup
    # parameter: options": the store read as unreachable, and nothing said what to change.
    dsn = await _empty_postgres()
    relay = StartupOptionsRefusingRelay(PG_HOST, PG_PORT)
    await relay.open()
    parts = urlsplit(dsn)
    through = urlunsplit(parts._replace(netloc=f"127.0.0.1:{relay.port}"))
    try:
        # The relay passes a connection without options: the store itself is reachable.
        async with await psycopg.AsyncConnection.connect(through) as plain:
            assert (await (await plain.execute("SELECT 1")).fetchone()) == (1,)
        with pytest.raises(ConnectionError) as refused:
            await hold_sequencer_lock(through, poll_s=0.05)
        message = str(refused.value)
        assert relay.refused >= 1
        assert message.startswith(
            f"PostgreSQL store {through!r}: the server refused the sequencer lock's connection "
            "options ('-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=1 "
            "-c tcp_keepalives_count=3', so the database probes the lock holder's session): "
            "unsupported startup parameter: options. A connection pooler such as PgBouncer"
        ), message
        assert "a --store URL that reaches PostgreSQL directly" in message
    finally:
        await relay.close()
