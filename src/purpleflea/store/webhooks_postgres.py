"""The webhook tables in the shared PostgreSQL store (see :mod:`purpleflea.store.webhooks`):
their schema, run by the small stores' one-connection runner."""

from __future__ import annotations

from purpleflea.store.sidecar_postgres import PostgresStatements

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
-- The per-host cap's count (a table made before it gets the column, filled in on first use).
ALTER TABLE webhooks ADD COLUMN IF NOT EXISTS host text NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS webhooks_host ON webhooks (host);
CREATE TABLE IF NOT EXISTS webhook_dead_letters (
    webhook_id text NOT NULL,
    seq bigint NOT NULL,
    body bytea NOT NULL,
    attempts integer NOT NULL,
    error text NOT NULL,
    failed_at bigint NOT NULL,
    PRIMARY KEY (webhook_id, seq)
);
CREATE TABLE IF NOT EXISTS webhook_replays (
    webhook_id text PRIMARY KEY,
    holder text NOT NULL,
    expires_at bigint NOT NULL
);
"""


#: The database's clock, ms since the epoch: every node reads the same one (replay leases).
#: clock_timestamp(), not now(): the time the statement runs, not when its transaction began.
CLOCK_MS = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint"


#: Held by a webhook's creation until its transaction ends: the per-account and per-host caps
#: count, then insert, and two nodes doing so side by side each missed the other's webhook.
CREATE_LOCK = f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK + 1})"


def statements(url: str) -> PostgresStatements:
    """The webhook store's statements on the PostgreSQL database ``url``."""
    return PostgresStatements(url, schema=_SCHEMA, schema_lock=_SCHEMA_LOCK, name="webhook")
