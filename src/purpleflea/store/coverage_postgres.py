"""The coverage tables in the shared PostgreSQL store (see :mod:`purpleflea.store.coverage`).

The webhook store's one-connection backend with this store's schema: coverage is a few
statements every drain interval and per API call, so it never needs a pool.
"""

from __future__ import annotations

from purpleflea.store.webhooks_postgres import PostgresBackend as _OneConnection

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
"""


class PostgresBackend(_OneConnection):
    """Runs the coverage store's statements on PostgreSQL (``?`` become ``%s``)."""

    schema = _SCHEMA
    # Nodes starting together would race on CREATE ... IF NOT EXISTS (see store/postgres.py).
    schema_lock = 0x70_66_5F_63_6F_76  # "pf_cov"
    application_name = "purpleflea-coverage"
    store = "coverage"
