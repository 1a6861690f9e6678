"""The webhook tables in the shared PostgreSQL store (see :mod:`purpleflea.store.webhooks`).

One connection, opened on first use and replaced when the server dropped it; webhook traffic
is a few statements per delivery failure or API call, so it never needs a pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import psycopg

# Nodes starting together would race on CREATE ... IF NOT EXISTS (see store/postgres.py).
_SCHEMA_LOCK = 0x70_66_5F_77_68_6B  # "pf_whk"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhooks (
    id text PRIMARY KEY,
    account text NOT NULL,
    url text NOT NULL,
    secret text NOT NULL,
    filters text NOT NULL,
    created_at bigint NOT NULL,
    settled_seq bigint NOT NULL DEFAULT 0,
    dropped bigint NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS webhooks_account ON webhooks (account);
CREATE TABLE IF NOT EXISTS webhook_dead_letters (
    webhook_id text NOT NULL,
    seq bigint NOT NULL,
    body bytea NOT NULL,
    attempts integer NOT NULL,
    error text NOT NULL,
    failed_at bigint NOT NULL,
    PRIMARY KEY (webhook_id, seq)
);
"""


class PostgresBackend:
    """Runs the webhook store's statements on PostgreSQL (``?`` become ``%s``). Subclasses
    run another small store's (``store/coverage_postgres.py``): their own schema and lock."""

    schema = _SCHEMA
    schema_lock = _SCHEMA_LOCK
    application_name = "purpleflea-webhooks"
    store = "webhook"

    def __init__(self, url: str) -> None:
        self.url = url
        self._connection: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
        self._lock = asyncio.Lock()

    async def _connected(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        connection = self._connection
        if connection is not None and not (connection.closed or connection.broken):
            return connection
        try:
            connection = await psycopg.AsyncConnection.connect(
                self.url, autocommit=False, application_name=self.application_name
            )
        except psycopg.OperationalError as exc:
            raise ConnectionError(
                f"{self.store} store {self.url!r}: cannot connect: {exc}"
            ) from exc
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock(%s)", (self.schema_lock,))
            await connection.execute(self.schema.encode())
        self._connection = connection
        return connection

    async def run(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Any]]:
        async with self._lock:
            connection = await self._connected()
            results: list[list[Any]] = []
            async with connection.transaction():
                for sql, params in statements:
                    cursor = await connection.execute(sql.replace("?", "%s").encode(), params)
                    results.append(await cursor.fetchall() if cursor.description else [])
            return results

    async def close(self) -> None:
        async with self._lock:
            if self._connection is not None:
                await self._connection.close()
                self._connection = None
