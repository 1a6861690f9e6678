"""Webhook subscriptions and their dead letters, kept beside the history.

They live in the history store's database (the SQLite file of a single machine, or the shared
PostgreSQL of a scale-out), so every API node manages the same list and the one node that
delivers (the ingest node, or role ``all``) reads it from there. Their own small interface,
not :class:`~purpleflea.store.base.Store`'s: the history contract stays about events.

The queries are written once, with ``?`` placeholders; each backend only runs a list of
statements in one transaction (:class:`Backend`). The webhook's secret is stored as given:
signing needs it (HMAC), so it cannot be hashed like an API key.
"""

from __future__ import annotations

import ipaddress
import socket
import sqlite3
from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from purpleflea.addresses import carried_ipv4
from purpleflea.store.sidecar import SQLiteStatements, Statements


class Webhook(msgspec.Struct, frozen=True, kw_only=True):
    """One subscription: where to POST, the secret to sign with, and its stream filters
    (the fields of :func:`purpleflea.server.filters.parse_filter`)."""

    id: str
    account: str
    url: str
    secret: str
    filters: dict[str, Any]
    created_at: int
    #: Every item with a seq at or below this was settled for this webhook (delivered,
    #: dead-lettered or filtered out): the delivering node resumes after it (a restart, a
    #: standby taking over, a webhook made on another node).
    settled_seq: int = 0
    #: Dead letters dropped because the list was full (oldest first).
    dead_letters_dropped: int = 0
    #: Dead letters held now (filled in by listings).
    dead_letters: int = 0


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """A delivery that failed every attempt (or never got one): ``body`` is the frame as it
    would have been sent; ``seq`` orders and identifies it within its webhook."""

    webhook_id: str
    seq: int
    body: bytes
    attempts: int
    error: str
    failed_at: int


#: Which limit a refused :meth:`WebhookStore.add` hit.
Refusal = Literal["account", "host"]


def target_host(url: str) -> str:
    """The host a webhook ``url`` is aimed at, as the per-host cap counts it: lower case,
    without a trailing dot, an international name in its ASCII (IDNA) form, an IP address in
    its one canonical spelling (``http://2130706433/``, ``http://0x7f.1/`` and
    ``http://127.0.0.1/`` are one host: resolvers read all three as 127.0.0.1; an IPv6 address
    that carries an IPv4 one, mapped, 6to4 or NAT64, as that IPv4 address). ``''`` for a URL
    with no host."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return ""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    else:
        # An IPv6 address that carries an IPv4 one (mapped, 6to4, NAT64, ...) reaches that
        # IPv4 host, as the delivery budget counts it: 6to4 alone spells 203.0.113.5 in 2**80
        # ways (2002:cb00:7105::1, ::2, ...), each a new host to the cap before.
        carried = None
        if isinstance(ip, ipaddress.IPv6Address) and not (ip.is_loopback or ip.is_unspecified):
            carried = carried_ipv4(ip)
        return str(carried or ip)
    if host and all(c in "0123456789abcdefx." for c in host):
        try:  # the BSD forms every resolver takes: 2130706433, 0x7f.1, 127.1
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            pass
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


_COLUMNS = "w.id, w.account, w.url, w.secret, w.filters, w.created_at, w.settled_seq, w.dropped"
_COUNTED = (
    f"SELECT {_COLUMNS}, (SELECT COUNT(*) FROM webhook_dead_letters d "
    "WHERE d.webhook_id = w.id) FROM webhooks w"
)
_PLAIN = f"SELECT {_COLUMNS}, 0 FROM webhooks w"
_LETTER = "webhook_id, seq, body, attempts, error, failed_at"


def _webhook(row: Sequence[Any]) -> Webhook:
    return Webhook(
        id=row[0],
        account=row[1],
        url=row[2],
        secret=row[3],
        filters=msgspec.json.decode(row[4]),
        created_at=int(row[5]),
        settled_seq=int(row[6]),
        dead_letters_dropped=int(row[7]),
        dead_letters=int(row[8]),
    )


def _letter(row: Sequence[Any]) -> DeadLetter:
    return DeadLetter(
        webhook_id=row[0],
        seq=int(row[1]),
        body=bytes(row[2]),
        attempts=int(row[3]),
        error=row[4],
        failed_at=int(row[5]),
    )


class WebhookStore:
    """Webhooks and dead letters over a :class:`Backend` (SQLite or PostgreSQL)."""

    def __init__(
        self,
        backend: Statements,
        *,
        clock_sql: str | None = None,
        create_lock_sql: str | None = None,
    ) -> None:
        self.backend = backend
        #: A statement that makes creations wait for one another, where transactions of
        #: several nodes run side by side (PostgreSQL, READ COMMITTED: eight nodes creating
        #: at once each counted the others' webhooks as absent, and a cap of 2 per host let
        #: 6-8 in). SQLite's writers queue by themselves (BEGIN IMMEDIATE).
        self.create_lock_sql = create_lock_sql
        #: The database's clock in ms since the epoch, as SQL (None: it has none the nodes
        #: share, and the caller's clock is used): replay leases run by it.
        self.clock_sql = clock_sql
        self._hosts_filled = False

    async def _one(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return (await self.backend.run([(sql, params)]))[0]

    async def create(self, webhook: Webhook, *, cap: int) -> bool:
        """Add ``webhook`` unless its account already has ``cap``; False when it had."""
        return await self.add(webhook, per_account=cap) is None

    async def add(self, webhook: Webhook, *, per_account: int, per_host: int = 0) -> Refusal | None:
        """Add ``webhook`` unless its account already has ``per_account`` webhooks, or (when
        ``per_host`` is not 0) all accounts together have ``per_host`` aimed at its
        :func:`target_host`; None when added, else the limit that refused it. Counted and
        inserted in one transaction."""
        await self._fill_hosts()
        host = target_host(webhook.url)
        host_cap = per_host if per_host > 0 else 2**62
        lock = [(self.create_lock_sql, ())] if self.create_lock_sql else []
        *_, mine, aimed, _ = await self.backend.run(
            [
                *lock,
                ("SELECT COUNT(*) FROM webhooks WHERE account = ?", (webhook.account,)),
                ("SELECT COUNT(*) FROM webhooks WHERE host = ?", (host,)),
                (
                    "INSERT INTO webhooks "
                    "(id, account, url, host, secret, filters, created_at, settled_seq, dropped) "
                    "SELECT ?, ?, ?, ?, ?, ?, ?, ?, 0 WHERE "
                    "(SELECT COUNT(*) FROM webhooks WHERE account = ?) < ? AND "
                    "(SELECT COUNT(*) FROM webhooks WHERE host = ?) < ?",
                    (
                        webhook.id,
                        webhook.account,
                        webhook.url,
                        host,
                        webhook.secret,
                        msgspec.json.encode(webhook.filters).decode(),
                        webhook.created_at,
                        webhook.settled_seq,
                        webhook.account,
                        per_account,
                        host,
                        host_cap,
                    ),
                ),
            ]
        )
        if int(mine[0][0]) >= per_account:
            return "account"
        if int(aimed[0][0]) >= host_cap:
            return "host"
        return None

    async def _fill_hosts(self) -> None:
        """Give each webhook the host :func:`target_host` reads in its URL now, once per
        process, so that it counts against that host's cap: those made before the per-host
        cap (their ``host`` column added empty), and those an earlier release spelled
        otherwise (an IPv6 spelling of an IPv4 host was its own host before)."""
        if self._hosts_filled:
            return
        rows = await self._one("SELECT id, url, host FROM webhooks", ())
        changed = [
            (webhook_id, now) for webhook_id, url, host in rows if (now := target_host(url)) != host
        ]
        if changed:
            await self.backend.run(
                [
                    ("UPDATE webhooks SET host = ? WHERE id = ?", (host, webhook_id))
                    for webhook_id, host in changed
                ]
            )
        self._hosts_filled = True

    async def webhooks(self, account: str | None = None) -> list[Webhook]:
        """Every webhook (of ``account`` when given, with its dead-letter count), oldest
        first. Without an account (the dispatcher's reload, every few seconds) the counts are
        left at 0: it does not need them."""
        if account is None:
            rows = await self._one(f"{_PLAIN} ORDER BY w.created_at, w.id", ())
        else:
            rows = await self._one(
                f"{_COUNTED} WHERE w.account = ? ORDER BY w.created_at, w.id", (account,)
            )
        return [_webhook(row) for row in rows]

    async def get(self, webhook_id: str, account: str) -> Webhook | None:
        """The webhook ``webhook_id`` if ``account`` owns it."""
        rows = await self._one(
            f"{_COUNTED} WHERE w.id = ? AND w.account = ?", (webhook_id, account)
        )
        return _webhook(rows[0]) if rows else None

    async def delete(self, webhook_id: str, account: str) -> bool:
        """Delete the webhook (and its dead letters) if ``account`` owns it."""
        found, _, _, _ = await self.backend.run(
            [
                ("SELECT id FROM webhooks WHERE id = ? AND account = ?", (webhook_id, account)),
                (
                    "DELETE FROM webhook_dead_letters WHERE webhook_id IN "
                    "(SELECT id FROM webhooks WHERE id = ? AND account = ?)",
                    (webhook_id, account),
                ),
                (
                    "DELETE FROM webhook_replays WHERE webhook_id IN "
                    "(SELECT id FROM webhooks WHERE id = ? AND account = ?)",
                    (webhook_id, account),
                ),
                ("DELETE FROM webhooks WHERE id = ? AND account = ?", (webhook_id, account)),
            ]
        )
        return bool(found)

    async def save_settled(self, settled: dict[str, int]) -> None:
        """Move webhooks' ``settled_seq`` forward (never back) to the given values."""
        if settled:
            await self.backend.run(
                [
                    (
                        "UPDATE webhooks SET settled_seq = ? WHERE id = ? AND settled_seq < ?",
                        (seq, webhook_id, seq),
                    )
                    for webhook_id, seq in settled.items()
                ]
            )

    async def add_dead_letters(self, letters: Sequence[DeadLetter], *, keep: int) -> int:
        """Keep ``letters`` (a seq already there is replaced), at most ``keep`` per webhook:
        the oldest beyond that are dropped and counted on the webhook. Letters of a webhook
        deleted meanwhile are discarded. Returns how many were dropped."""
        dropped = 0
        by_webhook: dict[str, list[DeadLetter]] = {}
        for letter in letters:
            by_webhook.setdefault(letter.webhook_id, []).append(letter)
        for webhook_id, group in by_webhook.items():
            statements: list[tuple[str, Sequence[Any]]] = [
                (
                    f"INSERT INTO webhook_dead_letters ({_LETTER}) "
                    "SELECT w.id, ?, ?, ?, ?, ? FROM webhooks w WHERE w.id = ? "
                    "ON CONFLICT (webhook_id, seq) DO UPDATE SET body = excluded.body, "
                    "attempts = excluded.attempts, error = excluded.error, "
                    "failed_at = excluded.failed_at",
                    (x.seq, x.body, x.attempts, x.error, x.failed_at, webhook_id),
                )
                for x in group
            ]
            # The oldest beyond `keep`: everything at or below the (keep+1)-th newest seq.
            cutoff = (
                "SELECT seq FROM webhook_dead_letters WHERE webhook_id = ? "
                "ORDER BY seq DESC LIMIT 1 OFFSET ?"
            )
            statements += [
                (
                    f"SELECT COUNT(*) FROM webhook_dead_letters WHERE webhook_id = ? "
                    f"AND seq <= ({cutoff})",
                    (webhook_id, webhook_id, keep),
                ),
                (
                    f"DELETE FROM webhook_dead_letters WHERE webhook_id = ? AND seq <= ({cutoff})",
                    (webhook_id, webhook_id, keep),
                ),
            ]
            results = await self.backend.run(statements)
            excess = int(results[-2][0][0])
            if excess:
                await self._one(
                    "UPDATE webhooks SET dropped = dropped + ? WHERE id = ?", (excess, webhook_id)
                )
                dropped += excess
        return dropped

    async def dead_letters(self, webhook_id: str, *, limit: int = 100) -> list[DeadLetter]:
        """The webhook's dead letters, oldest (lowest seq) first, at most ``limit``."""
        rows = await self._one(
            f"SELECT {_LETTER} FROM webhook_dead_letters WHERE webhook_id = ? ORDER BY seq LIMIT ?",
            (webhook_id, limit),
        )
        return [_letter(row) for row in rows]

    async def remove_dead_letter(self, webhook_id: str, seq: int) -> None:
        await self._one(
            "DELETE FROM webhook_dead_letters WHERE webhook_id = ? AND seq = ?", (webhook_id, seq)
        )

    async def take_replay(
        self, webhook_id: str, holder: str, *, now_ms: int, lease_ms: int
    ) -> bool:
        """Take the webhook's replay lease for ``holder`` for ``lease_ms``; False while another
        holder's lease runs. The lease is a row in the shared database, so two API nodes never
        replay one webhook's letters side by side (each would send them all); one whose holder
        died expires. Taken in one transaction: SQLite's writers queue, and PostgreSQL's upsert
        locks the row, so of two racing takers one finds the other's.

        The lease runs by the database's clock where it has one (PostgreSQL): the nodes'
        clocks differ, and by a node whose clock ran ahead another's lease had expired (two
        replays), by one behind a dead node's lease ran on. ``now_ms``, the caller's clock, is
        used where the database has none of its own (SQLite: one machine, so the same clock)."""
        clock, node = (self.clock_sql, ()) if self.clock_sql else ("?", (now_ms,))
        _, rows = await self.backend.run(
            [
                (
                    "INSERT INTO webhook_replays (webhook_id, holder, expires_at) "
                    f"VALUES (?, ?, {clock} + ?) "
                    "ON CONFLICT (webhook_id) DO UPDATE SET holder = excluded.holder, "
                    f"expires_at = excluded.expires_at WHERE webhook_replays.expires_at <= {clock}",
                    (webhook_id, holder, *node, lease_ms, *node),
                ),
                ("SELECT holder FROM webhook_replays WHERE webhook_id = ?", (webhook_id,)),
            ]
        )
        return bool(rows) and rows[0][0] == holder

    async def release_replay(self, webhook_id: str, holder: str) -> None:
        """Give the lease back (only ``holder``'s: an expired one may be another's now)."""
        await self._one(
            "DELETE FROM webhook_replays WHERE webhook_id = ? AND holder = ?", (webhook_id, holder)
        )

    async def close(self) -> None:
        await self.backend.close()


SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    url TEXT NOT NULL,
    host TEXT NOT NULL DEFAULT '',
    secret TEXT NOT NULL,
    filters TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    settled_seq INTEGER NOT NULL DEFAULT 0,
    dropped INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS webhooks_account ON webhooks (account);
CREATE TABLE IF NOT EXISTS webhook_dead_letters (
    webhook_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body BLOB NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT NOT NULL,
    failed_at INTEGER NOT NULL,
    PRIMARY KEY (webhook_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS webhook_replays (
    webhook_id TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
"""


def open_webhook_store(url: str) -> WebhookStore:
    """The webhook store in the database the history store ``url`` names (see
    :func:`purpleflea.store.factory.open_store`). PostgreSQL connects on first use."""
    from purpleflea.store.factory import is_postgres, sqlite_path  # noqa: PLC0415

    if is_postgres(url):
        from purpleflea.store.webhooks_postgres import (  # noqa: PLC0415
            CLOCK_MS,
            CREATE_LOCK,
            statements,
        )

        return WebhookStore(statements(url), clock_sql=CLOCK_MS, create_lock_sql=CREATE_LOCK)
    return WebhookStore(SQLiteStatements(sqlite_path(url), SQLITE_SCHEMA, _add_host))


def _add_host(db: sqlite3.Connection) -> None:
    """A file made before the per-host cap: add the ``host`` column (filled in on first use,
    :meth:`WebhookStore._fill_hosts`) and its index."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(webhooks)")}
    if "host" not in columns:
        db.execute("ALTER TABLE webhooks ADD COLUMN host TEXT NOT NULL DEFAULT ''")
    db.execute("CREATE INDEX IF NOT EXISTS webhooks_host ON webhooks (host)")
