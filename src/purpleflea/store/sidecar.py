"""Small SQLite files beside the history (API keys, webhooks): one way to open them.

They are shared between processes (the server and the operator's CLI), so the journal is WAL
(readers never block the writer) and a busy database waits up to 5 s instead of failing at
once. Statements run in autocommit; callers open their own transactions when a rule spans
several statements.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect(path: str | Path) -> sqlite3.Connection:
    """A connection to the file ``path`` (its folder made if missing; ``:memory:`` works too)
    that any thread may use under the caller's own lock."""
    name = str(path)
    if name != ":memory:":
        Path(name).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(name, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA busy_timeout=5000")
    return db
