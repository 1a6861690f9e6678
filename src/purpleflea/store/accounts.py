"""Accounts discovered on venues that publish per-account positions, kept beside the history.

The position sampler learns addresses from the public trade stream; keeping them in the
history store's database (the SQLite file, or the shared PostgreSQL of a scale-out) means a
restart resumes sampling the accounts it knew instead of starting blind. One small table,
``sampled_accounts (exchange, address, first_seen, last_seen)``; the statements are written
once with ``?`` placeholders and run by the small stores' runner of each dialect
(:mod:`purpleflea.store.sidecar`).
"""

from __future__ import annotations

from collections.abc import Sequence

from purpleflea.store.sidecar import SQLiteStatements, Statements

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


class AccountStore:
    """Discovered accounts per exchange: add them as trades name them, list the most recent."""

    def __init__(self, backend: Statements) -> None:
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


def open_account_store(url: str) -> AccountStore:
    """The account table in the database the history store ``url`` names (see
    :func:`purpleflea.store.factory.open_store`). PostgreSQL connects on first use."""
    from purpleflea.store.factory import is_postgres, sqlite_path  # noqa: PLC0415

    if is_postgres(url):
        from purpleflea.store.sidecar_postgres import PostgresStatements  # noqa: PLC0415

        return AccountStore(
            PostgresStatements(url, schema=_SCHEMA, schema_lock=_SCHEMA_LOCK, name="account")
        )
    return AccountStore(SQLiteStatements(sqlite_path(url), _SCHEMA))
