"""Accounts discovered on venues that publish per-account positions, kept beside the history.

The position sampler learns addresses from the public trade stream; keeping them in the
history store's database (the SQLite file, or the shared PostgreSQL of a scale-out) means a
restart resumes sampling the accounts it knew instead of starting blind. One small table,
``sampled_accounts (exchange, address, first_seen, last_seen)``; the statements are written
once with ``?`` placeholders and run by a backend per dialect, like the webhook store's.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import psycopg

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sampled_accounts (
    exchange text NOT NULL,
    address text NOT NULL,
    first_seen bigint NOT NULL,
    last_seen bigint NOT NULL,
    PRIMARY KEY (exchange, address)
)
"""
# Both dialects (SQLite >= 3.24, PostgreSQL >= 9.5) read this upsert the same way.
_UPSERT = (
    "INSERT INTO sampled_accounts (exchange, address, first_seen, last_seen) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (exchange, address) DO UPDATE SET last_seen = excluded.last_seen "
    "WHERE excluded.last_seen > sampled_accounts.last_seen"
)
_RECENT = (
    "SELECT address FROM sampled_accounts WHERE exchange = ? "
    "ORDER BY last_seen DESC, address LIMIT ?"
)
# Nodes starting together would race on CREATE ... IF NOT EXISTS (see store/postgres.py).
_SCHEMA_LOCK = 0x70_66_5F_61_63_63  # "pf_acc"


class _Backend(Protocol):
    async def run(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Any]]: ...

    async def close(self) -> None: ...


class AccountStore:
    """Discovered accounts per exchange: add them as trades name them, list the most recent."""

    def __init__(self, backend: _Backend) -> None:
        self.backend = backend

    async def add(self, exchange: str, addresses: Sequence[str], seen_at: int) -> None:
        """Record ``addresses`` (lowercase) as seen on ``exchange`` at ``seen_at`` (ms)."""
        if addresses:
            await self.backend.run(
                [(_UPSERT, (exchange, a.lower(), seen_at, seen_at)) for a in set(addresses)]
            )

    async def recent(self, exchange: str, limit: int) -> list[str]:
        """Up to ``limit`` addresses of ``exchange``, the most recently seen first."""
        [rows] = await self.backend.run([(_RECENT, (exchange, limit))])
        return [row[0] for row in rows]

    async def close(self) -> None:
        await self.backend.close()


class SQLiteAccounts:
    """The table in a SQLite file (the history's, on its own connection)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()

    async def run(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Any]]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                results = [self._db.execute(sql, params).fetchall() for sql, params in statements]
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return results

    async def close(self) -> None:
        with self._lock:
            self._db.close()


class PostgresAccounts:
    """The table in the shared PostgreSQL; one connection, reopened when the server dropped it
    (a few statements a second at most: no pool needed)."""

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
                self.url, autocommit=False, application_name="purpleflea-accounts"
            )
        except psycopg.OperationalError as exc:
            raise ConnectionError(f"account store {self.url!r}: cannot connect: {exc}") from exc
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            await connection.execute(_SCHEMA)
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


def open_account_store(url: str) -> AccountStore:
    """The account table in the database the history store ``url`` names (see
    :func:`purpleflea.store.factory.open_store`). PostgreSQL connects on first use."""
    if url.startswith(("postgresql://", "postgres://")):
        return AccountStore(PostgresAccounts(url))
    from purpleflea.store.factory import sqlite_path  # noqa: PLC0415

    return AccountStore(SQLiteAccounts(sqlite_path(url)))
