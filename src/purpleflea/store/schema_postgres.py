"""A PostgreSQL schema made at a node's start without locking the tables that already exist.

``CREATE INDEX IF NOT EXISTS`` takes its table's SHARE lock, and ``ALTER TABLE ... ADD COLUMN
IF NOT EXISTS`` its ACCESS EXCLUSIVE lock, before they look whether there is anything to do
(PostgreSQL 15, read in ``pg_locks`` inside the transaction), and the schema's transaction
holds them until it commits. Run at every start, the first made the start wait for every
append in flight and hold the new ones; the second waited for every reader of the table (a
long aggregate, a replay) while the queued lock held every new reader and writer behind it.
``CREATE TABLE IF NOT EXISTS`` of a table that exists takes no lock on it.

So the start reads the catalog once (:data:`CATALOG`: the relations and columns of the schema
the connection creates in) and runs only the statements that would make something
(:func:`missing`): on a store that is up to date, the creates and additions run none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

#: Every relation of the connection's current schema (tables, indexes) with each of its
#: columns (NULL for a relation without columns).
CATALOG = """
SELECT c.relname, a.attname FROM pg_class c
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
"""

_CREATES = re.compile(r"CREATE\s+(?:UNIQUE\s+)?(?:TABLE|INDEX)\s+IF\s+NOT\s+EXISTS\s+(\w+)", re.I)
_COMMENTS = re.compile(r"^\s*--.*$", re.M)
_ADDS = re.compile(r"ALTER\s+TABLE\s+(\w+)\s+ADD\s+COLUMN\s+IF\s+NOT\s+EXISTS\s+(\w+)", re.I)


def statements(schema: str | Sequence[str]) -> list[str]:
    """``schema``'s statements: a script split at its semicolons (no function bodies), or
    a sequence of statements as they are."""
    parts = schema.split(";") if isinstance(schema, str) else schema
    # A comment line above a statement would hide it from missing()'s patterns (an ADD
    # COLUMN with a comment above it ran, and locked its table, at every start).
    kept = (_COMMENTS.sub("", part).strip() for part in parts)
    return [part for part in kept if part]


def missing(schema: Iterable[str], catalog: Iterable[Sequence[Any]]) -> list[str]:
    """The statements of ``schema`` that make something ``catalog`` (rows of
    :data:`CATALOG`) lacks, in order: a table or index whose name is not there, a column its
    table lacks. Any other statement is kept."""
    relations: set[str] = set()
    columns: set[tuple[str, str]] = set()
    for relation, column in catalog:
        relations.add(relation)
        if column is not None:
            columns.add((relation, column))
    kept = []
    for statement in schema:
        created = _CREATES.match(statement)
        if created is not None and created.group(1).lower() in relations:
            continue
        added = _ADDS.match(statement)
        if added is not None and (added.group(1).lower(), added.group(2).lower()) in columns:
            continue
        kept.append(statement)
    return kept


async def create_missing(
    connection: psycopg.AsyncConnection[Any], schema: str | Sequence[str]
) -> None:
    """Run what :func:`missing` keeps of ``schema`` in ``connection``'s transaction (the
    caller holds the schema's advisory lock, so no other node makes the same thing
    between the read and the create)."""
    catalog = await (await connection.execute(CATALOG)).fetchall()
    for statement in missing(statements(schema), catalog):
        await connection.execute(statement.encode())
