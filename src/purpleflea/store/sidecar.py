"""Small stores beside the history (API keys, webhooks, coverage, sampled accounts): one way
to open their SQLite files and one runner of their statements per dialect.

The files are shared between processes (the server and the operator's CLI), so the journal is
WAL (readers never block the writer) and a busy database waits up to 5 s instead of failing at
once. A small store writes its statements once, with ``?`` placeholders, and hands them to a
:class:`Statements` runner: :class:`SQLiteStatements` here, or
:class:`~purpleflea.store.sidecar_postgres.PostgresStatements` on a scale-out's database.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from purpleflea.store.file_guard import FileGuard


def connect(path: str | Path) -> sqlite3.Connection:
    """A connection to the file ``path`` (its folder made if missing; ``:memory:`` works too)
    that any thread may use under the caller's own lock. Statements run in autocommit; callers
    open their own transactions when a rule spans several statements."""
    name = str(path)
    if name != ":memory:":
        Path(name).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(name, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA busy_timeout=5000")
    return db


class Statements(Protocol):
    """Runs a small store's statements against one database."""

    async def run(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Any]]:
        """Run ``statements`` (``?`` placeholders) in one transaction; each one's rows."""
        ...

    async def close(self) -> None: ...


def rollback(db: sqlite3.Connection) -> None:
    """Undo the open transaction, if SQLite has not already: on ``SQLITE_FULL`` or ``IOERR`` it
    rolls back by itself, and a ROLLBACK then would raise ``cannot rollback - no transaction is
    active`` over the real error (a full disk looked like a bug in the store)."""
    if db.in_transaction:
        db.execute("ROLLBACK")


def _reads(sql: str) -> bool:
    """Whether ``sql`` only reads (a small store's reads are single SELECTs)."""
    return sql.lstrip().upper().startswith("SELECT")


class SQLiteStatements:
    """A small store's tables in a SQLite file (the history's, on its own connection), made
    from ``schema`` if missing. Each transaction is a few small statements, run on the
    caller's thread."""

    def __init__(
        self,
        path: str | Path,
        schema: str,
        migrate: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        self.path = str(path)
        self._db = connect(path)
        #: Writes are refused once the file is no longer at its path (lost at exit).
        self.guard = FileGuard(self.path, "SQLite store")
        self._db.executescript(schema)
        if migrate is not None:  # brings a file made by an older version up to ``schema``
            migrate(self._db)
        self._lock = threading.Lock()

    async def run(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Any]]:
        if not all(_reads(sql) for sql, _ in statements):
            self.guard.check()  # reads of the open file stay served
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                results = [self._db.execute(sql, params).fetchall() for sql, params in statements]
                self._db.execute("COMMIT")
            except BaseException:
                rollback(self._db)
                raise
        return results

    async def close(self) -> None:
        with self._lock:
            self._db.close()
