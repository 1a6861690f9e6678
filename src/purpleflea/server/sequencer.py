"""One sequencer per PostgreSQL store: the ingest node holds a lock, a second one stands by.

Seqs are assigned by one tracker (``store.last_seq() + 1`` onwards); two ingest nodes on one
store would hand out the same seqs. So an ingest node takes a PostgreSQL session-level
advisory lock before its tracker starts and holds it on a connection of its own for as long as
it runs. Another ingest node started meanwhile waits (a *standby*) and takes over when the
holder's session ends: at once for a process that exits or is killed (its socket closes), and
within about ``keepalive`` seconds for a machine that vanished (TCP keepalives).

The lock lives as long as its session, not as long as the process: a PostgreSQL restart (or a
cut connection) ends the session and frees the lock while the holder goes on running. Before
this was checked, the holder went on appending without it, and a standby restarted after the
database came back took the lock too: two sequencers handing out the same seqs (measured: the
second node's appends failed on ``liquidations_pkey`` for as long as both ran, its events
never stored). Now every write's transaction first asks the database whether this node's
lock session holds the lock (:meth:`SequencerLock.check`, the store's write guard), and the
session is checked every ``poll_s``: while the session is gone its writes fail as the store
being unavailable (retried, held in the ingest buffer) until it holds the lock again; if
another node took the lock meanwhile, this node stops (``on_superseded``) and the other one
is the sequencer. A standby whose session is lost while it waits connects again and goes on
waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import psycopg

from purpleflea.outage import describe
from purpleflea.store import postgres
from purpleflea.store.base import StoreUnavailable
from purpleflea.store.factory import redacted

log = logging.getLogger("purpleflea.sequencer")

#: The advisory lock's key: any constant every ingest node agrees on ("pf_seq").
LOCK_KEY = 0x70_66_5F_73_65_71
#: How pg_locks shows a one-bigint advisory key: its high and low 32 bits.
_KEY_PARTS = (LOCK_KEY >> 32, LOCK_KEY & 0xFFFF_FFFF)
#: Whether the session ``pid`` holds the lock (one index-free look at the lock table).
_HELD = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND classid = %s AND objid = %s AND objsubid = 1 AND pid = %s "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
)
#: The session holding the lock now: its server process and when it started (a pid alone may
#: be a new session's, the old one's process gone and its number reused).
_HOLDER = (
    "SELECT l.pid, a.backend_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s "
    "AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
_STARTED = "SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()"


#: In a refusal of the connection's startup packet: PgBouncer's "unsupported startup
#: parameter: options" (before 1.20) and "unsupported options startup parameter: ..." (since).
_STARTUP_REFUSED = "startup parameter"


def _refused_options(url: str, options: str, exc: Exception) -> str:
    """The error for a server that refused the lock connection's ``options``: what was sent,
    why, and what to do, where psycopg's text read as if the store were unreachable."""
    reason = str(exc).strip().splitlines()[-1].split("FATAL:", 1)[-1].strip()
    return (
        f"PostgreSQL store {url!r}: the server refused the sequencer lock's connection "
        f"options ({options!r}, so the database probes the lock holder's session): "
        f"{reason}. A connection pooler such as PgBouncer refuses them; the lock is a "
        "session-level advisory lock, which needs a session of its own on PostgreSQL itself "
        "(behind a pooler in transaction mode a dead node's lock stays with a pooled "
        "connection, and no standby ever takes over). Give this ingest node a --store URL "
        "that reaches PostgreSQL directly (docs/scaleout.md)"
    )


class SequencerLock:
    """This process's hold on the store's sequencer lock; see the module docstring."""

    def __init__(self, url: str, *, poll_s: float = 0.5, keepalive: int = 10) -> None:
        self.url = url
        self.poll_s = poll_s
        self.keepalive = keepalive
        self._connection: psycopg.AsyncConnection[Any] | None = None
        #: Whether this process holds the lock now (its session is alive).
        self.held = False
        #: Set when another node took the lock while this one's session was lost.
        self.superseded = False
        #: Called once when superseded: the server stops (it is not the sequencer any more).
        self.on_superseded: Callable[[], None] | None = None
        self._lost_at: float | None = None
        #: The lock session's server process (pg_locks names the holder by it), and when
        #: that session started.
        self._pid = 0
        self._started: object = None

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        options = postgres.connect_options(keepalive_s=self.keepalive)
        idle, interval = options["keepalives_idle"], options["keepalives_interval"]
        # The database's side probes the session too: libpq's keepalives are this side's
        # alone, and a vanished holder's session (and the lock) stayed until the server's
        # own keepalives gave up, two hours by default, however long a standby waited.
        given = psycopg.conninfo.conninfo_to_dict(self.url).get("options") or ""
        probed = (
            f"{given} -c tcp_keepalives_idle={idle} -c tcp_keepalives_interval={interval} "
            "-c tcp_keepalives_count=3"
        )
        try:
            return await psycopg.AsyncConnection.connect(
                self.url,
                autocommit=True,
                application_name="purpleflea-sequencer",
                **options,
                options=probed.strip(),
            )
        except psycopg.OperationalError as exc:
            if _STARTUP_REFUSED in str(exc):
                raise ConnectionError(
                    _refused_options(redacted(self.url), probed.strip(), exc)
                ) from exc
            raise ConnectionError(
                f"PostgreSQL store {redacted(self.url)!r}: cannot connect: {exc}"
            ) from exc

    async def _try_lock(self, connection: psycopg.AsyncConnection[Any]) -> bool:
        cursor = await connection.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
        row = await cursor.fetchone()
        return row is not None and bool(row[0])

    async def acquire(self) -> None:
        """Wait until this process is the store's one sequencer (a standby waits here)."""
        self._connection = await self._connect()  # the first failure: the node does not start
        waiting = False
        while True:
            try:
                if await self._try_lock(self._connection):
                    await self._took(self._connection)  # a lost session here: waits on
                    break
            except psycopg.OperationalError as exc:
                # The database restarted under a standby: connect again and go on waiting
                # (this used to end the standby with a traceback).
                log.warning(
                    "standby: lost the connection to the store while waiting (%s); "
                    "connecting again",
                    describe(exc),
                )
                await self._connection.close()
                self._connection = await self._reconnect()
                continue
            except BaseException:
                await self._connection.close()
                raise
            if not waiting:
                waiting = True
                log.warning(
                    "standby: another ingest node is the sequencer of this store; taking over "
                    "when it stops"
                )
            await asyncio.sleep(self.poll_s)
        if waiting:
            log.warning("the previous sequencer stopped: this ingest node takes over")

    async def _took(self, connection: psycopg.AsyncConnection[Any]) -> None:
        """``connection``'s session holds the lock: remember which session it is."""
        self._pid = connection.info.backend_pid
        row = await (await connection.execute(_STARTED)).fetchone()
        self._started = row[0] if row is not None else None
        self.held = True

    async def _end_own_old_session(self, connection: psycopg.AsyncConnection[Any]) -> bool:
        """When the lock is held by this node's own previous session, which the database still
        runs (its connection was cut on this side alone: the database, told nothing, keeps an
        idle session until its keepalives give up on it, two hours by default), end it and
        return True: the lock is free at the next try. False: another node holds it."""
        row = await (await connection.execute(_HOLDER, _KEY_PARTS)).fetchone()
        if row is None or row[0] != self._pid or self._started is None or row[1] != self._started:
            return False
        log.warning(
            "the sequencer lock is still held by this node's previous session (server process "
            "%d), whose connection was lost: ending that session to take the lock again",
            self._pid,
        )
        try:
            await connection.execute("SELECT pg_terminate_backend(%s)", (self._pid,))
        except psycopg.errors.InsufficientPrivilege as exc:
            log.error("could not end the previous session (%s)", describe(exc))
            return False
        return True

    async def _reconnect(self) -> psycopg.AsyncConnection[Any]:
        while True:
            try:
                return await self._connect()
            except ConnectionError:
                await asyncio.sleep(self.poll_s)

    async def check(self, writer: psycopg.AsyncConnection[Any]) -> None:
        """The store's write guard, run in each write's transaction on ``writer``: raises
        :class:`StoreUnavailable` unless this process's lock session holds the lock now, as
        the database itself says (a session cut alone, the writer's alive, would otherwise
        leave a window of ``poll_s`` for a standby to write beside this node)."""
        if self.held:
            cursor = await writer.execute(_HELD, (*_KEY_PARTS, self._pid))
            row = await cursor.fetchone()
            if row is None or not row[0]:
                self._lost("the database no longer lists it as this node's")
        if not self.held:
            why = (
                "another ingest node took over as sequencer"
                if self.superseded
                else "the sequencer lock's session was lost; waiting to hold it again"
            )
            raise StoreUnavailable(
                f"PostgreSQL store {redacted(self.url)!r}: this node does not write: {why}"
            )

    async def _probe(self) -> None:
        """Mark the lock lost if its session is gone."""
        connection = self._connection
        if connection is None or not self.held:
            return
        try:
            await connection.execute("SELECT 1")
        except psycopg.Error as exc:
            self._lost(describe(exc))

    def _lost(self, why: str) -> None:
        if not self.held:
            return
        self.held = False
        self._lost_at = time.monotonic()
        log.error(
            "sequencer lock lost with its PostgreSQL session (%s): this node stores nothing "
            "until it holds the lock again (a standby may take over meanwhile)",
            why,
        )

    async def watch(self) -> None:
        """Runs while the server does: checks the lock's session every ``poll_s`` and takes
        the lock again when the session was lost (or stops this node, if another took it)."""
        while not self.superseded:
            await asyncio.sleep(self.poll_s)
            await self._probe()
            if self.held:
                continue
            if self._connection is not None:
                await self._connection.close()
            try:
                self._connection = await self._connect()
                got = await self._try_lock(self._connection)
                if got:
                    await self._took(self._connection)
                elif await self._end_own_old_session(self._connection):
                    continue  # taken at the next try, not another node's
            except (ConnectionError, psycopg.OperationalError):
                continue  # the database is still away: the writes wait, and so do we
            if got:
                log.warning(
                    "sequencer lock held again after %.1f s: this node stores events again",
                    time.monotonic() - (self._lost_at or time.monotonic()),
                )
                continue
            self.superseded = True
            log.error(
                "another ingest node became the sequencer while this one's session was lost: "
                "this node stops (what it had not stored is dropped and counted); restart it "
                "to stand by"
            )
            if self.on_superseded is not None:
                self.on_superseded()

    async def release(self) -> None:
        self.held = False
        if self._connection is not None:
            await self._connection.close()


async def hold_sequencer_lock(
    url: str, *, poll_s: float = 0.5, keepalive: int = 10
) -> SequencerLock:
    """Wait until this process is the store's one sequencer; returns the held lock."""
    lock = SequencerLock(url, poll_s=poll_s, keepalive=keepalive)
    await lock.acquire()
    return lock
