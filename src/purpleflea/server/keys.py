"""API keys: issued free, stored hashed, listed and revoked per account.

A key is ``pf_`` + 32 random url-safe bytes. Only its SHA-256 is stored (a key has 256 bits
of entropy, so a fast hash is enough — there is nothing to brute-force), plus a short public
``key_id`` (the first characters after ``pf_``) by which it is listed and revoked. The full
key is returned exactly once, at creation, and is never logged.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from pathlib import Path

import msgspec

KEY_PREFIX = "pf_"
_ID_LENGTH = 8

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    account TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX IF NOT EXISTS api_keys_account ON api_keys (account);
"""


class KeyInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What is known about a key without the key itself."""

    key_id: str
    account: str
    name: str
    created_at: int
    revoked_at: int | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class NewKey(msgspec.Struct, frozen=True, kw_only=True):
    """A freshly created key: ``key`` is shown once and never stored."""

    key: str
    info: KeyInfo


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class KeyStore:
    """API keys in a SQLite file (the operator's CLI and the server share it)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def create(self, account: str, name: str = "default") -> NewKey:
        account = account.strip()
        if not account:
            raise ValueError("account must not be empty")
        if len(account) > 200 or len(name) > 200:
            raise ValueError("account and name are limited to 200 characters")
        while True:
            token = secrets.token_urlsafe(32)
            key_id = token[:_ID_LENGTH]
            info = KeyInfo(key_id=key_id, account=account, name=name, created_at=_now_ms())
            try:
                with self._lock:
                    self._db.execute(
                        "INSERT INTO api_keys (key_id, hash, account, name, created_at) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (key_id, _hash(KEY_PREFIX + token), account, name, info.created_at),
                    )
            except sqlite3.IntegrityError:
                continue  # a key_id collision (1 in 2**48): draw again
            return NewKey(key=KEY_PREFIX + token, info=info)

    def verify(self, key: str) -> KeyInfo | None:
        """The key's info if it exists and is not revoked; None otherwise."""
        if not key.startswith(KEY_PREFIX) or len(key) > 100:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT key_id, account, name, created_at, revoked_at FROM api_keys WHERE hash = ?",
                (_hash(key),),
            ).fetchone()
        if row is None or row[4] is not None:
            return None
        return KeyInfo(key_id=row[0], account=row[1], name=row[2], created_at=row[3])

    def list_keys(self, account: str | None = None) -> list[KeyInfo]:
        sql = "SELECT key_id, account, name, created_at, revoked_at FROM api_keys"
        params: tuple[str, ...] = ()
        if account is not None:
            sql += " WHERE account = ?"
            params = (account,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY created_at", params).fetchall()
        return [
            KeyInfo(key_id=r[0], account=r[1], name=r[2], created_at=r[3], revoked_at=r[4])
            for r in rows
        ]

    def revoke(self, key_id: str, *, account: str | None = None) -> bool:
        """Revoke a key by id (within ``account`` if given); False if no such active key."""
        sql = "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL"
        params: tuple[object, ...] = (_now_ms(), key_id)
        if account is not None:
            sql += " AND account = ?"
            params = (*params, account)
        with self._lock:
            cursor = self._db.execute(sql, params)
        return cursor.rowcount == 1

    def revoked_since(self, since_ms: int) -> list[str]:
        """Key ids revoked at or after ``since_ms`` (the server polls this to cut streams)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key_id FROM api_keys WHERE revoked_at >= ?", (since_ms,)
            ).fetchall()
        return [row[0] for row in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM api_keys").fetchone()[0])

    def close(self) -> None:
        self._db.close()
