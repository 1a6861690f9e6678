"""Open a history store from one URL (the ``--store`` option).

- ``sqlite:///abs/path/history.sqlite``, ``sqlite:relative/path.sqlite`` or a plain path: the
  embedded SQLite store (single machine);
- ``postgresql://user@host:port/db`` (or ``postgres://``): the shared PostgreSQL store
  (scale-out).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

from purpleflea.store.base import Store
from purpleflea.store.sqlite import SQLiteStore

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
#: The history file's name in a data folder.
DB_FILE = "purpleflea.sqlite"


def history_file(path: str | Path) -> Path:
    """``path``, or the history file in it when it is a folder: ``--store data`` is what a user
    types for the folder ``serve --data-dir data`` writes. A PostgreSQL URL is refused (ValueError,
    password masked): as a path, ``postgresql://u:secret@h/db`` was a file ``postgresql:/u:...``
    that ``sim`` filled (and ``backtest`` named, password and all)."""
    if is_postgres(str(path)):
        raise ValueError(
            f"store {redacted(str(path))!r}: this command works on a SQLite history file (or "
            "the data folder holding it), not a PostgreSQL database"
        )
    given = Path(path)
    return given / DB_FILE if given.is_dir() else given


def is_postgres(url: str) -> bool:
    """Whether the store URL ``url`` names a PostgreSQL database."""
    return url.startswith(_POSTGRES_SCHEMES)


def redacted(url: str, *, unparsed: bool = False) -> str:
    """``url`` fit for a log line, an error or ``/v1/health`` (which anyone may read): its
    password, in the authority (``user:secret@host``, or a NATS token ``token@host``) or the
    query (``?password=``, ``?sslpassword=``), is replaced by ``***``. Everything else is
    kept, so the operator still sees which server.

    The credentials end at the LAST ``@``: a password may hold a raw ``/``, ``?``, ``#`` or
    ``@`` (libpq reads some of those, :func:`check_postgres_url` refuses the others), and a
    URL parser that ends the authority at the first of them showed the password whole. An
    ``@`` in a query value hides what precedes it too: shown too little, never too much.
    ``unparsed``: libpq could not parse ``url``, so where a query secret ends is unknown (a
    raw ``&`` in it: ``?password=se&cr=et``), and every part after a secret one is masked."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    credentials = ""
    continued = False  # whether what follows the credentials continues a secret value
    if "@" in rest:
        given, _, rest = rest.rpartition("@")
        user, colon, _ = given.partition(":")
        if any(c in user for c in "/?#&=@") or (not colon and scheme in ("nats", "tls")):
            # Not a plain user name (the @ was in a query value), or a NATS token.
            user, colon = "***", ""
        credentials = f"{user}{':***' if colon else ''}@"
        # The last @ in a secret query value (?password=se@cr?et): what follows it, up to the
        # next &, is the rest of that secret, not a host. The value holds no & but may hold a
        # ?, so the parameter starts after the last & or after any ? since.
        tail = given.rpartition("&")[2]
        starts = [0] if "&" in given else []
        starts += [i + 1 for i, c in enumerate(tail) if c == "?"]
        if any("=" in tail[i:] and _secret(tail[i:]) for i in starts):
            rest = "***" + rest[len(rest.split("&", 1)[0]) :]
            continued = True
    # No fragment: libpq reads a # as part of the value it is in, and a ? after the first
    # too. Every &-separated pair is masked, also before any ? (when the last @ was in a
    # query value, what follows it is the rest of the query: ``b&password=...``).
    first, *pairs = rest.split("&")
    host, question, pair = first.partition("?")
    shown = _masked([pair, *pairs] if question else pairs, continued=continued, unparsed=unparsed)
    head = f"{host}?{shown.pop(0)}" if question else host
    return f"{scheme}://{credentials}{'&'.join([head, *shown])}"


def _secret(pair: str) -> bool:
    """Whether the query pair ``name=value`` holds a secret (libpq decodes the name too)."""
    return unquote(pair.split("=", 1)[0]).lower() in _SECRET_PARAMETERS


def _masked(pairs: list[str], *, continued: bool, unparsed: bool) -> list[str]:
    """Query ``name=value`` pairs with the secret ones' values replaced by ``***``. A part
    with no ``=`` after a secret (``continued``: the first part already is one) is the rest
    of that secret, cut at a raw ``&`` (``?password=se&cret``): libpq refuses such a URL, and
    the refusal shows it, so it is masked whole; ``unparsed``, every part after a secret."""
    shown = []
    for pair in pairs:
        if continued and ("=" not in pair or unparsed):
            shown.append("***")
            continue
        continued = _secret(pair)
        shown.append(f"{pair.split('=', 1)[0]}=***" if continued else pair)
    return shown


def check_postgres_url(url: str) -> None:
    """Refuse (ValueError, password masked) a PostgreSQL URL that libpq would read otherwise
    than its writer meant. libpq ends the user name and password at the first ``/`` or ``@``:
    a raw one in a password made the rest a host or database name, so the connection failed
    confusingly ("failed to resolve host 'pf'") with part of the password in the error. So
    is a query before such an ``@`` (``postgresql://h?application_name=a@b`` is user
    ``h?application_name=a`` at host ``b``). A ``%`` that starts no escape, or a raw ``&`` in
    a query password, is refused by libpq with the password quoted. A URL that is not
    PostgreSQL's passes."""
    if not is_postgres(url):
        return
    # Imported here: a single-machine server never loads the PostgreSQL driver.
    from psycopg import ProgrammingError  # noqa: PLC0415
    from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

    encode = "percent-encode them ('/' as %2F, '@' as %40, '%' as %25, '&' as %26)"
    try:
        conninfo_to_dict(url)
    except ProgrammingError:
        raise ValueError(
            f"store URL {redacted(url, unparsed=True)!r}: PostgreSQL cannot parse it (its "
            "message is not shown: it may quote the password): if the user name or password "
            f"holds special characters, {encode}"
        ) from None
    rest = url.partition("://")[2]
    # What libpq reads as host and database: after the first @ when no / comes before it.
    ends = [i for i in (rest.find("@"), rest.find("/")) if i >= 0]
    credentials = ""
    if ends and rest[min(ends)] == "@":
        credentials, rest = rest[: min(ends)], rest[min(ends) + 1 :]
    if "@" in rest.partition("?")[0]:
        raise ValueError(
            f"store URL {redacted(url)!r}: its user name or password holds a raw '/' or '@', "
            "where PostgreSQL ends them (it would connect to another host or database than "
            f"meant): {encode}"
        )
    if re.search(r"\?[^=]*=", credentials):
        # postgresql://h?application_name=a@b: user 'h?application_name=a' at host 'b'. A
        # password may hold a raw ? (libpq reads it so), but not one followed by name=.
        raise ValueError(
            f"store URL {redacted(url)!r}: a query ('?name=') comes before an '@' with no '/' "
            "before it: PostgreSQL reads all that as the user name and password, and what "
            "follows the '@' as the host: put a '/' before the '?' (postgresql://host/?...), "
            "or percent-encode the '@' in a query value as %40 (a '?' in a password as %3F)"
        )


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
        check_postgres_url(url)
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
