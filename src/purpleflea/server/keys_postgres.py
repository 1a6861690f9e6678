"""API keys in PostgreSQL: the key store of a scale-out, shared by every API node.

A key minted through one API node is known to every other one at once, and a revocation made
anywhere is seen by every node's revocation poll (:meth:`Gate.watch_revocations`), which closes
that key's streams within a second. The rules are :class:`~purpleflea.server.keys.SqlKeyStore`'s;
this module supplies the connection and the row lock that serializes minting per account.

The server's auth path calls the store synchronously: a valid key is cached after its first
lookup, so a lookup costs one loopback round trip per new key, not per request.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg

from purpleflea.server.keys import SCHEMA, Execute, Result, SqlKeyStore
from purpleflea.store import postgres, schema_postgres
from purpleflea.store.base import StoreUnavailable
from purpleflea.store.factory import redacted

# Nodes starting together would race on CREATE ... IF NOT EXISTS; an advisory lock serializes
# them (any constant every node agrees on).
_SCHEMA_LOCK = 0x70_66_5F_6B_65_79  # "pf_key"


class PostgresKeyStore(SqlKeyStore):
    """Keys in the scale-out's PostgreSQL database (tables ``api_accounts``, ``api_keys``)."""

    _LOCK_ROW = " FOR UPDATE"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self._conn = self._connect()
        with self._transaction() as run:
            run("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))
            # Only what is missing: CREATE INDEX IF NOT EXISTS locks its table (schema_postgres).
            catalog = run(schema_postgres.CATALOG).fetchall()
            for statement in schema_postgres.missing(SCHEMA, catalog):
                run(statement)

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.url, autocommit=True, **postgres.connect_options())
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(
                f"key store {redacted(self.url)!r}: cannot connect: {exc}"
            ) from None

    def _connection(self) -> psycopg.Connection[Any]:
        """The connection, replaced when the server dropped it (restart, failover)."""
        if self._conn.closed or self._conn.broken:
            self._conn = self._connect()
        return self._conn

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _run(self, sql: str, params: Sequence[object] = ()) -> Result:
        with self._lock:
            for attempt in (1, 2):
                connection = self._connection()
                try:
                    return Result(connection.execute(self._sql(sql).encode(), params))
                except psycopg.OperationalError as exc:
                    if not connection.broken:
                        raise  # a bad statement, not a dropped connection
                    if attempt == 2:
                        raise self._lost(exc) from exc
            raise AssertionError("unreachable")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Execute]:
        """A transaction (registering, minting). A connection the server dropped while idle
        fails its ``BEGIN``: nothing ran, so it begins again on a new connection. A connection
        lost later is :class:`StoreUnavailable` (503), never run again (a lost ``COMMIT`` may
        have committed)."""
        with self._lock, contextlib.ExitStack() as stack:
            for attempt in (1, 2):
                connection = self._connection()
                try:
                    stack.enter_context(connection.transaction())
                    break
                except psycopg.OperationalError as exc:
                    if not connection.broken:
                        raise
                    if attempt == 2:
                        raise self._lost(exc) from exc

            def run(sql: str, params: Sequence[object] = ()) -> Result:
                try:
                    return Result(connection.execute(self._sql(sql).encode(), params))
                except psycopg.OperationalError as exc:
                    if connection.broken:
                        raise self._lost(exc) from exc
                    raise

            yield run

    def _lost(self, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(f"key store {redacted(self.url)!r}: connection lost: {exc}")

    def close(self) -> None:
        with self._lock:  # a revocation poll may be running on a thread (see SQLiteKeyStore)
            self._conn.close()
