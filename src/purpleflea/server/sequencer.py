"""One sequencer per PostgreSQL store: the ingest node holds a lock, a second one stands by.

Seqs are assigned by one tracker (``store.last_seq() + 1`` onwards); two ingest nodes on one
store would hand out the same seqs. So an ingest node takes a PostgreSQL session-level
advisory lock before its tracker starts and holds it on a connection of its own for as long as
it runs. Another ingest node started meanwhile waits (a *standby*) and takes over when the
holder's session ends: at once for a process that exits or is killed (its socket closes), and
within about ``keepalive`` seconds for a machine that vanished (TCP keepalives).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import psycopg

from purpleflea.store.factory import redacted

log = logging.getLogger("purpleflea.sequencer")

#: The advisory lock's key: any constant every ingest node agrees on ("pf_seq").
LOCK_KEY = 0x70_66_5F_73_65_71


async def hold_sequencer_lock(
    url: str, *, poll_s: float = 0.5, keepalive: int = 10
) -> Callable[[], Awaitable[None]]:
    """Wait until this process is the store's one sequencer; returns the release."""
    try:
        connection = await psycopg.AsyncConnection.connect(
            url,
            autocommit=True,
            application_name="purpleflea-sequencer",
            keepalives=1,
            keepalives_idle=max(1, keepalive // 2),
            keepalives_interval=max(1, keepalive // 6),
            keepalives_count=3,
        )
    except psycopg.OperationalError as exc:
        raise ConnectionError(f"PostgreSQL store {redacted(url)!r}: cannot connect: {exc}") from exc
    try:
        waiting = False
        while True:
            cursor = await connection.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
            row = await cursor.fetchone()
            if row is not None and row[0]:
                break
            if not waiting:
                waiting = True
                log.warning(
                    "standby: another ingest node is the sequencer of this store; taking over "
                    "when it stops"
                )
            await asyncio.sleep(poll_s)
    except BaseException:
        await connection.close()
        raise
    if waiting:
        log.warning("the previous sequencer stopped: this ingest node takes over")
    return connection.close
