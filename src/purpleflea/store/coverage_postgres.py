"""The coverage tables in the shared PostgreSQL store (see :mod:`purpleflea.store.coverage`):
their schema, run by the small stores' one-connection runner."""

from __future__ import annotations

from purpleflea.store.sidecar_postgres import PostgresStatements

_SCHEMA = """
CREATE TABLE IF NOT EXISTS coverage_hours (
    exchange text NOT NULL,
    hour_ms bigint NOT NULL,
    up_ms bigint NOT NULL,
    watched_ms bigint NOT NULL,
    connections integer NOT NULL,
    symbol_seconds bigint,
    symbols bigint,
    PRIMARY KEY (exchange, hour_ms)
);
CREATE TABLE IF NOT EXISTS coverage_gaps (
    id text PRIMARY KEY,
    exchange text NOT NULL,
    connection text NOT NULL,
    start_ms bigint NOT NULL,
    end_ms bigint,
    reason text NOT NULL,
    repair text NOT NULL,
    repaired_events bigint NOT NULL,
    note text NOT NULL
);
CREATE INDEX IF NOT EXISTS coverage_gaps_start ON coverage_gaps (start_ms);
CREATE TABLE IF NOT EXISTS coverage_imports (
    exchange text NOT NULL,
    hour_ms bigint NOT NULL,
    coverage text NOT NULL,
    events bigint NOT NULL,
    first_ms bigint NOT NULL,
    last_ms bigint NOT NULL,
    PRIMARY KEY (exchange, hour_ms, coverage)
);
"""
# Nodes starting together would race on CREATE ... IF NOT EXISTS (see store/postgres.py).
_SCHEMA_LOCK = 0x70_66_5F_63_6F_76  # "pf_cov"


def statements(url: str) -> PostgresStatements:
    """The coverage store's statements on the PostgreSQL database ``url``."""
    return PostgresStatements(url, schema=_SCHEMA, schema_lock=_SCHEMA_LOCK, name="coverage")
