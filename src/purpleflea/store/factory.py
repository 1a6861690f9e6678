"""Open a history store from one URL (the ``--store`` option).

- ``sqlite:///abs/path/history.sqlite``, ``sqlite:relative/path.sqlite`` or a plain path: the
  embedded SQLite store (single machine);
- ``postgresql://user@host:port/db`` (or ``postgres://``): the shared PostgreSQL store
  (scale-out).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from purpleflea.store.base import Store
from purpleflea.store.sqlite import SQLiteStore

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
#: The history file's name in a data folder.
DB_FILE = "purpleflea.sqlite"


def history_file(path: str | Path) -> Path:
    """``path``, or the history file in it when it is a folder: ``--store data`` is what a user
    types for the folder ``serve --data-dir data`` writes."""
    given = Path(path)
    return given / DB_FILE if given.is_dir() else given


def is_postgres(url: str) -> bool:
    """Whether the store URL ``url`` names a PostgreSQL database."""
    return url.startswith(_POSTGRES_SCHEMES)


def redacted(url: str) -> str:
    """``url`` fit for a log line, an error or ``/v1/health`` (which anyone may read): its
    password, in the authority (``user:secret@host``, or a NATS token ``token@host``) or the
    query (``?password=``, ``?sslpassword=``), is replaced by ``***``. Everything else is
    kept, so the operator still sees which server."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        credentials, _, host = netloc.rpartition("@")
        user, colon, _ = credentials.partition(":")
        if not colon and parts.scheme in ("nats", "tls"):
            user = "***"  # NATS reads a lone user part as a token
        netloc = f"{user}{':***' if colon else ''}@{host}"
    query = "&".join(
        f"{name}=***" if unquote(name).lower() in _SECRET_PARAMETERS else pair
        for pair in parts.query.split("&")
        if pair
        for name in (pair.split("=", 1)[0],)
    )
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    shown = urlunsplit(parts._replace(netloc=netloc, query=query))
    if not netloc and url[len(parts.scheme) :].startswith("://"):
        shown = shown.replace(":", "://", 1)  # postgresql:///db: urlunsplit drops the "//"
    return shown


#: Query parameters that hold a secret (libpq decodes their names' %-escapes, so do we):
#: the password, and the passphrase of the client's TLS key.
_SECRET_PARAMETERS = ("password", "sslpassword")


def sqlite_path(url: str) -> Path:
    """The file a ``sqlite:`` URL or plain path names."""
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")  # sqlite:///abs -> /abs, sqlite://rel -> rel
    elif url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:")
    else:
        path = url
    if not path:
        raise ValueError(f"store URL {url!r} names no SQLite file")
    return Path(path)


async def open_store(url: str, *, read_only: bool = False) -> Store:
    """The store ``url`` names, opened and ready (schema created if missing).

    ``read_only`` is for readers beside a running server (``purpleflea export``): a SQLite file
    must exist and is opened without write access (see :class:`SQLiteStore`). PostgreSQL is
    opened as usual: its readers never hold up the writer.
    """
    if is_postgres(url):
        # Imported here: a single-machine server never loads the PostgreSQL driver.
        from purpleflea.store.postgres import PostgresStore  # noqa: PLC0415

        return await PostgresStore.connect(url)
    if "://" in url and not url.startswith("sqlite://"):
        scheme = url.split("://", 1)[0]
        raise ValueError(
            f"store URL {redacted(url)!r}: unknown scheme {scheme!r} "
            "(use sqlite:///path or postgresql://)"
        )
    return SQLiteStore(sqlite_path(url), read_only=read_only)
