"""The webhook store's contract, run against both backends: SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from purpleflea.clock import now_ms
from purpleflea.store.base import StoreUnavailable
from purpleflea.store.sidecar import SQLiteStatements
from purpleflea.store.sidecar_postgres import PostgresStatements
from purpleflea.store.webhooks import (
    SQLITE_SCHEMA,
    DeadLetter,
    Webhook,
    WebhookStore,
    open_webhook_store,
    target_host,
)
from tests.services import drop_connections, ensure_postgres


async def _empty_postgres() -> str:
    dsn = ensure_postgres()
    connection = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    async with connection:
        await connection.execute(
            "DROP TABLE IF EXISTS webhooks, webhook_dead_letters, webhook_replays"
        )
    return dsn


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[WebhookStore]:
    if request.param == "sqlite":
        backend = open_webhook_store(f"sqlite://{tmp_path / 'history.sqlite'}")
        assert isinstance(backend.backend, SQLiteStatements)
    else:
        backend = open_webhook_store(await _empty_postgres())
        assert isinstance(backend.backend, PostgresStatements)
    yield backend
    await backend.close()


def _webhook(webhook_id: str, account: str = "alice", **filters: object) -> Webhook:
    return Webhook(
        id=webhook_id,
        account=account,
        url=f"https://hooks.example.com/{webhook_id}",
        secret="whsec_0123456789abcdef",
        filters={"channels": ["liquidations"], "min_usd": 100_000.0, **filters},
        created_at=1_760_000_000_000 + int(webhook_id[-1]),
    )


def _letter(webhook_id: str, seq: int, error: str = "HTTP 500") -> DeadLetter:
    return DeadLetter(
        webhook_id=webhook_id,
        seq=seq,
        body=b'{"type":"liquidation","data":{"seq":%d}}' % seq,
        attempts=3,
        error=error,
        failed_at=1_760_000_100_000 + seq,
    )


async def test_webhooks_are_kept_per_account_and_capped(store: WebhookStore) -> None:
    assert await store.create(_webhook("wh_1", markets=["BTC-PERP"]), cap=2)
    assert await store.create(_webhook("wh_2"), cap=2)
    assert not await store.create(_webhook("wh_3"), cap=2)  # alice is at her cap
    assert await store.create(_webhook("wh_4", account="bob"), cap=2)  # bob is not
    assert [w.id for w in await store.webhooks("alice")] == ["wh_1", "wh_2"]
    assert [w.id for w in await store.webhooks()] == ["wh_1", "wh_2", "wh_4"]
    first = await store.get("wh_1", "alice")
    assert first == _webhook("wh_1", markets=["BTC-PERP"])  # the filters come back as stored
    assert await store.get("wh_1", "bob") is None  # not bob's


async def test_delete_is_per_account_and_takes_the_dead_letters(store: WebhookStore) -> None:
    await store.create(_webhook("wh_1"), cap=10)
    await store.add_dead_letters([_letter("wh_1", 5)], keep=10)
    assert not await store.delete("wh_1", "bob")
    assert (await store.get("wh_1", "alice")) is not None
    assert await store.delete("wh_1", "alice")
    assert await store.get("wh_1", "alice") is None
    assert await store.dead_letters("wh_1") == []
    assert not await store.delete("wh_1", "alice")


async def test_dead_letters_are_bounded_oldest_dropped_and_counted(store: WebhookStore) -> None:
    await store.create(_webhook("wh_1"), cap=10)
    await store.create(_webhook("wh_2"), cap=10)
    assert await store.add_dead_letters([_letter("wh_1", s) for s in (3, 1, 2)], keep=4) == 0
    dropped = await store.add_dead_letters(
        [_letter("wh_1", 4), _letter("wh_1", 5), _letter("wh_1", 6), _letter("wh_2", 9)], keep=4
    )
    assert dropped == 2
    assert [x.seq for x in await store.dead_letters("wh_1")] == [3, 4, 5, 6]
    assert await store.dead_letters("wh_1", limit=2) == [_letter("wh_1", 3), _letter("wh_1", 4)]
    webhook = await store.get("wh_1", "alice")
    assert webhook is not None
    assert (webhook.dead_letters, webhook.dead_letters_dropped) == (4, 2)
    assert [x.seq for x in await store.dead_letters("wh_2")] == [9]
    assert [w.dead_letters for w in await store.webhooks("alice")] == [4, 1]
    assert [w.dead_letters for w in await store.webhooks()] == [0, 0]  # the reload's cheap list


async def test_a_dead_letter_again_replaces_the_old_one(store: WebhookStore) -> None:
    await store.create(_webhook("wh_1"), cap=10)
    await store.add_dead_letters([_letter("wh_1", 7)], keep=10)
    await store.add_dead_letters([_letter("wh_1", 7, error="timeout")], keep=10)
    assert await store.dead_letters("wh_1") == [_letter("wh_1", 7, error="timeout")]


async def test_dead_letters_of_a_deleted_webhook_are_discarded(store: WebhookStore) -> None:
    # The dispatcher may fail a delivery just after the owner deleted the webhook.
    assert await store.add_dead_letters([_letter("wh_gone", 1)], keep=10) == 0
    assert await store.dead_letters("wh_gone") == []


async def test_a_replayed_dead_letter_is_removed(store: WebhookStore) -> None:
    await store.create(_webhook("wh_1"), cap=10)
    await store.add_dead_letters([_letter("wh_1", 1), _letter("wh_1", 2)], keep=10)
    await store.remove_dead_letter("wh_1", 1)
    assert [x.seq for x in await store.dead_letters("wh_1")] == [2]


async def test_one_replay_lease_per_webhook_across_stores_until_released_or_expired(
    store: WebhookStore, tmp_path: Path
) -> None:
    """Two nodes replaying one webhook's dead letters at once sent each letter twice (the
    guard was a set in each process): the lease lives in the shared store."""
    await store.create(_webhook("wh_1"), cap=10)
    await store.create(_webhook("wh_2"), cap=10)
    # Another node: its own connection to the same database.
    if isinstance(store.backend, SQLiteStatements):
        other = WebhookStore(SQLiteStatements(store.backend.path, SQLITE_SCHEMA))
    else:
        other = open_webhook_store(store.backend.url)
    try:
        t0 = now_ms()
        assert await store.take_replay("wh_1", "node-a", now_ms=t0, lease_ms=10_000)
        assert not await other.take_replay("wh_1", "node-b", now_ms=t0 + 1, lease_ms=10_000)
        assert await other.take_replay("wh_2", "node-b", now_ms=t0 + 1, lease_ms=10_000)
        # Only the holder releases it.
        await other.release_replay("wh_1", "node-b")
        assert not await other.take_replay("wh_1", "node-b", now_ms=t0 + 2, lease_ms=10_000)
        await store.release_replay("wh_1", "node-a")
        assert await other.take_replay("wh_1", "node-b", now_ms=t0 + 3, lease_ms=10_000)
        if isinstance(store.backend, SQLiteStatements):  # the caller's clock: to the ms
            assert not await store.take_replay("wh_1", "a", now_ms=t0 + 10_002, lease_ms=10_000)
            assert await store.take_replay("wh_1", "a", now_ms=t0 + 10_003, lease_ms=10_000)
            await store.release_replay("wh_1", "a")
            assert await other.take_replay("wh_1", "node-b", now_ms=t0 + 3, lease_ms=10_000)
        # A holder that died never releases: its lease expires.
        await store.create(_webhook("wh_3"), cap=10)
        assert await store.take_replay("wh_3", "node-a", now_ms=now_ms(), lease_ms=100)
        await asyncio.sleep(0.2)
        assert await other.take_replay("wh_3", "node-b", now_ms=now_ms(), lease_ms=10_000)
        # Deleting the webhook takes its lease with it.
        await other.delete("wh_1", "alice")
        await other.create(_webhook("wh_1"), cap=10)
        assert await store.take_replay("wh_1", "node-a", now_ms=now_ms(), lease_ms=10_000)
    finally:
        await other.close()


async def test_postgres_replay_leases_run_by_the_databases_clock_not_the_nodes() -> None:
    """The lease's expiry was each node's own clock (now_ms) against another node's: a node
    whose clock ran an hour ahead took a lease another node's replay held (both sent the
    letters), and one an hour behind waited an hour past a dead holder's lease."""
    dsn = await _empty_postgres()
    store, other = open_webhook_store(dsn), open_webhook_store(dsn)
    hour = 3_600_000
    try:
        await store.create(_webhook("wh_1"), cap=10)
        await store.create(_webhook("wh_2"), cap=10)
        assert await store.take_replay("wh_1", "node-a", now_ms=now_ms(), lease_ms=60_000)
        # By node-b's clock (an hour ahead) node-a's lease ran out long ago: by the
        # database's, it runs.
        assert not await other.take_replay("wh_1", "node-b", now_ms=now_ms() + hour, lease_ms=1)
        # node-a's clock is an hour ahead now: its short lease ends by the database's clock.
        assert await store.take_replay("wh_2", "node-a", now_ms=now_ms() + hour, lease_ms=100)
        await asyncio.sleep(0.2)
        assert await other.take_replay("wh_2", "node-b", now_ms=now_ms(), lease_ms=60_000)
    finally:
        await store.close()
        await other.close()


async def test_sqlite_tables_live_in_the_history_file(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    first = WebhookStore(SQLiteStatements(path, SQLITE_SCHEMA))
    await first.create(_webhook("wh_1"), cap=10)
    await first.close()
    again = open_webhook_store(str(path))  # a plain path, as the server's config gives
    assert [w.id for w in await again.webhooks()] == ["wh_1"]
    await again.close()


async def test_settled_seqs_only_move_forward(store: WebhookStore) -> None:
    await store.create(_webhook("wh_1"), cap=10)
    await store.create(_webhook("wh_2"), cap=10)
    await store.save_settled({"wh_1": 40, "wh_2": 7})
    await store.save_settled({"wh_1": 30})  # a late writer never moves it back
    assert [(w.id, w.settled_seq) for w in await store.webhooks()] == [("wh_1", 40), ("wh_2", 7)]
    await store.save_settled({})


async def test_postgres_webhooks_work_at_once_after_the_server_dropped_the_connection() -> None:
    """PostgreSQL restarted (or a cut ended) while the node was idle: its webhook store's
    connection is dead, found so only when used. The first request after that must work (it
    failed with psycopg's OperationalError: a plain 500 on /v1/webhooks, and a reload failure)."""
    dsn = await _empty_postgres()
    store = open_webhook_store(dsn)
    try:
        assert await store.create(_webhook("wh_1"), cap=5)
        await drop_connections(dsn, "purpleflea-webhook")
        assert [w.id for w in await store.webhooks("alice")] == ["wh_1"]
        assert await store.create(_webhook("wh_2"), cap=5)
        assert [w.id for w in await store.webhooks("alice")] == ["wh_1", "wh_2"]
    finally:
        await store.close()


async def test_postgres_connection_lost_mid_transaction_is_unavailable_not_run_again() -> None:
    """Lost once statements ran: a lost COMMIT may have committed, so the transaction is not
    run again; the caller gets StoreUnavailable (503 store_unavailable, Retry-After), and the
    next call works on a new connection."""
    store = open_webhook_store(await _empty_postgres())
    try:
        assert isinstance(store.backend, PostgresStatements)
        with pytest.raises(StoreUnavailable, match=r"webhook store .*connection lost"):
            await store.backend.run([("SELECT pg_terminate_backend(pg_backend_pid())", ())])
        assert await store.webhooks() == []
    finally:
        await store.close()


def _aimed(webhook_id: str, account: str, url: str) -> Webhook:
    return Webhook(
        id=webhook_id,
        account=account,
        url=url,
        secret="whsec_0123456789abcdef",
        filters={"channels": ["liquidations"]},
        created_at=1_760_000_000_000,
    )


async def test_webhooks_aimed_at_one_host_are_capped_across_accounts(store: WebhookStore) -> None:
    """Accounts are free: the cap per host counts every account's webhooks at it, whatever
    the path, port, case or trailing dot of their URLs."""
    urls = [
        "https://victim.example/a",
        "https://VICTIM.example.:8443/b",
        "http://victim.example/c?x=1",
    ]
    added = [
        await store.add(_aimed(f"wh_{n}", f"acct{n}", url), per_account=10, per_host=3)
        for n, url in enumerate(urls)
    ]
    assert added == [None, None, None]
    refused = await store.add(
        _aimed("wh_4", "acct9", "https://victim.example/d"), per_account=10, per_host=3
    )
    assert refused == "host"
    assert (
        await store.add(
            _aimed("wh_5", "acct9", "https://other.example/d"), per_account=10, per_host=3
        )
        is None
    )
    # The account's own cap is named first when both are reached.
    assert (
        await store.add(
            _aimed("wh_6", "acct0", "https://victim.example/e"), per_account=1, per_host=3
        )
        == "account"
    )
    assert [w.id for w in await store.webhooks()] == ["wh_0", "wh_1", "wh_2", "wh_5"]
    # 0: no cap per host.
    assert (
        await store.add(
            _aimed("wh_7", "acct8", "https://victim.example/f"), per_account=10, per_host=0
        )
        is None
    )


async def test_ipv6_spellings_of_an_ipv4_host_share_its_cap(store: WebhookStore) -> None:
    # Each was a host of its own: 6to4 alone spells 203.0.113.5 in 2**80 ways.
    urls = ["http://203.0.113.5/a", "http://[2002:cb00:7105::1]/b", "http://[2002:cb00:7105::2]/c"]
    added = [
        await store.add(_aimed(f"wh_{n}", f"acct{n}", url), per_account=10, per_host=2)
        for n, url in enumerate(urls)
    ]
    assert added == [None, None, "host"]


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://Victim.Example./x", "victim.example"),
        ("http://127.0.0.1:8080/", "127.0.0.1"),
        ("http://2130706433/", "127.0.0.1"),  # resolvers read these as 127.0.0.1 too
        ("http://0x7f.1/", "127.0.0.1"),
        ("http://127.1/", "127.0.0.1"),
        ("http://[::ffff:127.0.0.1]/", "127.0.0.1"),
        # IPv6 spellings that reach an IPv4 host (the delivery budget counts them as it):
        ("http://[2002:cb00:7105::1]/", "203.0.113.5"),  # 6to4, and 2**80 more like it
        ("http://[2002:cb00:7105:9::2]/", "203.0.113.5"),
        ("http://[64:ff9b::cb00:7105]/", "203.0.113.5"),  # NAT64
        ("http://[::203.0.113.5]/", "203.0.113.5"),  # IPv4-compatible
        ("http://[::1]/", "::1"),  # loopback stays itself
        ("http://[2001:DB8::1]:80/", "2001:db8::1"),
        ("https://bücher.example/", "xn--bcher-kva.example"),
        ("https://deadbeef.example/", "deadbeef.example"),
        ("not a url", ""),
    ],
)
def test_target_host_is_one_spelling_per_host(url: str, host: str) -> None:
    assert target_host(url) == host


async def test_webhooks_made_before_the_host_cap_count_against_it(tmp_path: Path) -> None:
    """A SQLite file from before the cap (no host column) is migrated when opened, and its
    webhooks count against their host's cap."""
    path = tmp_path / "history.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE webhooks (id TEXT PRIMARY KEY, account TEXT NOT NULL, url TEXT NOT NULL,"
        " secret TEXT NOT NULL, filters TEXT NOT NULL, created_at INTEGER NOT NULL,"
        " settled_seq INTEGER NOT NULL DEFAULT 0, dropped INTEGER NOT NULL DEFAULT 0);"
    )
    for n in range(2):
        old.execute(
            "INSERT INTO webhooks VALUES (?, ?, ?, 's', '{}', 0, 0, 0)",
            (f"wh_old{n}", f"acct{n}", f"https://victim.example/{n}"),
        )
    old.commit()
    old.close()
    store = open_webhook_store(f"sqlite://{path}")
    try:
        assert len(await store.webhooks()) == 2
        made = await store.add(
            _aimed("wh_new", "acct5", "https://victim.example/z"), per_account=10, per_host=2
        )
        assert made == "host"
    finally:
        await store.close()


async def test_webhooks_whose_host_an_earlier_release_spelled_otherwise_count_against_it(
    tmp_path: Path,
) -> None:
    """A webhook stored before an IPv6 spelling of an IPv4 host (6to4, NAT64) was read as that
    host kept the host the earlier release wrote (the IPv6 address): the cap counted only new
    webhooks under the IPv4 one, and every stored spelling was a host of its own."""
    path = tmp_path / "history.sqlite"
    store = open_webhook_store(f"sqlite://{path}")
    try:
        for n, url in enumerate(["http://[2002:cb00:7105::1]/a", "http://[64:ff9b::cb00:7105]/b"]):
            assert await store.add(_aimed(f"wh_{n}", f"acct{n}", url), per_account=10) is None
    finally:
        await store.close()
    earlier = sqlite3.connect(path)  # as the earlier release's target_host wrote them
    earlier.execute("UPDATE webhooks SET host = '2002:cb00:7105::1' WHERE id = 'wh_0'")
    earlier.execute("UPDATE webhooks SET host = '64:ff9b::cb00:7105' WHERE id = 'wh_1'")
    earlier.commit()
    earlier.close()
    store = open_webhook_store(f"sqlite://{path}")
    try:
        made = await store.add(
            _aimed("wh_new", "acct5", "http://203.0.113.5/z"), per_account=10, per_host=2
        )
        assert made == "host"
    finally:
        await store.close()


async def test_postgres_nodes_creating_at_once_keep_the_host_cap() -> None:
    """Eight nodes (a store each, its own connection) create at one host at once: under
    READ COMMITTED each counted the others' webhooks as absent, and a cap of 2 let 6-8 in."""
    dsn = await _empty_postgres()
    stores = [open_webhook_store(dsn) for _ in range(8)]
    try:
        await asyncio.gather(*(store.webhooks() for store in stores))  # connected, schema made
        results = await asyncio.gather(
            *(
                store.add(
                    _aimed(f"wh_{n}", f"acct{n}", "https://victim.example/"),
                    per_account=10,
                    per_host=2,
                )
                for n, store in enumerate(stores)
            )
        )
        assert sorted(results, key=str) == [None, None, *["host"] * 6]
        assert len(await stores[0].webhooks()) == 2
    finally:
        for store in stores:
            await store.close()
