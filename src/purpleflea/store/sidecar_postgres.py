"""A small store's statements on the shared PostgreSQL of a scale-out (see
:mod:`purpleflea.store.sidecar`).

One connection, opened on first use and replaced when the server dropped it: these stores run
a few statements per API call or drain interval, so none needs a pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import psycopg

from purpleflea.store import postgres, schema_postgres
from purpleflea.store.base import StoreUnavailable
from purpleflea.store.factory import redacted


class PostgresStatements:
    """Runs a small store's statements (``?`` become ``%s``); the first connection creates
    its tables from ``schema`` under the advisory lock ``schema_lock`` (nodes starting
    together would race on CREATE ... IF NOT EXISTS; see store/postgres.py). ``name`` names
    the store in errors and in PostgreSQL's ``application_name``."""

    def __init__(self, url: str, *, schema: str, schema_lock: int, name: str) -> None:
        self.url = url
        self.schema = schema
        self.schema_lock = schema_lock
        self.name = name
        self._connection: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
        self._lock = asyncio.Lock()

    async def _connected(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        connection = self._connection
        if connection is not None and not (connection.closed or connection.broken):
            return connection
        try:
            # As the store's: with no connect timeout a database that stops answering held
            # each API call or drain ~130 s (the kernel's retries).
            connection = await psycopg.AsyncConnection.connect(
                self.url,
                autocommit=False,
                application_name=f"purpleflea-{self.name}",
                **postgres.connect_options(),
            )
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(
                f"{self.name} store {redacted(self.url)!r}: cannot connect: {exc}"
            ) from exc
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock(%s)", (self.schema_lock,))
            await schema_postgres.create_missing(connection, self.schema)
        self._connection = connection
        return connection

    async def run(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Any]]:
        """Run ``statements`` in one transaction. A connection the server dropped while it
        was idle (a restart, a cut) is found so only when used: when its ``BEGIN`` fails,
        nothing ran, and the transaction runs once more on a new connection. A connection
        lost later is :class:`StoreUnavailable` (503): a lost ``COMMIT`` may have committed,
        so it is not run again."""
        async with self._lock:
            for attempt in (1, 2):
                connection = await self._connected()
                begun = False
                results: list[list[Any]] = []
                try:
                    async with connection.transaction():
                        begun = True
                        for sql, params in statements:
                            cursor = await connection.execute(
                                sql.replace("?", "%s").encode(), params
                            )
                            results.append(await cursor.fetchall() if cursor.description else [])
                except psycopg.OperationalError as exc:
                    if not connection.broken:
                        raise  # a failed statement, not a dropped connection
                    if begun or attempt == 2:
                        raise StoreUnavailable(
                            f"{self.name} store {redacted(self.url)!r}: connection lost: {exc}"
                        ) from exc
                    continue  # dropped while idle: nothing ran, run it on a new connection
                return results
            raise AssertionError("unreachable")

    async def close(self) -> None:
        async with self._lock:
            if self._connection is not None:
                await self._connection.close()
                self._connection = None
