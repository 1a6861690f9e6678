"""Every connection the tracker opens to PostgreSQL gives up on a database that does not
answer within the store's connect timeout, and has TCP keepalives (one helper for all)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
import pytest

from purpleflea.server.engine_state_postgres import PostgresEngineState
from purpleflea.server.keys_postgres import PostgresKeyStore
from purpleflea.server.sequencer import SequencerLock
from purpleflea.store import postgres, webhooks_postgres
from purpleflea.store.postgres import PostgresStore


async def _store(url: str) -> None:
    await PostgresStore(url)._new_connection(autocommit=True)


async def _small_store(url: str) -> None:
    # The webhook, account and coverage stores' one connection (store/sidecar_postgres.py).
    statements = webhooks_postgres.statements(url)
    try:
        await statements.run([("SELECT 1", ())])
    finally:
        await statements.close()


async def _key_store(url: str) -> None:
    await asyncio.to_thread(PostgresKeyStore, url)


async def _sequencer(url: str) -> None:
    await SequencerLock(url)._connect()


async def _engine_state(url: str) -> None:
    await PostgresEngineState(PostgresStore(url))._connected()


CONNECTS: dict[str, Callable[[str], Awaitable[None]]] = {
    "store": _store,
    "small store": _small_store,
    "key store": _key_store,
    "sequencer": _sequencer,
    "engine state": _engine_state,
}


@pytest.fixture
async def silent_url() -> AsyncIterator[str]:
    """A server that accepts and never answers (a failover, a split network)."""
    held: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # read nothing, answer nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"postgresql://u:secret@127.0.0.1:{port}/db?sslmode=disable"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("opens", CONNECTS)
async def test_a_database_that_does_not_answer_fails_the_connect_within_the_timeout(
    opens: str, silent_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The small stores connected with no connect_timeout: a database that stopped answering
    # held each webhook or account call ~130 s (the kernel's SYN retries); here, for ever.
    monkeypatch.setattr(postgres, "CONNECT_TIMEOUT_S", 1)
    started = time.monotonic()
    with pytest.raises((OSError, psycopg.OperationalError)) as failed:
        await asyncio.wait_for(CONNECTS[opens](silent_url), 20)
    assert not isinstance(failed.value, TimeoutError), "still connecting after 20 s"
    assert time.monotonic() - started < 5
    assert "secret" not in str(failed.value)


@pytest.mark.parametrize("opens", CONNECTS)
async def test_every_connection_has_tcp_keepalives(
    opens: str, silent_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, Any]] = []

    def refuse(*_: object, **options: Any) -> Any:
        seen.append(options)
        raise psycopg.OperationalError("refused by the test")

    async def refuse_async(*args: object, **options: Any) -> Any:
        return refuse(*args, **options)

    monkeypatch.setattr(psycopg, "connect", refuse)
    monkeypatch.setattr(psycopg.AsyncConnection, "connect", refuse_async)
    with pytest.raises((OSError, psycopg.OperationalError)):
        await CONNECTS[opens](silent_url)
    assert len(seen) == 1
    assert seen[0]["connect_timeout"] == postgres.CONNECT_TIMEOUT_S
    assert seen[0]["keepalives"] == 1
    assert seen[0]["keepalives_idle"] > 0
