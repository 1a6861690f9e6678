"""API keys and the accounts that own them: issued free, stored hashed, listed and revoked.

A key is ``pf_`` + 32 random url-safe bytes. Only its SHA-256 is stored (a key has 256 bits
of entropy, so a fast hash is enough — there is nothing to brute-force), plus a short public
``key_id`` (the first characters after ``pf_``) by which it is listed and revoked. The full
key is returned exactly once, at creation, and is never logged.

Who may add a key to which account (docs/security.md):

- :meth:`KeyStore.register` (anyone, ``POST /v1/keys`` without a key) creates a NEW account
  and its first key; a name already taken is refused with :class:`AccountExists`, so nobody
  joins an account by knowing its name;
- :meth:`KeyStore.mint` (a key of the account) adds a key to its own account while the account
  holds fewer than ``cap`` active keys, else :class:`KeyLimitReached`;
- :meth:`KeyStore.create` (the operator's CLI, which holds the store itself) adds a key to any
  account, creating it if needed, with no cap.

The count and the insert run in one transaction that serializes writers (SQLite ``BEGIN
IMMEDIATE``; PostgreSQL locks the account's row), so racing requests cannot pass a cap.

Two stores share this logic and differ only in their connection: :class:`SQLiteKeyStore` (a
file in the data folder, shared by the server and the CLI) and, when the history lives in
PostgreSQL, :class:`~purpleflea.server.keys_postgres.PostgresKeyStore`, so every API node
knows every key and sees every revocation.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import msgspec

from purpleflea.clock import now_ms
from purpleflea.store import sidecar
from purpleflea.store.factory import is_postgres
from purpleflea.store.file_guard import FileGuard

KEY_PREFIX = "pf_"
_ID_LENGTH = 8
_MAX_NAME = 200

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS api_accounts (
    account TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    hash BYTEA NOT NULL UNIQUE,
    account TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
)""",
    "CREATE INDEX IF NOT EXISTS api_keys_account ON api_keys (account)",
    "CREATE INDEX IF NOT EXISTS api_keys_revoked ON api_keys (revoked_at)",
    # Stores made before accounts existed: every account that holds keys is an account.
    "INSERT INTO api_accounts (account, created_at) SELECT account, MIN(created_at) "
    "FROM api_keys WHERE true GROUP BY account ON CONFLICT DO NOTHING",
)


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


class Revocation(msgspec.Struct, frozen=True, kw_only=True):
    """A revoked key: when it was revoked, and whether it already was before this call."""

    key_id: str
    revoked_at: int
    already: bool


class NewKey(msgspec.Struct, frozen=True, kw_only=True):
    """A freshly created key: ``key`` is shown once and never stored."""

    key: str
    info: KeyInfo


class AccountExists(ValueError):
    """Self-registration named an account that already exists."""


class KeyLimitReached(ValueError):
    """The account already holds its cap of active keys."""


class UnknownAccount(ValueError):
    """A key was minted for an account that does not exist."""


class KeyStore(Protocol):
    """What the server and the CLI need of a key store (both stores below provide it)."""

    def register(self, account: str, name: str = "default") -> NewKey: ...

    def mint(self, account: str, name: str, *, cap: int) -> NewKey: ...

    def create(self, account: str, name: str = "default") -> NewKey: ...

    def verify(self, key: str) -> KeyInfo | None: ...

    def list_keys(self, account: str | None = None) -> list[KeyInfo]: ...

    def active_count(self, account: str) -> int: ...

    def revoke(self, key_id: str, *, account: str | None = None) -> Revocation | None: ...

    def revoked_since(self, since_ms: int) -> list[str]: ...

    def count(self) -> int: ...

    def close(self) -> None: ...


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _checked(account: str, name: str) -> str:
    account = account.strip()
    if not account:
        raise ValueError("account must not be empty")
    if len(account) > _MAX_NAME or len(name) > _MAX_NAME:
        raise ValueError(f"account and name are limited to {_MAX_NAME} characters")
    # Names are printed in the operator's `purpleflea keys list`: a stranger's ESC sequence
    # cleared that terminal and a CR LF forged a row. Spaces and every script are printable.
    for what, value in (("account", account), ("name", name)):
        if not value.isprintable():
            raise ValueError(
                f"{what} {value!r} holds characters that are not printable (control or "
                "invisible format characters): use letters, digits, punctuation and spaces"
            )
    return account


def _info(row: Sequence[Any]) -> KeyInfo:
    return KeyInfo(
        key_id=row[0], account=row[1], name=row[2], created_at=int(row[3]), revoked_at=row[4]
    )


_KEY_COLUMNS = "key_id, account, name, created_at, revoked_at"


class Result:
    """A statement's rows and row count, read while the connection was held."""

    def __init__(self, cursor: Any) -> None:
        self.rowcount: int = cursor.rowcount
        self.rows: list[Sequence[Any]] = cursor.fetchall() if cursor.description else []

    def fetchone(self) -> Sequence[Any] | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[Sequence[Any]]:
        return self.rows

    def scalar(self) -> int:
        """The first column of the first row (a COUNT)."""
        return int(self.rows[0][0])


Execute = Callable[..., Result]


class SqlKeyStore:
    """The key logic over one DB-API connection; subclasses supply the dialect.

    SQL is written with ``?`` placeholders; :meth:`_sql` turns them into the driver's.
    """

    #: Appended to the account lookup inside a write transaction (PostgreSQL row lock).
    _LOCK_ROW = ""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    # -- dialect hooks ------------------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        return sql

    def _run(self, sql: str, params: Sequence[object] = ()) -> Result:
        """Execute one statement outside a transaction."""
        raise NotImplementedError

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Execute]:
        """A write transaction that serializes with other writers; yields an executor."""
        raise NotImplementedError
        yield

    # -- the rules ----------------------------------------------------------------------------

    def register(self, account: str, name: str = "default") -> NewKey:
        account = _checked(account, name)
        with self._transaction() as run:
            created = run(
                "INSERT INTO api_accounts (account, created_at) VALUES (?, ?) "
                "ON CONFLICT DO NOTHING",
                (account, now_ms()),
            )
            if created.rowcount != 1:
                raise AccountExists(
                    f"account {account!r} already exists: registration creates a new account; "
                    "to add a key to yours, call POST /v1/keys with one of its keys"
                )
            return self._insert_key(run, account, name)

    def mint(self, account: str, name: str, *, cap: int) -> NewKey:
        account = _checked(account, name)
        with self._transaction() as run:
            found = run(
                "SELECT account FROM api_accounts WHERE account = ?" + self._LOCK_ROW, (account,)
            ).fetchone()
            if found is None:
                raise UnknownAccount(f"no account {account!r}")
            active = run(
                "SELECT COUNT(*) FROM api_keys WHERE account = ? AND revoked_at IS NULL",
                (account,),
            ).scalar()
            if active >= cap:
                raise KeyLimitReached(
                    f"account {account!r} already has {active} active keys (the limit is "
                    f"{cap}): revoke one with DELETE /v1/keys/{{key_id}} first"
                )
            return self._insert_key(run, account, name)

    def create(self, account: str, name: str = "default") -> NewKey:
        account = _checked(account, name)
        with self._transaction() as run:
            run(
                "INSERT INTO api_accounts (account, created_at) VALUES (?, ?) "
                "ON CONFLICT DO NOTHING",
                (account, now_ms()),
            )
            return self._insert_key(run, account, name)

    @staticmethod
    def _insert_key(run: Execute, account: str, name: str) -> NewKey:
        while True:
            token = secrets.token_urlsafe(32)
            if token.startswith("-"):
                # Its id would read as an option on a command line (`keys revoke -xaXb7fO`
                # failed with argparse's exit 2): one token in 64, drawn again.
                continue
            info = KeyInfo(
                key_id=token[:_ID_LENGTH], account=account, name=name, created_at=now_ms()
            )
            inserted = run(
                "INSERT INTO api_keys (key_id, hash, account, name, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (info.key_id, _hash(KEY_PREFIX + token), account, name, info.created_at),
            )
            if inserted.rowcount == 1:
                return NewKey(key=KEY_PREFIX + token, info=info)
            # a key_id collision (1 in 2**48): draw again

    def verify(self, key: str) -> KeyInfo | None:
        """The key's info if it exists and is not revoked; None otherwise."""
        if not key.startswith(KEY_PREFIX) or len(key) > 100:
            return None
        row = self._run(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE hash = ?", (_hash(key),)
        ).fetchone()
        if row is None or row[4] is not None:
            return None
        return _info(row)

    def list_keys(self, account: str | None = None) -> list[KeyInfo]:
        sql = f"SELECT {_KEY_COLUMNS} FROM api_keys"
        params: tuple[str, ...] = ()
        if account is not None:
            sql += " WHERE account = ?"
            params = (account,)
        return [_info(r) for r in self._run(sql + " ORDER BY created_at", params).fetchall()]

    def active_count(self, account: str) -> int:
        return self._run(
            "SELECT COUNT(*) FROM api_keys WHERE account = ? AND revoked_at IS NULL", (account,)
        ).scalar()

    def revoke(self, key_id: str, *, account: str | None = None) -> Revocation | None:
        """Revoke a key by id (within ``account`` if given); None if there is no such key.

        A key already revoked is answered with its first revocation (``already``): a revoke
        retried after its first answer was lost did succeed. Locked like minting, so of two
        racing revokes exactly one is the first."""
        where, params = "key_id = ?", [key_id]
        if account is not None:
            where, params = "key_id = ? AND account = ?", [key_id, account]
        with self._transaction() as run:
            found = f"SELECT revoked_at FROM api_keys WHERE {where}{self._LOCK_ROW}"
            row = run(found, params).fetchone()
            if row is None:
                return None
            if row[0] is not None:
                return Revocation(key_id=key_id, revoked_at=int(row[0]), already=True)
            revoked_at = now_ms()
            run("UPDATE api_keys SET revoked_at = ? WHERE key_id = ?", (revoked_at, key_id))
            return Revocation(key_id=key_id, revoked_at=revoked_at, already=False)

    def revoked_since(self, since_ms: int) -> list[str]:
        """Key ids revoked at or after ``since_ms`` (servers poll this to cut streams)."""
        rows = self._run("SELECT key_id FROM api_keys WHERE revoked_at >= ?", (since_ms,))
        return [row[0] for row in rows.fetchall()]

    def count(self) -> int:
        return self._run("SELECT COUNT(*) FROM api_keys").scalar()


class SQLiteKeyStore(SqlKeyStore):
    """Keys in a SQLite file of the data folder (the operator's CLI and the server share it)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = str(path)
        self._db = sidecar.connect(path)
        #: A key minted or revoked into a removed file would be lost at exit: refused.
        self._guard = FileGuard(self.path, "key store")
        with self._transaction() as run:
            for statement in SCHEMA:
                run(statement)

    def _run(self, sql: str, params: Sequence[object] = ()) -> Result:
        with self._lock:
            return Result(self._db.execute(sql, params))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Execute]:
        self._guard.check()
        with self._lock:
            # IMMEDIATE takes the write lock up front: a CLI process and the server cannot
            # both count an account's keys and then both insert.
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield lambda sql, params=(): Result(self._db.execute(sql, params))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        # Under the lock: the revocation poll runs on a thread (Gate.watch_revocations), and a
        # query still running there when the server closes the store must finish first
        # (closing under it crashed the process with a segmentation fault).
        with self._lock:
            self._db.close()


def open_key_store(store_url: str, keys_path: Path) -> KeyStore:
    """The key store beside a history store: PostgreSQL keys for a PostgreSQL history (every
    node of a scale-out shares them), else the SQLite file ``keys_path``."""
    if is_postgres(store_url):
        # Imported here: a single-machine server never loads the PostgreSQL driver.
        from purpleflea.server.keys_postgres import PostgresKeyStore  # noqa: PLC0415

        return PostgresKeyStore(store_url)
    return SQLiteKeyStore(keys_path)
